"""ASR backends: audio batch in, transcripts out."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from empathy_data.config import FasterWhisperASR
from empathy_data.errors import BackendUnavailable, raise_if_infrastructure

ASR_RATE = 16000


class ASRBackend(Protocol):
    @property
    def identity(self) -> dict[str, Any]: ...

    def transcribe(self, audios: list[np.ndarray], languages: list[str]) -> list[str | Exception]:
        """Transcripts for 16 kHz float32 mono audio, or the exception one item raised."""
        ...


class FasterWhisper:
    def __init__(self, config: FasterWhisperASR):
        try:
            from faster_whisper import WhisperModel
        except ImportError:
            raise BackendUnavailable("faster-whisper ASR needs: pip install faster-whisper") from None
        from threadpoolctl import threadpool_limits

        from empathy_data.embedded_models import embedded_whisper

        # faster-whisper computes its log-mel features with numpy, whose OpenBLAS matmuls give slightly
        # different numbers with a different thread count, enough to change a transcript (seen: "man"
        # vs "bear" with OPENBLAS_NUM_THREADS=1, which Dask's worker nanny sets). One BLAS thread for
        # the process makes a transcript the same on every runner; the model's own threads are cpu_threads.
        threadpool_limits(limits=1, user_api="blas")
        self.config = config
        self.model_path = str(embedded_whisper()) if config.model == "embedded" else config.model
        self.model = WhisperModel(
            self.model_path,
            device=config.device,
            compute_type=config.compute_type,
            cpu_threads=config.cpu_threads,
        )

    @property
    def identity(self) -> dict[str, Any]:
        return {
            "backend": "faster-whisper",
            "model": "whisper-base (embedded)" if self.config.model == "embedded" else self.config.model,
            "compute_type": self.config.compute_type,
            "beam_size": self.config.beam_size,
        }

    def transcribe_one(self, audio: np.ndarray, language: str) -> str:
        segments, _ = self.model.transcribe(
            audio,
            language=language,
            beam_size=self.config.beam_size,
            vad_filter=False,
            condition_on_previous_text=False,
            without_timestamps=True,
            # No fallback to sampling at higher temperatures: it draws from an unseeded generator, so
            # the same audio could get a different transcript, and so a different verdict, per run.
            temperature=0.0,
        )
        return " ".join(s.text.strip() for s in segments).strip()

    def transcribe(self, audios: list[np.ndarray], languages: list[str]) -> list[str | Exception]:
        results: list[str | Exception] = []
        for audio, language in zip(audios, languages, strict=True):
            try:
                results.append(self.transcribe_one(audio, language))
            except Exception as exc:
                raise_if_infrastructure(exc, "asr")
                results.append(exc)
        return results
