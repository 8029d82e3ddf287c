"""What every emotion check takes and returns, whatever its backend."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from empathy_data.core.errors import each_or_error


@dataclass(frozen=True)
class EmotionResult:
    passed: bool
    score: float
    arousal_shift: float | None = None
    predicted: str | None = None


@dataclass(frozen=True)
class EmotionItem:
    audio: np.ndarray
    reference: np.ndarray | None  # the same text rendered neutral, where the synthesize stage made one
    sample_rate: int
    emotion: str


class EmotionCheck(Protocol):
    @property
    def identity(self) -> dict[str, Any]:
        """What decides the verdicts (the stage key itself comes from the config: backends/registry.py filter_identity)."""
        ...

    def check_batch(self, items: list[EmotionItem]) -> list[EmotionResult | Exception]:
        """A result per item, or the exception that item raised; an infrastructure fault raises."""
        ...


def check_each(
    items: list[EmotionItem], check: Callable[[np.ndarray, np.ndarray | None, int, str], EmotionResult]
) -> list[EmotionResult | Exception]:
    """`check(audio, reference, sample_rate, emotion)` one item at a time; an item's exception is its own
    result, an infrastructure fault raises."""
    return each_or_error(items, lambda i: check(i.audio, i.reference, i.sample_rate, i.emotion), "emotion")
