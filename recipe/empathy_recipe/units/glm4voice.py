"""GLM-4-Voice's speech tokenizer (OpenS2S units, 16384 ids at 12.5 Hz): a Whisper-VQ encoder + WhisperFeatureExtractor.

The encoder class lives in the GLM-4-Voice repository (speech_tokenizer/modeling_whisper.py, WhisperVQEncoder;
config in speech_tokenizer/configuration_whisper.py, WhisperVQConfig), not in any package: pass that checkout
with --tokenizer-repo. Loading and batching follow speech_tokenizer/utils.py (load_quantize_encoder,
extract_speech_token): encoder weights under "model.encoder.", layers from quantize_position on and the final
layer norm left out, 30 s segments, padding to a multiple of the token stride, ids kept where the strided
attention mask is set.
"""

from __future__ import annotations

import glob
import hashlib
import importlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from empathy_recipe.audio import resample
from empathy_recipe.errors import RecipeError

SEGMENT_SECONDS = 30


def import_glm_classes(repo: str | Path | None):
    if repo is not None:
        repo = Path(repo).resolve()
        if not (repo / "speech_tokenizer" / "modeling_whisper.py").is_file():
            raise RecipeError(f"--tokenizer-repo {repo} has no speech_tokenizer/modeling_whisper.py (a GLM-4-Voice checkout)")
        if str(repo) not in sys.path:
            sys.path.insert(0, str(repo))
    try:
        modeling = importlib.import_module("speech_tokenizer.modeling_whisper")
        configuration = importlib.import_module("speech_tokenizer.configuration_whisper")
    except ImportError as e:
        raise RecipeError(
            f"cannot import GLM-4-Voice's speech_tokenizer ({e}); pass --tokenizer-repo DIR (a GLM-4-Voice checkout)"
        ) from None
    return configuration.WhisperVQConfig, modeling.WhisperVQEncoder


class GLM4VoiceTokenizer:
    name = "glm-4-voice"

    def __init__(self, path: str | Path, repo: str | Path | None = None, device: str = "cpu", batch_size: int = 16):
        path = Path(path)
        if not (path / "config.json").is_file():
            raise RecipeError(f"GLM-4-Voice tokenizer not found: {path}/config.json (pass the glm-4-voice-tokenizer directory)")
        try:
            import safetensors
            import torch
            from transformers import WhisperFeatureExtractor
        except ImportError:
            raise RecipeError("the GLM-4-Voice tokenizer needs torch and transformers: pip install 'empathy-recipe[train]'") from None
        config_cls, encoder_cls = import_glm_classes(repo)
        config = config_cls.from_pretrained(str(path))
        config.quantize_encoder_only = True
        model = encoder_cls(config)
        state = {}
        files = sorted(glob.glob(os.path.join(path, "model*.safetensors")))
        if not files:
            raise RecipeError(f"GLM-4-Voice tokenizer weights not found: {path}/model*.safetensors")
        for file in files:
            with safetensors.safe_open(file, framework="pt", device="cpu") as f:
                for key in f.keys():
                    if not key.startswith("model.encoder."):
                        continue
                    name = key[len("model.encoder.") :]
                    if name.startswith("layer_norm"):
                        continue
                    if name.startswith("layers") and int(name.split(".")[1]) >= config.quantize_position:
                        continue
                    state[name] = f.get_tensor(key)
        model.load_state_dict(state)
        self.model = model.eval().to(device)
        self.torch = torch
        self.device = device
        self.batch_size = batch_size
        self.features = WhisperFeatureExtractor.from_pretrained(str(path))
        self.vocab_size = int(config.quantize_vocab_size)
        self.pooling = config.pooling_kernel_size or 1
        self.conv_stride = self.model.conv1.stride[0] * self.model.conv2.stride[0]
        self._fingerprint = _fingerprint(path, files)

    def fingerprint(self) -> str:
        return self._fingerprint

    def encode(self, audio: np.ndarray, sample_rate: int) -> list[int]:
        return self.encode_batch([audio], sample_rate)[0]

    def encode_batch(self, audios: Sequence[np.ndarray], sample_rate: int) -> list[list[int]]:
        segments, owners = [], []
        for i, audio in enumerate(audios):
            audio = resample(audio, sample_rate, 16000)
            for start in range(0, max(len(audio), 1), SEGMENT_SECONDS * 16000):
                segments.append(audio[start : start + SEGMENT_SECONDS * 16000])
                owners.append(i)
        stride = self.conv_stride * self.pooling * self.features.hop_length
        out: list[list[int]] = [[] for _ in audios]
        with self.torch.no_grad():
            for b in range(0, len(segments), self.batch_size):
                batch = self.features(
                    segments[b : b + self.batch_size], sampling_rate=16000, return_attention_mask=True,
                    return_tensors="pt", padding="longest", pad_to_multiple_of=stride,
                )  # fmt: skip
                batch = batch.to(self.device)
                ids = self.model(input_features=batch.input_features, attention_mask=batch.attention_mask).quantized_token_ids
                mask = batch.attention_mask[:, :: self.conv_stride][:, :: self.pooling]
                if mask.shape != ids.shape:
                    raise RecipeError(f"GLM-4-Voice tokenizer output {tuple(ids.shape)} does not match its mask {tuple(mask.shape)}")
                for j in range(ids.shape[0]):
                    out[owners[b + j]].extend(int(t) for t in ids[j][mask[j].bool()].tolist())
        return out


def _fingerprint(path: Path, weight_files: list[str]) -> str:
    h = hashlib.sha256((path / "config.json").read_bytes())
    for file in weight_files:
        stat = os.stat(file)
        h.update(json.dumps([os.path.basename(file), stat.st_size]).encode())
        with open(file, "rb") as f:
            h.update(f.read(1 << 20))
    return f"glm-4-voice:{h.hexdigest()[:16]}"
