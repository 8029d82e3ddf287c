"""Re-check a built corpus: checksums, row counts, audio decodability, uniqueness, split integrity."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from empathy_data.core.audio import decode_bytes
from empathy_data.core.hashing import stream_sha256
from empathy_data.records.manifest import Manifest, ManifestError
from empathy_data.store.chunk_store import ChunkStore, open_store


class VerifyError(Exception):
    """The first problem found, as one line."""


def verify_corpus(
    out: Path | str | ChunkStore, decode_audio: bool = True, storage_options: dict[str, Any] | None = None
) -> dict[str, int]:
    """`out`: a build's directory, its output URL, or its store."""
    store = out if isinstance(out, ChunkStore) else open_store(str(out), storage_options)
    manifest_path = store.where("manifest.json")
    if not store.exists("manifest.json"):
        raise VerifyError(f"{manifest_path}: missing (the build did not finish)")
    try:
        manifest = Manifest.parse(store.read_text("manifest.json"), manifest_path)
    except ManifestError as exc:
        raise VerifyError(str(exc)) from None
    counts = manifest.counts
    for unit, c in (("dialogues", counts.dialogues), ("exchanges", counts.exchanges)):
        if not c.adds_up():
            raise VerifyError(f"manifest.json: counts.{unit} do not add up: {c.model_dump()}")

    listed = set()
    for _split, key, shard in manifest.shards.listed():
        listed.add(key)
        path = store.where(key)
        if not store.exists(key):
            raise VerifyError(f"{path}: listed in manifest.json but missing")
        with store.open_read(key) as f:
            if stream_sha256(f) != shard.sha256:
                raise VerifyError(f"{path}: sha256 differs from manifest.json")
            f.seek(0)
            if pq.ParquetFile(f).metadata.num_rows != shard.rows:
                raise VerifyError(f"{path}: holds a different row count than manifest.json says ({shard.rows})")
    for folder in ("data", "rejects"):
        for name in store.list(folder):
            if name.endswith(".parquet") and f"{folder}/{name}" not in listed:
                raise VerifyError(f"{store.where(f'{folder}/{name}')}: not listed in manifest.json")

    seen: set[tuple[str, int]] = set()
    split_of: dict[str, str] = {}
    speaker_split: dict[str, str] = {}
    by_speaker = manifest.config.get("export", {}).get("split_by") == "speaker"
    rows = 0
    for split, shard_key, _ in manifest.shards.listed():
        if split == "rejects":
            continue
        columns = ["dialogue_id", "exchange_index", "split", "user_speaker_id"]
        columns += ["user_audio", "assistant_audio"] if decode_audio else []
        with store.open_read(shard_key) as f:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=64, columns=columns):
                for row in batch.to_pylist():
                    key = (row["dialogue_id"], row["exchange_index"])
                    where = f"{shard_key.rsplit('/', 1)[-1]}: {key[0]} exchange {key[1]}"
                    if key in seen:
                        raise VerifyError(f"{where}: appears twice")
                    seen.add(key)
                    if row["split"] != split:
                        raise VerifyError(f"{where}: row says split {row['split']!r} but lies in a {split!r} shard")
                    if split_of.setdefault(key[0], split) != split:
                        raise VerifyError(f"{where}: dialogue straddles splits {split_of[key[0]]!r} and {split!r}")
                    speaker = row["user_speaker_id"]
                    if by_speaker and speaker_split.setdefault(speaker, split) != split:
                        raise VerifyError(
                            f"{where}: user speaker {speaker} is in splits {speaker_split[speaker]!r} and {split!r}"
                        )
                    for col in ("user_audio", "assistant_audio") if decode_audio else ():
                        try:
                            audio, rate = decode_bytes(row[col]["bytes"])
                        except Exception as exc:
                            raise VerifyError(f"{where}: {col} does not decode ({exc})") from None
                        if audio.size == 0 or rate <= 0:
                            raise VerifyError(f"{where}: {col} is empty")
                    rows += 1
    if rows != counts.exchanges.accepted:
        raise VerifyError(f"data/ holds {rows} rows but manifest.json counts {counts.exchanges.accepted} accepted")
    rejected = sum(s.rows for s in manifest.shards.rejects)
    replaced = counts.regeneration.exchanges_replaced
    if rejected != counts.exchanges.rejected + counts.exchanges.failed + replaced:
        raise VerifyError(
            f"rejects/ holds {rejected} rows but manifest.json counts rejected + failed + replaced differently"
        )
    return {"rows": rows, "rejects": rejected, "dialogues": len(split_of)}
