"""DNSMOS P.835 as the filter's speech quality score: SIG (speech), BAK (background), OVRL on a 1-5 scale.

Scores as Microsoft's reference inference does (DNS-Challenge, DNSMOS/dnsmos_local.py): 16 kHz audio in
windows of 9.01 s one second apart, a clip shorter than a window repeated until it fills one, each window's
raw scores mapped through a fitted polynomial, the mapped scores averaged over the clip's windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from empathy_data.core.audio import resample
from empathy_data.core.cpus import threads_or_every_core
from empathy_data.core.errors import BackendUnavailable, ConfigError, InfrastructureError, each_or_error

MODEL_RATE = 16000
WINDOW = 144160  # int(9.01 * 16000), the length the model takes
HOP = MODEL_RATE
MODEL_FILE = "sig_bak_ovr.onnx"

# Per output in the model's order (SIG, BAK, OVRL), highest power first. pDNSMOS (personalized: the
# pDNSMOS/sig_bak_ovr.onnx weights) has its own cubic fit.
POLYFIT = {
    False: (
        (-0.08397278, 1.22083953, 0.0052439),
        (-0.13166888, 1.60915514, -0.39604546),
        (-0.06766283, 1.11546468, 0.04602535),
    ),
    True: (
        (-0.01019296, 0.02751166, 1.19576786, -0.24348726),
        (-0.04976499, 0.44276479, -0.1644611, 0.96883132),
        (-0.00533021, 0.005101, 1.18058466, -0.11236046),
    ),
}


@dataclass(frozen=True)
class MOSResult:
    ovrl: float
    sig: float
    bak: float


def model_file(model_path: str) -> Path:
    path = Path(model_path).expanduser()
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.is_file():
        raise ConfigError(
            "filter.mos.model", f"no DNSMOS model at {path} (give {MODEL_FILE} or a directory holding it)"
        )
    return path


def embedded_model(personalized: bool = False) -> Path:
    """DNSMOS P.835 as shipped inside the `speechmos` PyPI package (pDNSMOS for `personalized`)."""
    from importlib.util import find_spec

    spec = find_spec("speechmos")
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailable("the embedded MOS model needs: pip install speechmos")
    folder = "pdnsmos_models" if personalized else "dnsmos_models"
    return model_file(str(Path(spec.submodule_search_locations[0]) / folder))


def model_input(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """A clip at 16 kHz, at least one window long."""
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise ValueError(f"expected mono audio (one dimension), got shape {audio.shape}")
    if audio.size == 0:
        raise ValueError("empty clip")
    if not np.isfinite(audio).all():
        raise ValueError("clip has NaN or infinite samples")
    audio = resample(audio.astype(np.float32, copy=False), sample_rate, MODEL_RATE)
    if audio.size == 0:
        raise ValueError(f"clip is empty at {MODEL_RATE} Hz")
    # The reference doubles a short clip until it fills a window, so a 4 s clip becomes 16 s and gets 7 windows.
    while len(audio) < WINDOW:
        audio = np.concatenate([audio, audio])
    return audio


def window_count(n_samples: int) -> int:
    # The reference's int(floor(n / 16000) - 9.01) + 1: the last window starts a whole second or more
    # before the end, so up to 1.99 s at the end of a clip only shows in earlier windows.
    return max(1, n_samples // MODEL_RATE - 9)


def polyfit(raw: np.ndarray, personalized: bool) -> np.ndarray:
    """Raw [n, 3] scores (SIG, BAK, OVRL) mapped to the 1-5 MOS scale."""
    raw = raw.astype(np.float64)
    return np.stack([np.polyval(coeffs, raw[:, j]) for j, coeffs in enumerate(POLYFIT[personalized])], axis=1)


class DNSMOS:
    def __init__(
        self, model_path: str, device: str = "cpu", batch_size: int = 8, personalized: bool = False,
        threads: int | None = None,
    ):  # fmt: skip
        try:
            import onnxruntime as ort
        except ImportError:
            raise BackendUnavailable("mos backend dnsmos needs: pip install onnxruntime") from None
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        path = embedded_model(personalized) if model_path == "embedded" else model_file(model_path)
        providers: list[Any] = ["CPUExecutionProvider"]
        if device.startswith("cuda"):
            # onnxruntime would quietly run on the CPU instead.
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise BackendUnavailable(
                    f"mos device {device} needs onnxruntime with CUDA: pip install onnxruntime-gpu"
                )
            device_id = int(device.partition(":")[2] or 0)
            providers.insert(0, ("CUDAExecutionProvider", {"device_id": device_id}))
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads_or_every_core(threads)
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=providers)
        [model_in] = self.session.get_inputs()
        shape = list(model_in.shape)
        if len(shape) != 2 or shape[1] != WINDOW:
            raise ConfigError(
                "filter.mos.model", f"{path} takes input shape {shape}, not [N, {WINDOW}]: not DNSMOS {MODEL_FILE}"
            )
        self.input_name = model_in.name
        self.output_name = self.session.get_outputs()[0].name
        # Some exports fix the batch dimension to 1; a name or None there means any batch.
        self.batch_size = 1 if shape[0] == 1 else batch_size
        self.personalized = personalized

    @property
    def identity(self) -> dict[str, Any]:
        return {"backend": "dnsmos", "personalized": self.personalized}

    def score_batch(self, clips: list[tuple[np.ndarray, int]]) -> list[MOSResult | Exception]:
        """A result per (audio, sample_rate) clip, or the exception that clip raised; windows of all clips
        run together, `batch_size` per model call. An infrastructure fault raises."""
        audios = each_or_error(clips, lambda clip: model_input(*clip), "mos")
        windows = [
            (i, k * HOP)
            for i, audio in enumerate(audios)
            if not isinstance(audio, Exception)
            for k in range(window_count(len(audio)))
        ]
        # The reference computes window ends in floating point, so windows starting 7-23 s into a clip (and
        # some later ones) come out a sample short and are skipped; here every window counts.
        raw = np.empty((len(windows), 3), dtype=np.float32)
        for start in range(0, len(windows), self.batch_size):
            batch = windows[start : start + self.batch_size]
            raw[start : start + len(batch)] = self._run(np.stack([audios[i][at : at + WINDOW] for i, at in batch]))
        scores = polyfit(raw, self.personalized)
        owners = np.array([i for i, _ in windows], dtype=np.int64)
        results: list[MOSResult | Exception] = []
        for i, audio in enumerate(audios):
            if isinstance(audio, Exception):
                results.append(audio)
                continue
            sig, bak, ovrl = scores[owners == i].mean(axis=0)
            results.append(MOSResult(ovrl=float(ovrl), sig=float(sig), bak=float(bak)))
        return results

    def _run(self, windows: np.ndarray) -> np.ndarray:
        try:
            [out] = self.session.run([self.output_name], {self.input_name: windows})
        except Exception as exc:
            # Every window was checked (finite, float32, the model's length), so a failed run is the
            # session's fault (out of memory, a broken model, the device), not a clip's.
            detail = str(exc).splitlines()[0][:300] if str(exc) else ""
            raise InfrastructureError(f"mos: onnxruntime run failed: {type(exc).__name__}: {detail}") from exc
        if out.shape != (len(windows), 3):
            raise InfrastructureError(
                f"mos: the model returned shape {out.shape} for {len(windows)} windows, not [N, 3]"
            )
        return out
