"""CosyVoice's S3 speech tokenizer (`speech_tokenizer_v1.onnx`, 4096 units) through onnxruntime.

For OSUM-EChat use the one inside `CosyVoice-300M-25Hz` (25 units per second): OSUM-EChat renders its speech
tokens with that model's token2wav (its README and infer_runtime.py load CosyVoice-300M-25Hz, whose
cosyvoice.py loads `{model_dir}/speech_tokenizer_v1.onnx`); a 50 Hz tokenizer's ids would not fit its vocoder.

Called the way CosyVoice's frontend (and OSUM-EChat's copy, tts/cosyvoice/cli/frontend.py
`_extract_speech_token`) calls it: one utterance per run, input 0 = 128-bin Whisper log-mel (1, 128, T) float32,
input 1 = its frame count (1,) int32, output 0 flattened to the ids; audio over 30 s is refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from empathy_recipe.audio import resample
from empathy_recipe.errors import RecipeError
from empathy_recipe.units.melspec import log_mel_spectrogram

MAX_SECONDS = 30.0


class S3Tokenizer:
    name = "cosyvoice-s3-v1"
    vocab_size = 4096
    n_mels = 128

    def __init__(self, path: str | Path, device: str = "cpu"):
        path = Path(path)
        if path.is_dir():
            path = path / "speech_tokenizer_v1.onnx"
        if not path.is_file():
            raise RecipeError(f"S3 tokenizer not found: {path} (pass the speech_tokenizer_v1.onnx file or its directory)")
        try:
            import onnxruntime
        except ImportError:
            raise RecipeError("the S3 tokenizer needs onnxruntime: pip install 'empathy-recipe[units]'") from None
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device == "cuda" else ["CPUExecutionProvider"]
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(path), sess_options=options, providers=providers)
        inputs = self.session.get_inputs()
        if len(inputs) != 2:
            raise RecipeError(f"{path} is not an S3 tokenizer: expected 2 inputs (feats, feats_length), found {len(inputs)}")
        self.input_names = (inputs[0].name, inputs[1].name)
        self.path = path
        self._fingerprint = f"{self.name}:{self.n_mels}mel:{_file_sha256(path)[:16]}"

    def fingerprint(self) -> str:
        return self._fingerprint

    def encode(self, audio: np.ndarray, sample_rate: int) -> list[int]:
        audio = resample(audio, sample_rate, 16000)
        if len(audio) / 16000 > MAX_SECONDS:
            raise ValueError(f"S3 tokenizer takes at most {MAX_SECONDS:.0f} s of audio, got {len(audio) / 16000:.1f} s")
        feats = log_mel_spectrogram(audio, self.n_mels)[None]
        lengths = np.array([feats.shape[2]], dtype=np.int32)
        out = self.session.run(None, {self.input_names[0]: feats, self.input_names[1]: lengths})[0]
        return [int(t) for t in np.asarray(out).reshape(-1)]

    def encode_batch(self, audios: Sequence[np.ndarray], sample_rate: int) -> list[list[int]]:
        # The released graph's per-item output length under padding is not part of its interface: run items singly.
        return [self.encode(a, sample_rate) for a in audios]


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
