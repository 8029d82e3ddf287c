"""A built corpus, read only through its manifest and Parquet shards (never the `work/` chunk store)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from empathy_recipe.errors import RecipeError
from empathy_recipe.manifest import CorpusManifest


@dataclass(frozen=True)
class Shard:
    split: str
    path: Path
    rows: int


@dataclass(frozen=True)
class RowGroup:
    shard: Shard
    index: int
    rows: int


class Corpus:
    def __init__(self, root: Path, manifest: CorpusManifest, shards: list[Shard]):
        self.root = root
        self.manifest = manifest
        self.shards = shards

    @classmethod
    def open(cls, ref: str | os.PathLike, splits: Sequence[str] | None = None) -> Corpus:
        root = resolve(str(ref))
        manifest_path = root / "manifest.json"
        manifest = CorpusManifest.read(manifest_path)
        by_split = manifest.data
        wanted = list(splits) if splits else list(by_split)
        unknown = [s for s in wanted if s not in by_split]
        if unknown:
            raise RecipeError(f"split {unknown[0]!r} not in {manifest_path} (has: {', '.join(by_split)})")
        shards = []
        for split in wanted:
            for entry in by_split[split]:
                path = root / "data" / entry.file
                if not path.is_file():
                    raise RecipeError(f"missing shard: {path} (listed in {manifest_path})")
                shards.append(Shard(split, path, entry.rows))
        return cls(root, manifest, shards)

    @property
    def num_rows(self) -> int:
        return sum(s.rows for s in self.shards)

    @property
    def splits(self) -> list[str]:
        return list(dict.fromkeys(s.split for s in self.shards))

    def row_groups(self) -> list[RowGroup]:
        groups = []
        for shard in self.shards:
            meta = pq.ParquetFile(shard.path).metadata
            if meta.num_rows != shard.rows:
                raise RecipeError(f"shard {shard.path} has {meta.num_rows} rows, manifest says {shard.rows}")
            groups += [RowGroup(shard, i, meta.row_group(i).num_rows) for i in range(meta.num_row_groups)]
        return groups

    def iter_row_groups(self, columns: Sequence[str] | None = None) -> Iterator[tuple[RowGroup, list[dict]]]:
        """One row group in memory at a time, as a list of row dicts."""
        for group in self.row_groups():
            yield group, read_group(group, columns)


def read_group(group: RowGroup, columns: Sequence[str] | None = None) -> list[dict]:
    table = pq.ParquetFile(group.shard.path).read_row_group(group.index, columns=list(columns) if columns else None)
    return table.to_pylist()


def resolve(ref: str) -> Path:
    path = Path(ref).expanduser()
    if path.exists():
        if not path.is_dir():
            raise RecipeError(f"corpus is not a directory: {path}")
        return path.resolve()
    if ref.count("/") == 1 and not ref.startswith((".", "/", "~")):
        return download(ref)
    raise RecipeError(f"corpus not found: {path} (a local export directory, or a datasets name owner/name)")


def download(name: str) -> Path:
    """A corpus published as a dataset repository: fetch only manifest.json and data/ shards."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise RecipeError(f"corpus {name!r} is not a local path; reading it by name needs: pip install 'empathy-recipe[hub]'") from None
    try:
        return Path(snapshot_download(name, repo_type="dataset", allow_patterns=["manifest.json", "data/*"]))
    except Exception as e:  # network, auth, offline mode: all end the same way for the user
        raise RecipeError(f"cannot fetch corpus {name!r}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
