"""Training-side data: a streaming IterableDataset over the Parquet shards, sample building, collation."""

from empathy_recipe.data.collator import Collator
from empathy_recipe.data.dataset import ExchangeDataset
from empathy_recipe.data.features import AudioFeatures
from empathy_recipe.data.template import IGNORE, ChatEncoder, interleave

__all__ = ["IGNORE", "AudioFeatures", "ChatEncoder", "Collator", "ExchangeDataset", "interleave"]
