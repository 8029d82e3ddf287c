"""Log-mel features for the audio encoder, by transformers' WhisperFeatureExtractor (80 or 128 mel bins)."""

from __future__ import annotations

import math

import numpy as np
from transformers import WhisperFeatureExtractor


class AudioFeatures:
    """Pads / cuts each utterance to `chunk_seconds` (the encoder's fixed window) and says how many audio
    placeholder tokens its valid part becomes after the encoder's stride-2 conv and `stack`-frame projector."""

    def __init__(self, n_mels: int = 80, chunk_seconds: int = 30, stack: int = 4):
        if n_mels not in (80, 128):
            raise ValueError(f"n_mels must be 80 or 128, got {n_mels}")
        self.extractor = WhisperFeatureExtractor(feature_size=n_mels, chunk_length=chunk_seconds)
        self.n_mels = n_mels
        self.frames = self.extractor.nb_max_frames
        self.stack = stack

    def __call__(self, audio: np.ndarray) -> tuple[np.ndarray, int]:
        feats = self.extractor(audio, sampling_rate=16000, return_tensors="np").input_features[0]
        valid = min(len(audio) // self.extractor.hop_length, self.frames)
        return feats.astype(np.float32), self.placeholders(valid)

    def placeholders(self, valid_frames: int) -> int:
        return max(1, math.ceil(math.ceil(valid_frames / 2) / self.stack))

    @property
    def max_placeholders(self) -> int:
        return self.frames // 2 // self.stack
