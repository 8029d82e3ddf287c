"""Pad a list of samples into a batch: input_ids, attention_mask, labels, and the utterances' features."""

from __future__ import annotations

import numpy as np
import torch

from empathy_recipe.data.template import IGNORE


class Collator:
    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, samples: list[dict]) -> dict[str, torch.Tensor]:
        width = max(len(s["input_ids"]) for s in samples)
        ids = torch.full((len(samples), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(samples), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(samples), width), dtype=torch.long)
        for i, s in enumerate(samples):
            n = len(s["input_ids"])
            ids[i, :n] = torch.tensor(s["input_ids"])
            labels[i, :n] = torch.tensor(s["labels"])
            mask[i, :n] = 1
        feats = torch.from_numpy(np.stack([s["input_features"] for s in samples]))
        return {"input_ids": ids, "attention_mask": mask, "labels": labels, "input_features": feats,
                "audio_tokens": torch.tensor([s["audio_tokens"] for s in samples])}  # fmt: skip
