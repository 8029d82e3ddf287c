"""Recipe exporters: `export(corpus, format, to)` writes a complete recipe directory atomically."""

from empathy_recipe.exporters.base import Exporter, Options
from empathy_recipe.exporters.blsp_emo import BlspEmoExporter
from empathy_recipe.exporters.opens2s import OpenS2SExporter
from empathy_recipe.exporters.osum_echat import OsumEChatExporter

FORMATS: dict[str, type[Exporter]] = {e.name: e for e in (OpenS2SExporter, OsumEChatExporter, BlspEmoExporter)}

__all__ = ["FORMATS", "Exporter", "Options"]
