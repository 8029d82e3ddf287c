import numpy as np

from empathy_data.core.audio import decode_bytes, normalise_loudness, resample, silence_ratio, trim_silence, write_flac
from tests.helpers import sine


def test_trim_removes_edge_silence_only():
    tone = sine(seconds=1.0)
    padded = np.concatenate([np.zeros(8000, np.float32), tone, np.zeros(16000, np.float32)])
    trimmed = trim_silence(padded, 16000, pad_s=0.0)
    assert abs(len(trimmed) - len(tone)) <= 320


def test_normalise_hits_target_and_never_clips():
    out = normalise_loudness(sine(amp=0.01), -20.0)
    rms_db = 20 * np.log10(np.sqrt(np.mean(out.astype(np.float64) ** 2)))
    assert abs(rms_db + 20) < 0.1
    loud = normalise_loudness(sine(amp=0.5), 0.0)
    assert np.max(np.abs(loud)) <= 0.99 + 1e-6


def test_resample_length():
    assert len(resample(sine(seconds=1.0, rate=22050), 22050, 16000)) == 16000


def test_silence_ratio():
    half = np.concatenate([sine(seconds=1.0), np.zeros(16000, np.float32)])
    assert 0.45 < silence_ratio(half, 16000) < 0.55


def test_flac_round_trip(tmp_path):
    audio = sine(seconds=0.5)
    write_flac(tmp_path / "a.flac", audio, 16000)
    decoded, rate = decode_bytes((tmp_path / "a.flac").read_bytes())
    assert rate == 16000 and np.max(np.abs(decoded - audio)) < 1e-3
    assert not list(tmp_path.glob(".*tmp"))
