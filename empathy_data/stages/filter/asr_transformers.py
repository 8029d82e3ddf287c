"""transformers' `automatic-speech-recognition` pipeline, batched (Whisper, wav2vec2, ... checkpoints)."""

from __future__ import annotations

from typing import Any

import numpy as np

from empathy_data.config.model import TransformersASR
from empathy_data.core.errors import BackendUnavailable, raise_if_infrastructure
from empathy_data.stages.filter.asr import ASR_RATE


class TransformersASRBackend:
    def __init__(self, config: TransformersASR):
        try:
            from transformers import pipeline
        except ImportError:
            raise BackendUnavailable(
                "asr backend transformers needs: pip install 'empathy-data[transformers]'"
            ) from None
        self.config = config
        self.pipe = pipeline("automatic-speech-recognition", model=config.model, device=config.device)
        self.is_whisper = getattr(self.pipe.model.config, "model_type", "") == "whisper"

    @property
    def identity(self) -> dict[str, Any]:
        return {"backend": "transformers-asr", "model": self.config.model}

    def transcribe(self, audios: list[np.ndarray], languages: list[str]) -> list[str | Exception]:
        results: list[str | Exception] = [""] * len(audios)
        # Whisper takes the language per call, so batch by language.
        for language in sorted(set(languages)):
            index = [i for i, lang in enumerate(languages) if lang == language]
            inputs = [{"raw": audios[i], "sampling_rate": ASR_RATE} for i in index]
            kwargs = {"generate_kwargs": {"language": language}} if self.is_whisper else {}
            try:
                outputs = self.pipe(inputs, batch_size=self.config.batch_size, **kwargs)
            except Exception as exc:
                raise_if_infrastructure(exc, "asr")
                outputs = None  # one bad clip spoils the batch: find it by transcribing one at a time
            if outputs is not None:
                for i, out in zip(index, outputs, strict=True):
                    results[i] = str(out["text"]).strip()
                continue
            for i in index:  # fresh inputs: the pipeline pops keys from the dicts it was given
                try:
                    results[i] = str(self.pipe({"raw": audios[i], "sampling_rate": ASR_RATE}, **kwargs)["text"]).strip()
                except Exception as exc:
                    raise_if_infrastructure(exc, "asr")
                    results[i] = exc
        return results
