"""Run one export: staging directory beside the target, then swap it into place."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from empathy_recipe.corpus import Corpus
from empathy_recipe.errors import RecipeError
from empathy_recipe.exporters import FORMATS, Options
from empathy_recipe.report import Report
from empathy_recipe.textlen import TextCounter
from empathy_recipe.units.cache import UnitCache
from empathy_recipe.units.protocol import SpeechTokenizer

CACHE_NAME = "units-cache.sqlite"


def export(
    corpus: Corpus,
    fmt: str,
    to: Path,
    options: Options | None = None,
    tokenizer: SpeechTokenizer | None = None,
    cache_dir: Path | None = None,
    text_counter: TextCounter | None = None,
) -> dict[str, Any]:
    if fmt not in FORMATS:
        raise RecipeError(f"unknown format {fmt!r} (one of: {', '.join(FORMATS)})")
    cls = FORMATS[fmt]
    options = options or Options()
    if cls.unit_kind is not None and tokenizer is None and not options.no_units:
        raise RecipeError(
            f"--format {fmt} needs speech units from a {cls.unit_kind} tokenizer: pass --tokenizer PATH, "
            "or --no-units for text-only targets"
        )
    if cls.unit_kind is None or options.no_units:
        tokenizer = None
    to = Path(to).expanduser().absolute()
    if fmt in ("opens2s", "blsp-emo") and str(to).count(":") == 2:
        # both loaders' get_waveform read "path:start:frames" from any audio path with exactly two colons
        raise RecipeError(f"--to {to}: a path with two ':' is read as path:start:frames by the {fmt} loader")
    with staged(to) as stage:
        cache = None
        if tokenizer is not None:
            cache_path = (cache_dir / CACHE_NAME) if cache_dir else (stage / CACHE_NAME)
            previous = to / CACHE_NAME
            if cache_dir is None and previous.is_file():
                shutil.copy2(previous, cache_path)
            cache = UnitCache(cache_path, tokenizer)
            from empathy_recipe.units.s3 import MAX_SECONDS, S3Tokenizer

            if isinstance(tokenizer, S3Tokenizer):
                options.unit_max_seconds = MAX_SECONDS
        counter = text_counter or TextCounter()
        exporter = cls(to, stage, options, cache, counter)
        report = Report(fmt, str(corpus.root), corpus.num_rows)
        started = time.perf_counter()
        for group, rows in corpus.iter_row_groups():
            exporter.write_group(group.shard.split, rows, report)
        exporter.close()
        report.units = (
            {"tokenizer": tokenizer.name, "fingerprint": cache.fingerprint, "computed": cache.computed, "cached": cache.hits}
            if cache
            else {"tokenizer": None, "text_only": cls.unit_kind is not None}
        )
        if cache:
            cache.close()
        report.options = {
            "no_units": options.no_units, "reasoning": options.reasoning, "tasks": list(options.tasks),
            "max_length": options.max_length, "text_token_counts": "exact" if counter.exact else "estimate",
            "splits": corpus.splits, "seconds": round(time.perf_counter() - started, 3),
        }  # fmt: skip
        if options.fill_last_batch:
            report.options["fill_last_batch"] = options.fill_last_batch
            report.lines_filled = dict(sorted(exporter.filled.items()))
        result = report.to_dict()
        (stage / "export.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return result


@contextmanager
def staged(to: Path) -> Iterator[Path]:
    """A staging directory beside `to` that replaces it when the block succeeds and is removed when it fails;
    what a killed run left beside `to` is cleared first."""
    to.parent.mkdir(parents=True, exist_ok=True)
    for stale in [*to.parent.glob(f".{to.name}.tmp-*"), *to.parent.glob(f".{to.name}.old-*")]:
        shutil.rmtree(stale, ignore_errors=True)
    stage = to.parent / f".{to.name}.tmp-{os.getpid()}"
    stage.mkdir()
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    swap(stage, to)


def swap(stage: Path, to: Path) -> None:
    old = to.parent / f".{to.name}.old-{os.getpid()}"
    if to.exists():
        to.rename(old)
    stage.rename(to)
    shutil.rmtree(old, ignore_errors=True)
