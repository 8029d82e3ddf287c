"""Where a build's files live: a local directory or an fsspec URL (s3://, gs://, file://, ...).

Every stage, export and `verify` read and write through a ChunkStore, so a worker needs only the
output URL. Keys are '/'-separated paths relative to the output root. Publishing is atomic on both:
- a file is written whole or not at all (local: temp file + rename; object store: one PUT, which a
  reader sees complete or not at all);
- a directory (a synthesize chunk: audio files + records.jsonl) counts as written once its marker
  file lands, and the marker is written last; a directory without its marker is a partial write.

An object store has no rename and no append, so the few files a process writes bit by bit (the LLM
reply journal, the embedded server's log) and the staging of uploads live in a local scratch directory
of the process (`scratch`), and are pushed to the store when complete.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from empathy_data.core.atomic import atomic_dir, write_jsonl
from empathy_data.core.atomic import write_text as atomic_write_text
from empathy_data.core.errors import BackendUnavailable, ConfigError
from empathy_data.core.hashing import digest

MARKER = "records.jsonl"  # written last into a chunk directory: the directory is complete once it exists
PARTS = "parts.json"  # the marker of a chunk's export directory: what it holds and its counts


def is_url(output: str) -> bool:
    return "://" in output


def open_store(
    output: str, storage_options: dict[str, Any] | None = None, scratch_dir: str | None = None
) -> ChunkStore:
    """A local directory (relative paths resolve against the working directory) or an fsspec URL."""
    if not is_url(output) or output.startswith("file://"):
        path = Path(output.removeprefix("file://"))
        return LocalStore(path if path.is_absolute() else Path.cwd() / path)
    import fsspec

    try:
        fs, root = fsspec.core.url_to_fs(output, **(storage_options or {}))
    except ImportError as exc:
        raise ConfigError(f"output: {output}", f"needs a filesystem package for this URL ({exc})") from None
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"output: {output}", f"not a usable storage URL ({exc})") from None
    if scratch_dir:
        scratch = Path(scratch_dir)
    else:
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        scratch = cache / "empathy-data" / digest({"output": output}, 16)
    return ObjectStore(output.rstrip("/"), fs, root.rstrip("/"), scratch.resolve())


class ChunkStore:
    """What every store does; LocalStore and ObjectStore say how."""

    url: str
    scratch: Path  # this process's own files: journals in progress, logs, upload staging
    local: bool

    def where(self, key: str = "") -> str:
        """The key as a user would type it, for messages."""
        return f"{self.url}/{key}" if key else self.url

    def exists(self, key: str) -> bool:
        raise NotImplementedError

    def read_bytes(self, key: str) -> bytes:
        raise NotImplementedError

    def write_bytes(self, key: str, data: bytes) -> None:
        raise NotImplementedError

    def remove(self, key: str) -> None:
        """A file or a whole directory; nothing there is fine."""
        raise NotImplementedError

    def remove_output(self, key: str, marker: str = MARKER) -> None:
        """A published file, or a published directory marker first: a kill part way leaves a partial
        directory (which the next run deletes), never one that looks complete with files missing."""
        self.remove(f"{key}/{marker}")  # nothing there for a file
        self.remove(key)

    def list(self, key: str = "") -> list[str]:
        """Names directly under `key` (files and directories), sorted; none if it does not exist."""
        raise NotImplementedError

    @contextmanager
    def open_read(self, key: str) -> Iterator[Any]:
        """A binary file object for streaming reads (Parquet footers, row groups)."""
        raise NotImplementedError
        yield

    @contextmanager
    def publish_dir(self, key: str, marker: str = MARKER) -> Iterator[Path]:
        """A local temp directory; if the block succeeds, its files become `key`'s, `marker` last."""
        raise NotImplementedError
        yield

    @contextmanager
    def local_dir(self, key: str) -> Iterator[Path]:
        """A local directory holding the files under `key`, for readers that need file paths."""
        raise NotImplementedError
        yield

    def publish_files(self, staging: Path, key: str, keep_others: bool = False) -> None:
        """Make the files of the local directory `staging` the files of `key` (export's data/ and
        rejects/). Each file appears whole; files `key` held before and `staging` lacks are removed
        afterwards unless `keep_others`."""
        raise NotImplementedError

    def publish_copies(self, sources: list[tuple[str, str]], key: str) -> None:
        """Make `key` hold exactly the files named in (source key, name) pairs, copied within the store
        (nothing passes through this process): export names chunk parts as the corpus's shards."""
        raise NotImplementedError

    def working_copy(self, key: str) -> Path:
        """A local file for `key` that is written bit by bit (a journal): the store's own file on a local
        store, else a scratch file started from the store's copy. `push` sends it back."""
        raise NotImplementedError

    def push(self, key: str) -> None:
        """Send working_copy(key) to the store (nothing to do on a local store)."""

    def check_reachable(self) -> None:
        """Raise one line if the store cannot be used (checked before a build claims anything)."""

    def read_text(self, key: str) -> str:
        return self.read_bytes(key).decode("utf-8")

    def write_text(self, key: str, text: str) -> None:
        self.write_bytes(key, text.encode("utf-8"))

    def read_json(self, key: str) -> Any:
        return json.loads(self.read_text(key))

    def write_json(self, key: str, value: Any) -> None:
        self.write_text(key, json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True) + "\n")

    def read_rows(self, key: str) -> list[dict]:
        return [json.loads(line) for line in self.read_text(key).splitlines() if line.strip()]

    def write_rows(self, key: str, rows: Iterable[dict]) -> None:
        text = "".join(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in rows)
        self.write_text(key, text)


class LocalStore(ChunkStore):
    local = True

    def __init__(self, root: Path):
        self.root = root
        self.url = str(root)
        self.scratch = root / "work"

    def path(self, key: str) -> Path:
        return self.root / key if key else self.root

    def exists(self, key: str) -> bool:
        return self.path(key).exists()

    def read_bytes(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def write_bytes(self, key: str, data: bytes) -> None:
        from empathy_data.core.atomic import atomic_path

        with atomic_path(self.path(key)) as tmp:
            tmp.write_bytes(data)

    def write_text(self, key: str, text: str) -> None:
        atomic_write_text(self.path(key), text)

    def write_rows(self, key: str, rows: Iterable[dict]) -> None:
        write_jsonl(self.path(key), rows)  # streams: a big chunk is never one string in memory

    def remove(self, key: str) -> None:
        path = self.path(key)
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)

    def remove_output(self, key: str, marker: str = MARKER) -> None:
        path = self.path(key)
        if not path.is_dir():
            path.unlink(missing_ok=True)
            return
        doomed = path.with_name(f".{path.name}.removed.tmp")  # one rename takes it out of sight
        os.replace(path, doomed)
        shutil.rmtree(doomed)

    def list(self, key: str = "") -> list[str]:
        path = self.path(key)
        return sorted(p.name for p in path.iterdir()) if path.is_dir() else []

    @contextmanager
    def open_read(self, key: str) -> Iterator[Any]:
        with open(self.path(key), "rb") as f:
            yield f

    @contextmanager
    def publish_dir(self, key: str, marker: str = MARKER) -> Iterator[Path]:
        with atomic_dir(self.path(key)) as tmp:  # one rename publishes the whole directory
            yield tmp

    @contextmanager
    def local_dir(self, key: str) -> Iterator[Path]:
        yield self.path(key)

    def publish_files(self, staging: Path, key: str, keep_others: bool = False) -> None:
        from empathy_data.core.atomic import replace_dir

        if keep_others:
            raise ValueError("a local store publishes whole directories")
        replace_dir(staging, self.path(key))

    def publish_copies(self, sources: list[tuple[str, str]], key: str) -> None:
        from empathy_data.core.atomic import publish_mode, replace_dir

        self.scratch.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{key.replace('/', '-')}.", suffix=".tmp", dir=self.scratch))
        try:
            for source, name in sources:
                try:  # parts are never written again once published: a hard link costs no copy
                    os.link(self.path(source), staging / name)
                except OSError:
                    shutil.copyfile(self.path(source), staging / name)
            publish_mode(staging, directory=True)
            replace_dir(staging, self.path(key))
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def working_copy(self, key: str) -> Path:
        return self.path(key)


class ObjectStore(ChunkStore):
    """An fsspec filesystem (S3, GCS, ...). Writes are whole-object PUTs; there is no rename."""

    local = False

    def __init__(self, url: str, fs: Any, root: str, scratch: Path):
        self.url = url
        self.fs = fs
        self.root = root
        self.scratch = scratch

    def path(self, key: str) -> str:
        return f"{self.root}/{key}" if key else self.root

    def exists(self, key: str) -> bool:
        path = self.path(key)
        self.fs.invalidate_cache(path)  # fsspec's listing cache does not see other processes' writes
        return bool(self.fs.exists(path))

    def read_bytes(self, key: str) -> bytes:
        return self.fs.cat_file(self.path(key))

    def write_bytes(self, key: str, data: bytes) -> None:
        self.fs.pipe_file(self.path(key), data)

    def remove(self, key: str) -> None:
        path = self.path(key)
        if self.fs.exists(path):
            self.fs.rm(path, recursive=self.fs.isdir(path))
        self.fs.invalidate_cache(path)

    def list(self, key: str = "") -> list[str]:
        path = self.path(key)
        self.fs.invalidate_cache(path)  # another process may have written since this one listed
        try:
            entries = self.fs.ls(path, detail=False)
        except FileNotFoundError:
            return []
        return sorted({e.rstrip("/").rsplit("/", 1)[-1] for e in entries if e.rstrip("/") != path})

    @contextmanager
    def open_read(self, key: str) -> Iterator[Any]:
        with self.fs.open(self.path(key), "rb") as f:
            yield f

    def _staging(self, key: str) -> Path:
        self.scratch.mkdir(parents=True, exist_ok=True)
        name = key.rstrip("/").rsplit("/", 1)[-1]
        return Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=self.scratch))

    @contextmanager
    def publish_dir(self, key: str, marker: str = MARKER) -> Iterator[Path]:
        tmp = self._staging(key)
        try:
            yield tmp
            if not (tmp / marker).is_file():
                raise RuntimeError(f"{self.where(key)}: a chunk directory needs its {marker}")
            self.remove(key)  # files a killed attempt left: this one's are complete
            for path in sorted(p for p in tmp.rglob("*") if p.is_file() and p.name != marker):
                self.fs.put_file(str(path), self.path(f"{key}/{path.relative_to(tmp).as_posix()}"))
            self.fs.put_file(str(tmp / marker), self.path(f"{key}/{marker}"))
            self.fs.invalidate_cache(self.path(key))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    @contextmanager
    def local_dir(self, key: str) -> Iterator[Path]:
        tmp = self._staging(key)
        try:
            for name in self.list(key):
                self.fs.get_file(self.path(f"{key}/{name}"), str(tmp / name))
            yield tmp
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def publish_files(self, staging: Path, key: str, keep_others: bool = False) -> None:
        before = set(self.list(key))
        names = sorted(p.name for p in staging.iterdir() if p.is_file())
        for name in names:
            self.fs.put_file(str(staging / name), self.path(f"{key}/{name}"))
        if not keep_others:
            for name in sorted(before - set(names)):
                self.fs.rm_file(self.path(f"{key}/{name}"))
        self.fs.invalidate_cache(self.path(key))

    def publish_copies(self, sources: list[tuple[str, str]], key: str) -> None:
        before = set(self.list(key))
        for source, name in sources:  # a server-side copy: one whole object each
            self.fs.copy(self.path(source), self.path(f"{key}/{name}"))
        for name in sorted(before - {name for _, name in sources}):
            self.fs.rm_file(self.path(f"{key}/{name}"))
        self.fs.invalidate_cache(self.path(key))

    def working_copy(self, key: str) -> Path:
        """Both copies only ever grow (a journal is append-only, one chunk is scripted by one process at a
        time), so the longer one is the later: take it. At worst a reply is asked for again."""
        local = self.scratch / key
        if self.exists(key) and (not local.exists() or self.fs.size(self.path(key)) > local.stat().st_size):
            local.parent.mkdir(parents=True, exist_ok=True)
            self.fs.get_file(self.path(key), str(local))
        return local

    def check_reachable(self) -> None:
        bucket = self.root.split("/", 1)[0]
        try:
            found = self.fs.exists(bucket)
        except Exception as exc:  # each filesystem package raises its own: say which and where
            raise BackendUnavailable(f"output {self.url}: storage unreachable ({type(exc).__name__}: {exc})") from None
        if not found:
            raise BackendUnavailable(f"output {self.url}: bucket {bucket!r} does not exist (create it first)")

    def push(self, key: str) -> None:
        local = self.scratch / key
        if local.is_file():
            self.fs.put_file(str(local), self.path(key))
