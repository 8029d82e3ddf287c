"""Kokoro-82M (int8 ONNX, shipped in PyPI parts) through onnxruntime.

Text becomes Kokoro's phonemes first: English through espeak-ng's IPA (kokoro-onnx's tokenizer, which
holds espeak-ng's process-global state under its own lock), Mandarin through misaki's Chinese G2P (espeak's
Mandarin phonemes were measured at CER 0.59 against misaki's 0.012, FIELD_NOTES). A speaker's voice is a
weighted blend of the five shipped voice packs (speaker pool `voice.blend`); Kokoro takes no emotion, so
the planned emotion moves its speed (stages/synthesize/prosody.py) and the stage its loudness, as for espeak.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np

from empathy_data.config.model import KokoroSynth
from empathy_data.core.cpus import threads_or_every_core
from empathy_data.core.errors import BackendUnavailable
from empathy_data.stages.synthesize.base import TTSRequest, render_each
from empathy_data.stages.synthesize.prosody import prosody_for

SAMPLE_RATE = 24_000
MAX_PHONEMES = 510  # the model's context, less its two boundary tokens
SENTENCE_PAUSE_S = 0.2
SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s*")


def blended_style(voices: dict[str, np.ndarray], blend: dict[str, float], where: str) -> np.ndarray:
    """The voice packs mixed by weight: one style vector per phoneme count (510 x 256)."""
    unknown = sorted(set(blend) - set(voices))
    if unknown or not blend:
        raise ValueError(f"{where}: voice.blend needs Kokoro voices from {sorted(voices)}, got {sorted(blend) or 'none'}")
    total = sum(blend.values())
    if total <= 0:
        raise ValueError(f"{where}: voice.blend weights must sum to more than 0")
    mixed = sum(weight * voices[name].astype(np.float64) for name, weight in blend.items()) / total
    return np.asarray(mixed, np.float32).reshape(len(mixed), -1)


def phoneme_pieces(phonemes: str, limit: int = MAX_PHONEMES) -> list[str]:
    """Sentences packed into pieces of at most `limit` phonemes; a sentence longer than that is cut."""
    pieces: list[str] = []
    for sentence in (s.strip() for s in SENTENCE_END.split(phonemes) if s.strip()):
        while len(sentence) > limit:
            pieces.append(sentence[:limit])
            sentence = sentence[limit:]
        if pieces and len(pieces[-1]) + 1 + len(sentence) <= limit:
            pieces[-1] = f"{pieces[-1]} {sentence}"
        else:
            pieces.append(sentence)
    return pieces


def _not_a_word_count_mismatch(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("words count mismatch")


class KokoroTTS:
    sample_rate = SAMPLE_RATE

    def __init__(self, config: KokoroSynth):
        try:
            import onnxruntime as ort
            from kokoro_onnx.tokenizer import Tokenizer
        except ImportError:
            raise BackendUnavailable("kokoro TTS needs: pip install 'empathy-data[kokoro]'") from None
        from empathy_data.weights.embedded_models import KOKORO_SHA256, embedded_kokoro

        # espeak counts words differently from the text (contractions, numbers, punctuation): phonemizer warns
        # on nearly every line, while Kokoro reads only the phoneme string
        logging.getLogger("phonemizer").addFilter(_not_a_word_count_mismatch)
        self.config = config
        root: Path = embedded_kokoro()
        self.vocab: dict[str, int] = json.loads((root / "vocab.json").read_text(encoding="utf-8"))["vocab"]
        with np.load(root / "voices_ja.npz") as packs:
            self.voices = {name: packs[name] for name in packs.files}
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads_or_every_core(config.threads)
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(root / "kokoro-v1.0.int8.onnx"), options, providers=["CPUExecutionProvider"])
        self.english = Tokenizer(vocab=self.vocab)
        self._mandarin: Any = None
        self._mandarin_lock = threading.Lock()
        self.model_sha256 = KOKORO_SHA256

    @property
    def identity(self) -> dict[str, Any]:
        return {"backend": "kokoro-82m-int8", "model_sha256": self.model_sha256, "sample_rate": self.sample_rate}

    def phonemes(self, text: str, language: str) -> str:
        if language == "en":
            return self.english.phonemize(text, "en-us")
        if language == "zh":
            with self._mandarin_lock:  # jieba's and misaki's dictionaries load on first use
                if self._mandarin is None:
                    from misaki import zh

                    self._mandarin = zh.ZHG2P()
                phonemes = self._mandarin(text)
            return phonemes[0] if isinstance(phonemes, tuple) else phonemes
        raise ValueError(f"kokoro TTS speaks en and zh, not {language!r}")

    def render(self, request: TTSRequest) -> np.ndarray:
        voice = request.speaker.voice
        style = blended_style(self.voices, voice.get("blend", {}), f"speaker {request.speaker.id}")
        speed = float(voice.get("speed", 1.0)) * prosody_for(request.emotion, request.response_style).rate_scale
        pieces = phoneme_pieces(self.phonemes(request.text, request.language))
        pause = np.zeros(int(SENTENCE_PAUSE_S * SAMPLE_RATE), np.float32)
        audio: list[np.ndarray] = []
        for piece in pieces:
            tokens = [self.vocab[p] for p in piece if p in self.vocab]
            if not tokens:
                continue
            [out] = self.session.run(None, {
                "tokens": np.array([[0, *tokens, 0]], np.int64),
                "style": style[min(len(tokens), len(style) - 1)][None, :],
                "speed": np.array([speed], np.float32),
            })  # fmt: skip
            audio += [np.asarray(out, np.float32).ravel(), pause]
        if not audio:
            raise ValueError(f"kokoro: no phonemes for {request.text[:40]!r}")
        return np.concatenate(audio[:-1])

    def synthesize(self, requests: list[TTSRequest]) -> list[np.ndarray | Exception]:
        return render_each(requests, self.render)
