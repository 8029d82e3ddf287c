"""Where a build's chunk outputs live under work/, and the cache key that names each one.

work/<stage>/c<chunk>[-r<round>]-<key>: a JSONL file, or for synthesize a directory of audio files and
its MARKER, records.jsonl. Each key hashes its stage's settings and the key upstream of it, so a
changed setting names new files and leaves finished ones alone (tests/test_golden_keys.py pins them).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Protocol

from empathy_data.core.hashing import digest
from empathy_data.records.chunk_records import ChunkRecords
from empathy_data.store.chunk_store import MARKER, ChunkStore, LocalStore

STAGES = ("script", "synthesize", "filter")
Keys = dict[str, dict[int, list[str]]]  # keys[stage][chunk][round], round 0 first


class ChunkPlan(Protocol):
    """What the keys need of a plan (planning/plan.py's Planner): its key and what each chunk holds."""

    @property
    def key(self) -> str: ...

    @property
    def num_chunks(self) -> int: ...

    def chunk_where(self, chunk_index: int) -> dict[str, Any]: ...


def stage_keys(plan: ChunkPlan, settings: dict[str, Any], rounds: range) -> Keys:
    """Round r's script chunk comes after round r-1's filter chunk (which dialogues it writes again
    depends on it); round 0 does not depend on the number of rounds, so adding rounds to a finished
    build reuses all of it."""
    keys: Keys = {stage: {} for stage in STAGES}
    for c in range(plan.num_chunks):
        where = plan.chunk_where(c)
        previous: str | None = None
        for r in rounds:
            for stage in STAGES:
                if stage == "script":
                    upstream: Any = {"plan": plan.key, **where}
                    if r:
                        upstream |= {"round": r, "after": previous}
                else:
                    upstream = previous
                previous = digest({"stage": stage, "settings": settings[stage], "upstream": upstream})
                keys[stage].setdefault(c, []).append(previous)
    return keys


class WorkLayout:
    """The chunk outputs of one build in its store. The keys follow the plan: when top-up appends
    chunks, they are computed again and swapped in whole, so readers on other threads never see a
    half-built table."""

    def __init__(self, store: ChunkStore, plan: ChunkPlan, settings: dict[str, Any], rounds: range):
        self.store, self.plan, self.settings, self.rounds = store, plan, settings, rounds
        self._keys: Keys = stage_keys(plan, settings, rounds)
        self._lock = threading.Lock()

    @property
    def keys(self) -> Keys:
        if len(self._keys["script"]) != self.plan.num_chunks:
            with self._lock:
                if len(self._keys["script"]) != self.plan.num_chunks:
                    self._keys = stage_keys(self.plan, self.settings, self.rounds)
        return self._keys

    def chunks(self) -> list[int]:
        return list(range(self.plan.num_chunks))

    def key(self, stage: str, chunk_index: int, round_: int = 0) -> str:
        return self.keys[stage][chunk_index][round_]

    def chunk_key(self, stage: str, chunk_index: int, round_: int = 0) -> str:
        tag = f"-r{round_}" if round_ else ""
        name = f"c{chunk_index:05d}{tag}-{self.key(stage, chunk_index, round_)}"
        return f"work/{stage}/{name if stage == 'synthesize' else f'{name}.jsonl'}"

    def records_key(self, stage: str, chunk_index: int, round_: int = 0) -> str:
        """The JSONL file of a chunk output's records."""
        key = self.chunk_key(stage, chunk_index, round_)
        return f"{key}/{MARKER}" if stage == "synthesize" else key

    def read_chunk(self, stage: str, chunk_index: int, round_: int = 0) -> ChunkRecords:
        return ChunkRecords.from_rows(self.store.read_rows(self.records_key(stage, chunk_index, round_)))

    def is_done(self, stage: str, chunk_index: int, round_: int = 0) -> bool:
        return self.store.exists(self.records_key(stage, chunk_index, round_))

    def chunk_path(self, stage: str, chunk_index: int, round_: int = 0) -> Path:
        """A local build's chunk output as a path."""
        if not isinstance(self.store, LocalStore):
            raise TypeError(f"{self.store.url} is not a local directory")
        return self.store.root / self.chunk_key(stage, chunk_index, round_)

    @staticmethod
    def journal_key(chunk_index: int, round_: int = 0) -> str:
        """Named by position, not key: a changed corpus size or validation rule still finds the replies
        (each reply is looked up by the hash of its request)."""
        return f"work/journal/c{chunk_index:05d}-r{round_}.jsonl"

    def journal_path(self, chunk_index: int, round_: int = 0) -> Path:
        return self.store.working_copy(self.journal_key(chunk_index, round_))

    def stale_work(self) -> list[str]:
        """Chunk outputs under work/ that no key of this build names (left by changed settings)."""
        current = {self.chunk_key(s, c, r) for s in STAGES for c in self.chunks() for r in self.rounds}
        stale = []
        for stage in STAGES:
            names = [f"work/{stage}/{name}" for name in self.store.list(f"work/{stage}") if name.startswith("c")]
            stale += [key for key in names if key not in current]
        return stale
