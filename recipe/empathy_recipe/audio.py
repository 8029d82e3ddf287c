"""Decode the corpus' Audio structs and write 16 kHz mono WAV files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 16000


def decode(audio: dict | None, rate: int = RATE) -> np.ndarray | None:
    """The HF `Audio` struct {bytes, path} -> float32 mono at `rate`; None when the row has no audio."""
    if not audio or not audio.get("bytes"):
        return None
    data, sr = sf.read(io.BytesIO(audio["bytes"]), dtype="float32", always_2d=True)
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    return resample(mono, sr, rate)


def resample(x: np.ndarray, sr: int, rate: int) -> np.ndarray:
    if sr == rate or len(x) == 0:
        return np.ascontiguousarray(x, dtype=np.float32)
    # Band-limited resampling in the frequency domain; corpora are written at 16 kHz, so this is the rare path.
    n = int(round(len(x) * rate / sr))
    spec = np.fft.rfft(x)
    keep = min(len(spec), n // 2 + 1)
    out = np.fft.irfft(spec[:keep], n) * (n / len(x))
    return out.astype(np.float32)


def write_wav(path: Path, x: np.ndarray, rate: int = RATE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.clip(x, -1.0, 1.0), rate, subtype="PCM_16", format="WAV")


def duration(x: np.ndarray, rate: int = RATE) -> float:
    return len(x) / rate
