"""What an exporter or the training dataset needs from a speech tokenizer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class SpeechTokenizer(Protocol):
    name: str
    vocab_size: int  # ids are in 0..vocab_size-1

    def fingerprint(self) -> str:
        """Changes whenever the ids this tokenizer produces could change (weights, features, version)."""
        ...

    def encode(self, audio: np.ndarray, sample_rate: int) -> list[int]: ...

    def encode_batch(self, audios: Sequence[np.ndarray], sample_rate: int) -> list[list[int]]: ...
