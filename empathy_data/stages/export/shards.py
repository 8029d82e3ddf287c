"""Streaming Parquet shard writer: rows go out in row groups, never the whole corpus in memory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from empathy_data.core.hashing import file_sha256

if TYPE_CHECKING:
    from datasets import Features


class ShardWriter:
    """Writes <prefix>-NNNNN.parquet parts into `directory`; `finish` renames them to -NNNNN-of-MMMMM."""

    def __init__(self, directory: Path, prefix: str, features: Features, rows_per_shard: int, group_rows: int = 64):
        self.directory = directory
        self.prefix = prefix
        self.schema = features.arrow_schema
        self.rows_per_shard = rows_per_shard
        self.group_rows = max(1, min(group_rows, rows_per_shard))
        self.buffer: list[dict] = []
        self.writer: pq.ParquetWriter | None = None
        self.rows_in_shard = 0
        self.parts: list[tuple[Path, int]] = []

    def write(self, row: dict) -> None:
        self.buffer.append(row)
        if len(self.buffer) >= self.group_rows or self.rows_in_shard + len(self.buffer) >= self.rows_per_shard:
            self._flush()

    def _flush(self) -> None:
        while self.buffer:
            if self.writer is None:
                path = self.directory / f"{self.prefix}-{len(self.parts):05d}.parquet"
                self.writer = pq.ParquetWriter(path, self.schema, compression="zstd")
                self.parts.append((path, 0))
            room = self.rows_per_shard - self.rows_in_shard
            batch, self.buffer = self.buffer[:room], self.buffer[room:]
            self.writer.write_table(pa.Table.from_pylist(batch, schema=self.schema))
            self.rows_in_shard += len(batch)
            path, rows = self.parts[-1]
            self.parts[-1] = (path, rows + len(batch))
            if self.rows_in_shard >= self.rows_per_shard:
                self._close_shard()

    def _close_shard(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
            self.rows_in_shard = 0

    def finish(self) -> list[dict]:
        self._flush()
        self._close_shard()
        total = len(self.parts)
        shards = []
        for i, (path, rows) in enumerate(self.parts):
            final = path.with_name(f"{self.prefix}-{i:05d}-of-{total:05d}.parquet")
            os.replace(path, final)
            shards.append({"file": final.name, "rows": rows, "sha256": file_sha256(final)})
        return shards
