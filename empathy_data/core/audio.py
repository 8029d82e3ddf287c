"""Audio helpers: resample, trim edge silence, normalise loudness, encode and decode files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from empathy_data.core.atomic import atomic_path


def to_mono_float32(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio)
    if audio.dtype.kind == "i":
        audio = audio.astype(np.float32) / np.iinfo(audio.dtype).max
    if audio.ndim > 1:
        audio = audio.mean(axis=-1 if audio.shape[-1] <= 8 else 0)
    return audio.astype(np.float32, copy=False)


def resample(audio: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    if source_rate == target_rate:
        return audio
    return soxr.resample(audio, source_rate, target_rate).astype(np.float32, copy=False)


def frame_rms_db(audio: np.ndarray, sample_rate: int, frame_s: float = 0.02) -> np.ndarray:
    frame = max(1, int(sample_rate * frame_s))
    n = len(audio) // frame
    if n == 0:
        return np.array([-120.0])
    frames = audio[: n * frame].reshape(n, frame)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    return 20 * np.log10(np.maximum(rms, 1e-6))


def trim_silence(audio: np.ndarray, sample_rate: int, top_db: float = 40.0, pad_s: float = 0.05) -> np.ndarray:
    """Cut leading and trailing frames quieter than `top_db` below the loudest frame."""
    frame = max(1, int(sample_rate * 0.02))
    db = frame_rms_db(audio, sample_rate)
    voiced = np.flatnonzero(db > db.max() - top_db)
    if voiced.size == 0:
        return audio[:0]
    pad = int(sample_rate * pad_s)
    start = max(0, voiced[0] * frame - pad)
    stop = min(len(audio), (voiced[-1] + 1) * frame + pad)
    return audio[start:stop]


def normalise_loudness(audio: np.ndarray, target_dbfs: float) -> np.ndarray:
    """Scale to an RMS level of `target_dbfs`, limited so that peaks stay below full scale."""
    rms = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))) if audio.size else 0.0
    if rms < 1e-6:
        return audio
    gain = 10 ** (target_dbfs / 20) / rms
    peak = float(np.max(np.abs(audio))) * gain
    if peak > 0.99:
        gain *= 0.99 / peak
    return (audio * gain).astype(np.float32)


def silence_ratio(audio: np.ndarray, sample_rate: int, below_peak_db: float = 35.0) -> float:
    db = frame_rms_db(audio, sample_rate)
    return float(np.mean(db < db.max() - below_peak_db))


def write_flac(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    with atomic_path(path) as tmp:
        sf.write(tmp, audio, sample_rate, format="FLAC", subtype="PCM_16")


def read_audio(path: Path | str) -> tuple[np.ndarray, int]:
    audio, rate = sf.read(str(path), dtype="float32", always_2d=False)
    return to_mono_float32(audio), int(rate)


def decode_bytes(data: bytes) -> tuple[np.ndarray, int]:
    audio, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=False)
    return to_mono_float32(audio), int(rate)
