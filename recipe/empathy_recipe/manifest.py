"""The part of empathy-data's manifest.json this package reads, by its own small reader: the recipe does
not import empathy-data (a corpus may come from a machine that has only this package). The fields read
here are pinned against empathy-data's `Manifest` by tests/recipe/test_manifest_contract.py."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from empathy_recipe.errors import RecipeError

# the newest manifest format_version this reader understands (0: unversioned; 2 added `calibration`, 3 `ingested`,
# 4 `judge_calibration`: all unread here)
READS_FORMAT = 4


@dataclass(frozen=True)
class ShardEntry:
    file: str
    rows: int
    sha256: str


@dataclass(frozen=True)
class CorpusManifest:
    format_version: int
    name: str
    data: dict[str, list[ShardEntry]]  # split -> its data/ shards, in order
    rejects: tuple[ShardEntry, ...] = ()  # rejects/ shards: rejected, failed and replaced versions

    @classmethod
    def read(cls, path: Path) -> CorpusManifest:
        if not path.is_file():
            raise RecipeError(f"missing manifest: {path} (not a finished empathy-data export)")
        try:
            raw = json.loads(path.read_text())
            version = raw.get("format_version", 0)
            if not isinstance(version, int) or version > READS_FORMAT:
                raise RecipeError(
                    f"{path}: format_version {version} is newer than this empathy-recipe reads ({READS_FORMAT})"
                )
            data = {
                split: [ShardEntry(str(s["file"]), int(s["rows"]), str(s["sha256"])) for s in shards]
                for split, shards in raw["shards"]["data"].items()
            }
            rejects = tuple(ShardEntry(str(s["file"]), int(s["rows"]), str(s["sha256"])) for s in raw["shards"].get("rejects", []))
            return cls(version, str(raw["name"]), data, rejects)
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise RecipeError(f"unreadable manifest: {path}: {type(e).__name__}: {e}") from None
