"""ASR backends: audio batch in, transcripts out."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from empathy_data.config.model import FasterWhisperASR
from empathy_data.core.cpus import threads_or_every_core
from empathy_data.core.errors import BackendUnavailable, each_or_error, raise_if_infrastructure
from empathy_data.core.scoped import one_blas_thread

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
        from empathy_data.weights.embedded_models import embedded_whisper

        self.config = config
        self.model_path = str(embedded_whisper()) if config.model == "embedded" else config.model
        self.model = WhisperModel(
            self.model_path,
            device=config.device,
            compute_type=config.compute_type,
            cpu_threads=threads_or_every_core(config.cpu_threads),
        )

    @property
    def identity(self) -> dict[str, Any]:
        identity = {
            "backend": "faster-whisper",
            "model": "whisper-base (embedded)" if self.config.model == "embedded" else self.config.model,
            "compute_type": self.config.compute_type,
            "beam_size": self.config.beam_size,
        }
        # Same transcripts as one at a time on CPU (tested); a GPU's batched kernels may round differently,
        # so the filter key (backends/builtin.py) keeps a larger batch apart too.
        if self.config.batch_size > 1:
            identity["batch_size"] = self.config.batch_size
        return identity

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
        # faster-whisper computes its log-mel features with numpy, whose OpenBLAS matmuls give slightly
        # different numbers with a different thread count, enough to change a transcript (seen: "man"
        # vs "bear" with OPENBLAS_NUM_THREADS=1, which Dask's worker nanny sets). One BLAS thread while
        # transcribing makes a transcript the same on every runner; the model's own threads are cpu_threads.
        with one_blas_thread():
            return self._transcribe(audios, languages)

    def _transcribe(self, audios: list[np.ndarray], languages: list[str]) -> list[str | Exception]:
        results: list[str | Exception] = [""] * len(audios)
        one_by_one = list(range(len(audios)))
        if self.config.batch_size > 1:
            window = self.model.feature_extractor.n_samples  # 30 s: longer clips need transcribe()'s seeking
            batchable = [i for i, audio in enumerate(audios) if audio.ndim == 1 and 0 < len(audio) <= window]
            one_by_one = sorted(set(one_by_one) - set(batchable))
            for language in sorted({languages[i] for i in batchable}):
                same = [i for i in batchable if languages[i] == language]
                for start in range(0, len(same), self.config.batch_size):
                    index = same[start : start + self.config.batch_size]
                    try:
                        texts = self.transcribe_batch([audios[i] for i in index], language)
                    except Exception as exc:
                        raise_if_infrastructure(exc, "asr")
                        one_by_one += index  # one bad clip spoils the batch: find it one at a time
                        continue
                    for i, text in zip(index, texts, strict=True):
                        results[i] = text
        one_by_one.sort()
        singles = each_or_error(one_by_one, lambda i: self.transcribe_one(audios[i], languages[i]), "asr")
        for i, text in zip(one_by_one, singles, strict=True):
            results[i] = text
        return results

    def transcribe_batch(self, audios: list[np.ndarray], language: str) -> list[str]:
        """What transcribe_one gives each clip of at most 30 s, for a batch encoded and decoded together:
        the same features, prompt, decoding options and no-speech rule as transcribe()'s first window."""
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens, pad_or_trim

        model = self.model
        tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=language)
        features = []
        for audio in audios:
            full = model.feature_extractor(audio)
            features.append(pad_or_trim(full[:, : full.shape[-1] - 1]))  # transcribe() drops the last frame
        encoded = model.encode(np.stack(features))
        prompt = model.get_prompt(tokenizer, [], without_timestamps=True)
        replies = model.model.generate(
            encoded,
            [list(prompt) for _ in audios],
            beam_size=self.config.beam_size,
            patience=1,
            length_penalty=1,
            repetition_penalty=1,
            no_repeat_ngram_size=0,
            max_length=model.max_length,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
            max_initial_timestamp_index=int(round(1.0 / model.time_precision)),
        )
        texts = []
        for reply in replies:
            tokens = reply.sequences_ids[0]
            avg_logprob = reply.scores[0] * len(tokens) / (len(tokens) + 1)
            # transcribe()'s defaults: no speech when no_speech_prob > 0.6 unless avg_logprob > -1
            silent = reply.no_speech_prob > 0.6 and not avg_logprob > -1.0
            texts.append("" if silent else tokenizer.decode(tokens).strip())
        return texts
