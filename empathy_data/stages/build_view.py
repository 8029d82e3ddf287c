"""What a stage reads of the build it runs in: the validated config, the store, the plan, the stage
keys and the finished chunk outputs. `runtime.build.BuildContext` is one; a stage never imports it, so
stages sit below the runtime that drives them."""

from __future__ import annotations

from typing import Any, Protocol

from empathy_data.config.model import BuildConfig
from empathy_data.planning.plan import Planner
from empathy_data.records.chunk_records import ChunkRecords
from empathy_data.store.chunk_store import ChunkStore


class BuildView(Protocol):
    config: BuildConfig
    store: ChunkStore
    planner: Planner
    keys: dict[str, dict[int, list[str]]]  # keys[stage][chunk][round]
    identities: dict[str, dict[str, Any]]  # what each stage's key hashes

    @property
    def rounds(self) -> range: ...

    def chunk_ranges(self) -> list[int]: ...

    def chunk_key(self, stage: str, chunk_index: int, round_: int = 0) -> str: ...

    def read_chunk(self, stage: str, chunk_index: int, round_: int = 0) -> ChunkRecords: ...
