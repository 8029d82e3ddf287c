"""What a build checks and cleans in its output before it writes: that the directory holds this build
(or nothing), that an exported corpus is not replaced by a smaller one unless asked, and what a killed
run left half-written."""

from __future__ import annotations

import shutil
from pathlib import Path

from empathy_data.core.errors import ConfigError
from empathy_data.records.manifest import Manifest, ManifestError
from empathy_data.store.chunk_store import MARKER, PARTS, ChunkStore, LocalStore

OWN_ENTRIES = {"work", ".build.lock", ".build.owner"}


def check_output_dir(store: ChunkStore, plan_key: str) -> None:
    """Refuse an output directory that holds a different build (another plan)."""
    if store.exists("build.json"):
        try:
            existing = store.read_json("build.json")
        except (OSError, ValueError):
            raise ConfigError(
                store.where("build.json"), "unreadable build marker; remove the directory or pick another"
            ) from None
        if existing.get("plan_key") != plan_key:
            raise ConfigError(
                f"output: {store.url}",
                "holds a different build (other seed, distributions, speakers or scenarios); use another --out",
            )
    elif any(name not in OWN_ENTRIES for name in store.list()):
        raise ConfigError(f"output: {store.url}", "directory is not empty and holds no empathy-data build")


def claim_output_dir(store: ChunkStore, plan_key: str, name: str) -> None:
    store.write_json("build.json", {"plan_key": plan_key, "name": name})


def check_no_shrink(store: ChunkStore, num_dialogues: int) -> None:
    """Refuse to replace an exported corpus with a smaller one unless asked to."""
    try:
        counts = Manifest.parse(store.read_text("manifest.json"), "manifest.json").counts
    except (OSError, ManifestError):
        return
    exported = counts.dialogues.planned - counts.topup.dialogues  # top-up extras are not part of the size
    if num_dialogues < exported:
        raise ConfigError(
            f"num_dialogues: {num_dialogues}",
            f"{store.url} already holds a corpus of {exported} dialogues; building {num_dialogues} "
            "would replace it with a smaller one (pass --allow-shrink to do that)",
        )


def remove_partial_writes(store: ChunkStore) -> int:
    """Delete what a killed run left half-written (finished chunks are never partial). Call only while
    holding the output lock: another build's partial writes look the same."""
    removed = _remove_temp_entries(store.scratch)
    if isinstance(store, LocalStore):
        return removed + _remove_temp_entries(store.root, recursive=False)
    # directories uploaded in part: their marker, written last, never landed
    for folder, marker in (("work/synthesize", MARKER), ("work/export", PARTS)):
        for name in store.list(folder):
            if not store.exists(f"{folder}/{name}/{marker}"):
                store.remove(f"{folder}/{name}")
                removed += 1
    return removed


def _remove_temp_entries(folder: Path, recursive: bool = True) -> int:
    """Temp files and directories (.NAME.*.tmp) under a local folder. A directory swapped out by
    replace_dir's fallback (`.NAME.old.tmp`) whose new version never landed is put back."""
    if not folder.exists():
        return 0
    removed = 0
    leftovers = folder.rglob(".*.tmp") if recursive else folder.glob(".*.tmp")
    for path in sorted(leftovers, key=lambda p: len(p.parts), reverse=True):
        if not path.exists():
            continue
        name = path.name.removeprefix(".").removesuffix(".old.tmp")
        if path.name.endswith(".old.tmp") and path.is_dir() and not (path.parent / name).exists():
            path.rename(path.parent / name)
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed += 1
    return removed
