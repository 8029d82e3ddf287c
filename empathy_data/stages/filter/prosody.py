"""Prosody-based emotion check: does the audio carry the target arousal?

Compares pitch, pitch range, level and speaking rate of a turn with a neutral rendering of the same
text by the same voice. High-arousal emotions (happy, angry, fearful, surprised) should raise them,
low-arousal ones (sad, disgusted) lower them, neutral leave them. Uses YIN for F0, which is hundreds
of times faster than pYIN on CPU at nearly the same median F0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import librosa
import numpy as np

from empathy_data.config.model import ProsodyEmotion
from empathy_data.core.audio import frame_rms_db
from empathy_data.core.labels import AROUSAL
from empathy_data.stages.filter.base import EmotionItem, EmotionResult, check_each


@dataclass(frozen=True)
class ProsodyFeatures:
    f0_median_hz: float
    f0_range_st: float
    level_db: float
    duration_s: float


def features(audio: np.ndarray, sample_rate: int) -> ProsodyFeatures:
    hop = int(sample_rate * 0.01)
    f0 = librosa.yin(audio, fmin=60, fmax=600, sr=sample_rate, frame_length=2048, hop_length=hop)
    db = frame_rms_db(audio, sample_rate, frame_s=0.01)
    voiced_frames = db > db.max() - 30
    n = min(len(f0), len(voiced_frames))
    voiced = f0[:n][voiced_frames[:n]]
    if voiced.size < 3:
        voiced = f0
    # YIN has no voicing decision: frames of fricatives and breath give wild values (often at the
    # fmin/fmax bounds) that would swamp the pitch range. Keep frames within an octave of the median.
    centre = np.median(voiced)
    in_octave = voiced[(voiced > centre / 2) & (voiced < centre * 2)]
    if in_octave.size >= 3:
        voiced = in_octave
    p10, p50, p90 = np.percentile(voiced, [10, 50, 90])
    return ProsodyFeatures(
        f0_median_hz=float(p50),
        f0_range_st=float(12 * math.log2(max(p90, 1.0) / max(p10, 1.0))),
        level_db=float(np.mean(db[db > db.max() - 30])),
        duration_s=len(audio) / sample_rate,
    )


def arousal_shift(target: ProsodyFeatures, neutral: ProsodyFeatures) -> float:
    """Mean of four normalised shifts: pitch (octaves), range (octaves), level (per 20 dB), rate (octaves)."""
    parts = [
        math.log2(target.f0_median_hz / neutral.f0_median_hz),
        (target.f0_range_st - neutral.f0_range_st) / 12,
        (target.level_db - neutral.level_db) / 20,
        math.log2(neutral.duration_s / target.duration_s),
    ]
    return float(np.mean(parts))


class ProsodyEmotionCheck:
    def __init__(self, config: ProsodyEmotion):
        self.config = config

    @property
    def identity(self) -> dict[str, Any]:
        return {"backend": "prosody", "min_shift": self.config.min_shift, "f0": "yin"}

    def judge(self, emotion: str, shift: float) -> EmotionResult:
        direction = AROUSAL[emotion]
        m = self.config.min_shift
        predicted = "raised" if shift >= m else "lowered" if shift <= -m else "unchanged"
        if direction == 0:
            passed = predicted == "unchanged"
            score = math.exp(-((shift / m) ** 2)) if m > 0 else float(shift == 0)
        else:
            passed = predicted == ("raised" if direction > 0 else "lowered")
            score = 1 / (1 + math.exp(-4 * (direction * shift - m) / max(m, 1e-6)))
        return EmotionResult(passed=passed, score=round(score, 4), arousal_shift=round(shift, 4), predicted=predicted)

    def check(self, audio: np.ndarray, reference: np.ndarray | None, sample_rate: int, emotion: str) -> EmotionResult:
        if reference is None:
            raise ValueError("prosody emotion check needs a neutral reference rendering")
        return self.judge(emotion, arousal_shift(features(audio, sample_rate), features(reference, sample_rate)))

    def check_batch(self, items: list[EmotionItem]) -> list[EmotionResult | Exception]:
        """Signal features, one clip at a time: nothing here gains from a batch."""
        return check_each(items, self.check)
