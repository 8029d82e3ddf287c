"""A streaming IterableDataset over a corpus' Parquet row groups.

Row groups are the unit of work: shuffled by (seed, epoch), dealt to distributed ranks and then to DataLoader
workers (group k goes to share k mod (world_size * num_workers)), read one at a time, rows shuffled within the
group by the same seed. Every rank sees a disjoint set of groups; with fewer groups than shares some get none.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import torch.distributed as dist
from torch.utils.data import IterableDataset, get_worker_info

from empathy_recipe.corpus import Corpus, RowGroup, read_group


class ExchangeDataset(IterableDataset):
    def __init__(self, corpus: Corpus, build: Callable[[dict], dict | None], seed: int = 0, shuffle: bool = True,
                 columns: list[str] | None = None, rank: int | None = None, world_size: int | None = None):  # fmt: skip
        self.corpus = corpus
        self.groups = corpus.row_groups()
        self.build = build
        self.seed = seed
        self.shuffle = shuffle
        self.columns = columns
        self.epoch = 0
        initialized = dist.is_available() and dist.is_initialized()
        self.rank = rank if rank is not None else (dist.get_rank() if initialized else 0)
        self.world_size = world_size if world_size is not None else (dist.get_world_size() if initialized else 1)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def assigned(self) -> list[RowGroup]:
        order = list(range(len(self.groups)))
        if self.shuffle:
            random.Random(f"{self.seed}:{self.epoch}").shuffle(order)
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        share, shares = self.rank * workers + worker, self.world_size * workers
        return [self.groups[i] for i in order[share::shares]]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for group in self.assigned():
            rows = read_group(group, self.columns)
            if self.shuffle:
                random.Random(f"{self.seed}:{self.epoch}:{group.shard.path.name}:{group.index}").shuffle(rows)
            for row in rows:
                sample = self.build(row)
                if sample is not None:
                    yield sample

