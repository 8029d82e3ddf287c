"""Stable content hashes for ids and cache keys."""

import hashlib
import json
from pathlib import Path
from typing import Any, BinaryIO


def stable_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def digest(value: Any, length: int = 16) -> str:
    """Hash of a JSON-able value; equal values give equal hashes across runs and machines."""
    return hashlib.sha256(stable_json(value).encode("utf-8")).hexdigest()[:length]


def file_sha256(path: Path, chunk_size: int = 1 << 20) -> str:
    with open(path, "rb") as f:
        return stream_sha256(f, chunk_size)


def stream_sha256(f: BinaryIO, chunk_size: int = 1 << 20) -> str:
    h = hashlib.sha256()
    while block := f.read(chunk_size):
        h.update(block)
    return h.hexdigest()


def tree_digest(paths: list[Path]) -> str:
    """Hash of several files' names and contents, e.g. the prompt templates."""
    h = hashlib.sha256()
    for path in sorted(paths):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]
