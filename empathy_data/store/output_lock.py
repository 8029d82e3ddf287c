"""One build per output directory at a time: an OS-level lock held for the whole build.

The lock file is `<out>/.build.lock` (flock: released by the kernel when the process dies, even by
SIGKILL, so a crashed build never leaves a stale lock). Who holds it is written beside it. An object
store has no such lock: for an output URL the lock lives in this machine's scratch directory of that
URL, so it keeps out a second build started on this machine, not one started on another.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from filelock import FileLock, Timeout

from empathy_data.core.errors import OutputLocked
from empathy_data.store.chunk_store import ChunkStore, LocalStore

LOCK_NAME = ".build.lock"
OWNER_NAME = ".build.owner"


class OutputLock:
    """`with OutputLock(out):` holds the output for this process; re-entrant within the process."""

    def __init__(self, out: Path | ChunkStore):
        self.name = out.url if isinstance(out, ChunkStore) else str(out)
        if isinstance(out, ChunkStore):
            out = out.root if isinstance(out, LocalStore) else out.scratch
        self.out = out
        self.lock = FileLock(str(out / LOCK_NAME), is_singleton=True)

    def holder(self) -> str:
        try:
            owner = json.loads((self.out / OWNER_NAME).read_text())
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(owner["since"]))
            return f"pid {owner['pid']} on {owner['host']} (since {since})"
        except (OSError, ValueError, KeyError):
            return "another process"

    def acquire(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        first = not self.lock.is_locked
        try:
            self.lock.acquire(timeout=0)
        except Timeout:
            raise OutputLocked(
                f"output {self.name} is being built by {self.holder()}; wait for it to finish or use another --out"
            ) from None
        if first:
            owner = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
            (self.out / OWNER_NAME).write_text(json.dumps(owner) + "\n")

    def release(self) -> None:
        self.lock.release()

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
