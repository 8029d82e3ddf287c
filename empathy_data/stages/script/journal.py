"""Reply journal: every LLM reply of a chunk and round, appended durably the moment it arrives.

A resumed chunk reads its journal and sends only the requests it has no reply for, so a crash loses
at most the requests in flight, and a changed corpus size reuses every reply already paid for. A
request is identified by a hash of everything that decides the reply (messages, schema, seed, the
backend's sampling settings and model fingerprint); a reply never depends on the server's address.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from empathy_data.core.hashing import digest
from empathy_data.stages.script.prompting import CutOffReply

Request = tuple[list[dict[str, str]], dict[str, Any], int]  # messages, JSON schema, seed


class ReplyJournal:
    def __init__(self, path: Path, salt: Any = None):
        self.path = path
        self.salt = salt
        self.replies: dict[str, str | None] = {}
        self.replayed = 0
        self.sent = 0
        self._lock = threading.Lock()
        # A kill can cut the last line short: the next append must start on a line of its own.
        self._newline_first = False
        if path.is_file() and path.stat().st_size > 0:
            with open(path, "rb") as f:
                f.seek(-1, os.SEEK_END)
                self._newline_first = f.read(1) != b"\n"
        if path.is_file():
            with open(path, encoding="utf-8") as f:
                for line in f:
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        continue  # a line cut short by a kill: that request is simply asked again
                    reply = entry["reply"]
                    if entry.get("cut_off") and reply is not None:
                        reply = CutOffReply(reply, entry["cut_off"])
                    self.replies[entry["request"]] = reply

    def key(self, identity: dict[str, Any], request: Request) -> str:
        messages, schema, seed = request
        return digest({"llm": identity, "salt": self.salt, "messages": messages, "schema": schema, "seed": seed}, 32)

    def lookup(self, key: str) -> tuple[bool, str | None]:
        with self._lock:
            if key in self.replies:
                self.replayed += 1
                return True, self.replies[key]
            return False, None

    def append(self, key: str, reply: str | None, seed: int, label: dict[str, Any]) -> None:
        entry = {"request": key, "seed": seed, **label, "reply": reply}
        if isinstance(reply, CutOffReply):  # kept, so a replay names the cut-off as the first run did
            entry["cut_off"] = reply.max_tokens
        line = json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:
                f.write("\n" + line if self._newline_first else line)
                self._newline_first = False
                f.flush()
                os.fsync(f.fileno())
            self.replies[key] = reply
            self.sent += 1
