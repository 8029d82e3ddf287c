"""Speech units: a small tokenizer protocol, adapters for GLM-4-Voice and CosyVoice's S3 tokenizer, a cache."""

from empathy_recipe.units.protocol import SpeechTokenizer

__all__ = ["SpeechTokenizer"]
