"""Small synthetic corpora in the exported layout: data/<split>-NNNNN-of-MMMMM.parquet + manifest.json.

Columns as empathy_data/stages/export/rows.py `features()` writes them, audio as FLAC bytes (sine waves) in HF
`Audio` structs.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import soundfile as sf

RATE = 16000
QUALITY = ("user_wer", "user_cer", "assistant_wer", "assistant_cer", "user_emotion_score", "user_arousal_shift",
           "user_duration", "assistant_duration")  # fmt: skip
PROVENANCE = ("build_name", "plan_seed", "plan_index", "llm_model", "llm_seed", "prompt_hash", "tts_backend",
              "asr_backend", "regeneration_round")  # fmt: skip
AUDIO = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
SCHEMA = pa.schema(
    [("dialogue_id", pa.string()), ("exchange_index", pa.int32()), ("split", pa.string()), ("source", pa.string()),
     ("group_id", pa.string()), ("language", pa.string()),
     ("scenario", pa.string()), ("history", pa.list_(pa.struct([("role", pa.string()), ("text", pa.string())]))),
     ("user_text", pa.string()), ("user_emotion", pa.string()), ("user_speaker_id", pa.string()),
     ("user_gender", pa.string()), ("user_age_group", pa.string()), ("assistant_text", pa.string()),
     ("assistant_style", pa.string()), ("assistant_emotion", pa.string()), ("assistant_speaker_id", pa.string()),
     ("reasoning", pa.string()), ("quality", pa.struct([(q, pa.float32()) for q in QUALITY])),
     ("provenance", pa.struct([(p, pa.string()) for p in PROVENANCE])), ("user_audio", AUDIO),
     ("assistant_audio", AUDIO)]
)  # fmt: skip
EMOTIONS = ("neutral", "happy", "sad", "angry", "fearful", "surprised", "disgusted")
AGES = ("child", "teen", "young_adult", "adult", "elderly")
WORDS = "i feel so tired today my friend forgot our plan and i do not know what to say about it".split()
REPLIES = "that sounds really hard i am here with you let us take it one step at a time together".split()


def flac(seconds: float, freq: float = 220.0) -> bytes:
    t = np.arange(int(seconds * RATE)) / RATE
    buf = io.BytesIO()
    sf.write(buf, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), RATE, format="FLAC")
    return buf.getvalue()


def row(i: int, split: str = "train", exchange: int = 0, **over: Any) -> dict[str, Any]:
    rng = np.random.default_rng(i)
    user_seconds = over.pop("user_seconds", 1.5 + (i % 4) * 0.5)
    assistant_seconds = over.pop("assistant_seconds", 2.0 + (i % 3) * 0.5)
    history = [{"role": "user", "text": "hello there"}, {"role": "assistant", "text": "hi how are you"}] * exchange
    base = {
        "dialogue_id": f"d{i:04d}",
        "exchange_index": exchange,
        "split": split,
        "source": "real" if i % 4 == 3 else "synthetic",
        "group_id": f"grp-{i // 3}" if i < 6 else None,
        "language": "en",
        "scenario": "work stress",
        "history": history,
        "user_text": " ".join(rng.choice(WORDS, size=6 + i % 5)),
        "user_emotion": EMOTIONS[i % len(EMOTIONS)],
        "user_speaker_id": f"spk{i % 3}",
        "user_gender": ("female", "male")[i % 2],
        "user_age_group": AGES[i % len(AGES)],
        "assistant_text": " ".join(rng.choice(REPLIES, size=8 + i % 6)),
        "assistant_style": "comforting",
        "assistant_emotion": "sad",
        "assistant_speaker_id": "asst0",
        "reasoning": f"the user sounds {EMOTIONS[i % len(EMOTIONS)]} so answer gently",
        "quality": {q: 0.1 for q in QUALITY},
        "provenance": {p: "x" for p in PROVENANCE},
        "user_audio": {"bytes": flac(user_seconds, 200 + 10 * (i % 7)), "path": None} if user_seconds else None,
        "assistant_audio": {"bytes": flac(assistant_seconds, 330 + 7 * (i % 5)), "path": None} if assistant_seconds else None,
    }
    base.update(over)
    return base


def build(root: Path, splits: dict[str, list[dict]], rows_per_shard: int = 8, group_rows: int = 4) -> Path:
    """Write `splits` {split: rows} as a corpus under root; returns root."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    shards: dict[str, list[dict]] = {}
    for split, rows in splits.items():
        parts = [rows[i : i + rows_per_shard] for i in range(0, len(rows), rows_per_shard)] or [[]]
        shards[split] = []
        for n, part in enumerate(parts):
            name = f"{split}-{n:05d}-of-{len(parts):05d}.parquet"
            with pq.ParquetWriter(root / "data" / name, SCHEMA, compression="zstd") as writer:
                for g in range(0, len(part), group_rows):
                    writer.write_table(pa.Table.from_pylist(part[g : g + group_rows], schema=SCHEMA))
            digest = hashlib.sha256((root / "data" / name).read_bytes()).hexdigest()
            shards[split].append({"file": name, "rows": len(part), "sha256": digest})
    manifest = {"name": "synthetic", "counts": {"by_split": {s: len(r) for s, r in splits.items()}},
                "shards": {"data": shards, "rejects": []}}  # fmt: skip
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return root


def simple(root: Path, n_train: int = 12, n_test: int = 4) -> Path:
    return build(root, {"train": [row(i) for i in range(n_train)], "test": [row(100 + i, "test") for i in range(n_test)]})
