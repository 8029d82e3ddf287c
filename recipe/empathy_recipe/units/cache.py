"""Per-utterance speech-unit cache (sqlite), keyed by the audio's sha256 and the tokenizer's fingerprint."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from empathy_recipe.units.protocol import SpeechTokenizer


def audio_key(audio: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(audio, dtype=np.float32).tobytes()).hexdigest()


class UnitCache:
    def __init__(self, path: Path, tokenizer: SpeechTokenizer, batch_size: int = 16):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path))
        self.db.execute("CREATE TABLE IF NOT EXISTS units (audio TEXT, tokenizer TEXT, ids TEXT, PRIMARY KEY (audio, tokenizer))")
        self.tokenizer = tokenizer
        self.fingerprint = tokenizer.fingerprint()
        self.batch_size = batch_size
        self.hits = 0
        self.computed = 0

    def units(self, audios: Sequence[np.ndarray], sample_rate: int) -> list[list[int]]:
        """Units for every audio: cached ones read back, the rest encoded in batches and stored."""
        keys = [audio_key(a) for a in audios]
        found: dict[str, list[int]] = {}
        for key in set(keys):
            row = self.db.execute("SELECT ids FROM units WHERE audio=? AND tokenizer=?", (key, self.fingerprint)).fetchone()
            if row is not None:
                found[key] = json.loads(row[0])
        first_of: dict[str, int] = {}
        for i, k in enumerate(keys):
            if k not in found:
                first_of.setdefault(k, i)  # the same audio twice is encoded once
        missing = list(first_of.values())
        self.hits += len(keys) - len(missing)
        for b in range(0, len(missing), self.batch_size):
            chunk = missing[b : b + self.batch_size]
            for i, ids in zip(chunk, self.tokenizer.encode_batch([audios[i] for i in chunk], sample_rate), strict=True):
                found[keys[i]] = ids
                self.db.execute("INSERT OR REPLACE INTO units VALUES (?, ?, ?)", (keys[i], self.fingerprint, json.dumps(ids)))
            self.computed += len(chunk)
        self.db.commit()
        return [found[k] for k in keys]

    def close(self) -> None:
        self.db.close()
