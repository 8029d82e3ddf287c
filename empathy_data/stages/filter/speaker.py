"""Speaker embeddings as the filter's voice checks: one role keeps its voice across a dialogue, user and
assistant sound apart, a cloned turn sounds like its reference clip.

An encoder embeds a batch of clips (L2-normalised vectors); the judges are pure functions over the
embeddings of one dialogue.
"""

from __future__ import annotations

import importlib.metadata
import warnings
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from empathy_data.core.audio import resample
from empathy_data.core.errors import BackendUnavailable, ConfigError, each_or_error, raise_if_infrastructure

ENCODER_RATE = 16000
SILENT_PEAK = 10 ** (-60 / 20)
USER, ASSISTANT = "user", "assistant"
# embed_utterance's defaults: 1.6 s partials, 1.3 per second, a last partial kept when 75 % covered.
PARTIALS_PER_SECOND, MIN_COVERAGE = 1.3, 0.75
# An x-vector's TDNN takes 14 frames of context after the 20 ms feature encoder (0.3 s): a shorter clip pools
# nothing, or fails.
MIN_XVECTOR_SECONDS = 0.5


class SpeakerEncoder(Protocol):
    @property
    def identity(self) -> dict[str, Any]:
        """What decides the embeddings."""
        ...

    def embed_batch(self, clips: list[tuple[np.ndarray, int]]) -> list[np.ndarray | Exception]:
        """An L2-normalised embedding per (audio, sample_rate) clip, or the exception that clip raised; an
        infrastructure fault raises."""
        ...


def checked_clip(audio: np.ndarray, sample_rate: int, target_rate: int = ENCODER_RATE) -> np.ndarray:
    """The clip as float32 mono at `target_rate`; ValueError when there is nothing to embed."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"expected mono audio, got shape {audio.shape}")
    if audio.size == 0:
        raise ValueError("empty clip")
    if not np.isfinite(audio).all():
        raise ValueError("clip has NaN or infinite samples")
    if float(np.abs(audio).max()) < SILENT_PEAK:
        raise ValueError("silent clip (peak below -60 dBFS)")
    return resample(audio, sample_rate, target_rate)


def unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    if not np.isfinite(norm) or norm == 0.0:
        raise ValueError("the embedding is zero or not finite")
    return vector / norm


def _embed_into(
    results: list[np.ndarray | Exception], indices: list[int], embed: Callable[[list[int]], list[np.ndarray]]
) -> None:
    """results[i] = the embedding of clip i for `indices`, in one call; if that call fails, each clip on
    its own, so that a bad clip fails only itself (an infrastructure fault raises)."""
    try:
        embeddings: list[np.ndarray | Exception] = list(embed(indices))
    except Exception as exc:
        raise_if_infrastructure(exc, "speaker")
        embeddings = each_or_error(indices, lambda i: embed([i])[0], "speaker")
    for i, embedding in zip(indices, embeddings, strict=True):
        results[i] = embedding


class ResemblyzerEncoder:
    """Resemblyzer's GE2E LSTM encoder (weights inside its PyPI package). Computes what
    `VoiceEncoder.embed_utterance(preprocess_wav(clip))` does for each clip, with every clip's 1.6 s
    partials going through the network together, `batch_size` partials per call.

    preprocess_wav is kept: the encoder was trained on audio it had prepared (volume raised to -30 dBFS,
    pauses longer than ~0.2 s cut by webrtcvad), so a turn's pauses and level do not move its embedding.
    Only its resampler is replaced (soxr, as elsewhere in the filter, instead of librosa)."""

    def __init__(self, device: str = "cpu", batch_size: int = 64):
        try:
            with warnings.catch_warnings():
                # webrtcvad imports pkg_resources, resemblyzer imports scipy.ndimage.morphology: both warn
                warnings.simplefilter("ignore")
                from resemblyzer import VoiceEncoder, audio
        except ImportError:
            raise BackendUnavailable(
                "speaker backend resemblyzer needs: pip install resemblyzer 'setuptools<81'"
            ) from None
        self._audio = audio
        self.encoder = VoiceEncoder(device, verbose=False).eval()
        self.batch_size = batch_size

    @property
    def identity(self) -> dict[str, Any]:
        return {"backend": "resemblyzer", "version": importlib.metadata.version("resemblyzer")}

    def partials(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """The clip's mel partials, (n, 160, 40), exactly as embed_utterance cuts them."""
        wav = self._audio.preprocess_wav(checked_clip(audio, sample_rate))
        if wav.size == 0:
            raise ValueError("no speech found (voice activity detection kept nothing)")
        wav_slices, mel_slices = self.encoder.compute_partial_slices(len(wav), PARTIALS_PER_SECOND, MIN_COVERAGE)
        if wav_slices[-1].stop >= len(wav):
            wav = np.pad(wav, (0, wav_slices[-1].stop - len(wav)))
        mel = self._audio.wav_to_mel_spectrogram(wav)
        return np.array([mel[s] for s in mel_slices])

    def forward(self, mels: np.ndarray) -> np.ndarray:
        import torch

        out = []
        with torch.inference_mode():
            for start in range(0, len(mels), self.batch_size):
                batch = torch.from_numpy(mels[start : start + self.batch_size]).to(self.encoder.device)
                out.append(self.encoder(batch).cpu().numpy())
        return np.concatenate(out)

    def embed_batch(self, clips: list[tuple[np.ndarray, int]]) -> list[np.ndarray | Exception]:
        results: list[np.ndarray | Exception] = each_or_error(clips, lambda clip: self.partials(*clip), "speaker")
        ready = [i for i, r in enumerate(results) if not isinstance(r, Exception)]

        def embed(indices: list[int]) -> list[np.ndarray]:
            partials = [results[i] for i in indices]
            embedded = self.forward(np.concatenate(partials))
            bounds = np.cumsum([0] + [len(p) for p in partials])
            return [unit(embedded[a:b].mean(axis=0)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

        if ready:
            _embed_into(results, ready, embed)
        return results


class XVectorEncoder:
    """A WavLM / UniSpeech-SAT x-vector model (e.g. microsoft/wavlm-base-plus-sv) from a local directory,
    through transformers' AutoModelForAudioXVector. A clip gets the same embedding alone or in a batch:
    batches are padded with an attention mask, and models whose feature encoder normalises over time
    (feat_extract_norm "group", the base models), where padding would shift every frame, embed one clip
    per call."""

    def __init__(self, model: str, device: str = "cpu", batch_size: int = 8):
        path = Path(model).expanduser()
        if not path.is_dir():
            raise ConfigError(
                "filter.speaker.model",
                f"{model}: no such directory (a local x-vector model, e.g. microsoft/wavlm-base-plus-sv)",
            )
        try:
            from transformers import AutoFeatureExtractor, AutoModelForAudioXVector
        except ImportError:
            raise BackendUnavailable(
                "speaker backend xvector needs: pip install 'empathy-data[transformers]'"
            ) from None
        self.model_name = model
        self.extractor = AutoFeatureExtractor.from_pretrained(path, local_files_only=True)
        self.model = AutoModelForAudioXVector.from_pretrained(path, local_files_only=True).to(device).eval()
        config = self.model.config
        if hasattr(self.model, "_get_tdnn_output_lengths"):
            # transformers (5.x) shortens the valid length by kernel - 1 per TDNN layer, leaving out the
            # dilation, so a padded clip's statistics pooling took in frames computed from the padding.
            self.model._get_tdnn_output_lengths = partial(tdnn_output_lengths, config)
        self.device = device
        self.batch_size = 1 if getattr(config, "feat_extract_norm", "layer") == "group" else batch_size
        self.sample_rate = int(self.extractor.sampling_rate)

    @property
    def identity(self) -> dict[str, Any]:
        return {"backend": "xvector", "model": self.model_name}

    def prepared(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        clip = checked_clip(audio, sample_rate, self.sample_rate)
        if len(clip) < MIN_XVECTOR_SECONDS * self.sample_rate:
            raise ValueError(f"clip shorter than {MIN_XVECTOR_SECONDS} s")
        return clip

    def embed(self, audios: Sequence[np.ndarray]) -> list[np.ndarray]:
        import torch

        inputs = self.extractor(
            list(audios), sampling_rate=self.sample_rate, padding=True, return_attention_mask=True, return_tensors="pt"
        ).to(self.device)
        with torch.inference_mode(), warnings.catch_warnings():
            # WavLM's attention hands torch a bool padding mask with a float position bias (transformers 5)
            warnings.filterwarnings("ignore", message="Support for mismatched key_padding_mask and attn_mask")
            embeddings = self.model(**inputs).embeddings.float().cpu().numpy()
        return [unit(e) for e in embeddings]

    def embed_batch(self, clips: list[tuple[np.ndarray, int]]) -> list[np.ndarray | Exception]:
        results: list[np.ndarray | Exception] = each_or_error(clips, lambda clip: self.prepared(*clip), "speaker")
        ready = sorted(
            (i for i, r in enumerate(results) if not isinstance(r, Exception)), key=lambda i: len(results[i])
        )

        def embed(indices: list[int]) -> list[np.ndarray]:
            return self.embed([results[i] for i in indices])

        for start in range(0, len(ready), self.batch_size):
            _embed_into(results, ready[start : start + self.batch_size], embed)
        return results


def tdnn_output_lengths(config: Any, lengths: Any) -> Any:
    for kernel, dilation in zip(config.tdnn_kernel, config.tdnn_dilation, strict=True):
        lengths = lengths - dilation * (kernel - 1)
    return lengths


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(unit(np.asarray(a, dtype=np.float64)), unit(np.asarray(b, dtype=np.float64))))


def role_consistency(embeddings: list[np.ndarray], roles: list[str]) -> list[float | None]:
    """Per turn: cosine similarity to the mean embedding of the same role's other turns in the dialogue
    (None when the role has no other turn)."""
    if len(embeddings) != len(roles):
        raise ValueError(f"{len(embeddings)} embeddings for {len(roles)} roles")
    scores: list[float | None] = []
    for i, role in enumerate(roles):
        others = [e for j, e in enumerate(embeddings) if j != i and roles[j] == role]
        scores.append(cosine(embeddings[i], np.mean(others, axis=0)) if others else None)
    return scores


def voice_distinctness(embeddings: list[np.ndarray], roles: list[str]) -> float | None:
    """Cosine similarity between the user's and the assistant's mean embeddings (None when a role has no
    turn): high means the two sides sound alike."""
    if len(embeddings) != len(roles):
        raise ValueError(f"{len(embeddings)} embeddings for {len(roles)} roles")
    user = [e for e, role in zip(embeddings, roles, strict=True) if role == USER]
    assistant = [e for e, role in zip(embeddings, roles, strict=True) if role == ASSISTANT]
    if not user or not assistant:
        return None
    return cosine(np.mean(user, axis=0), np.mean(assistant, axis=0))


def reference_similarity(turn_embedding: np.ndarray, reference_embedding: np.ndarray) -> float:
    return cosine(turn_embedding, reference_embedding)
