"""Pick and load a speech tokenizer from a local path."""

from __future__ import annotations

from pathlib import Path

from empathy_recipe.errors import RecipeError
from empathy_recipe.units.protocol import SpeechTokenizer

KINDS = ("glm-4-voice", "s3")
# Which tokenizer each recipe's units come from.
FORMAT_TOKENIZER = {"opens2s": "glm-4-voice", "osum-echat": "s3"}


def load_tokenizer(kind: str, path: str | Path, repo: str | Path | None = None, device: str = "cpu") -> SpeechTokenizer:
    path = Path(path).expanduser()
    if not path.exists():
        raise RecipeError(f"speech tokenizer path not found: {path}")
    if kind == "s3":
        from empathy_recipe.units.s3 import S3Tokenizer

        return S3Tokenizer(path, device=device)
    if kind == "glm-4-voice":
        from empathy_recipe.units.glm4voice import GLM4VoiceTokenizer

        return GLM4VoiceTokenizer(path, repo=repo, device=device)
    raise RecipeError(f"unknown speech tokenizer kind {kind!r} (one of: {', '.join(KINDS)})")
