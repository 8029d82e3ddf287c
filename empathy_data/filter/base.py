"""What every emotion check returns, whatever its backend."""

from dataclasses import dataclass


@dataclass(frozen=True)
class EmotionResult:
    passed: bool
    score: float
    arousal_shift: float | None = None
    predicted: str | None = None
