"""Corpus row -> training sample (features of the user's audio, token ids, labels)."""

from __future__ import annotations

from typing import Any

from empathy_recipe.audio import RATE, decode
from empathy_recipe.data.features import AudioFeatures
from empathy_recipe.data.template import ChatEncoder
from empathy_recipe.units.protocol import SpeechTokenizer

COLUMNS = ["history", "user_text", "assistant_text", "user_audio", "assistant_audio"]


class SampleBuilder:
    def __init__(self, features: AudioFeatures, encoder: ChatEncoder, units: SpeechTokenizer | None = None,
                 max_tokens: int = 2048):  # fmt: skip
        self.features = features
        self.encoder = encoder
        self.units = units
        self.max_tokens = max_tokens

    def __call__(self, row: dict[str, Any]) -> dict[str, Any] | None:
        user = decode(row.get("user_audio"))
        if user is None or not row.get("assistant_text"):
            return None
        feats, placeholders = self.features(user)
        units = None
        if self.units is not None:
            assistant = decode(row.get("assistant_audio"))
            if assistant is None:
                return None
            units = self.units.encode(assistant, RATE)
        sample = self.encoder.encode(row.get("history") or [], placeholders, row["assistant_text"], units)
        if len(sample["input_ids"]) > self.max_tokens:
            return None
        return {**sample, "input_features": feats, "audio_tokens": placeholders}
