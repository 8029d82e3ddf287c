"""What a stage reads of the build it runs in: the validated config, the store, the plan, the stage
keys and the finished chunk outputs. `runtime.build.BuildContext` is one; a stage never imports it, so
stages sit below the runtime that drives them."""

from __future__ import annotations

from typing import Protocol

from empathy_data.config.model import BuildConfig
from empathy_data.planning.plan import Planner
from empathy_data.store.chunk_store import ChunkStore
from empathy_data.store.work_layout import WorkLayout


class BuildView(Protocol):
    config: BuildConfig
    store: ChunkStore
    planner: Planner
    layout: WorkLayout  # the stage keys, what each hashes, and the finished chunk outputs

    @property
    def rounds(self) -> range: ...

    def chunk_ranges(self) -> list[int]: ...
