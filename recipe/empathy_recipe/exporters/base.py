"""The export loop shared by every format: stream row groups, decode audio, batch speech units, write lines."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, ClassVar

import numpy as np

from empathy_recipe.audio import RATE, decode, duration, write_wav
from empathy_recipe.report import Report
from empathy_recipe.textlen import TextCounter
from empathy_recipe.units.cache import UnitCache


@dataclass
class Options:
    no_units: bool = False
    reasoning: bool = False  # OpenS2S: add the reasoning note as reasoning_content
    tasks: tuple[str, ...] = ("chat",)  # OSUM-EChat: chat + understanding tasks
    max_length: int = 256  # BLSP-Emo: the --max_length of its offline processing
    unit_max_seconds: float | None = None  # set by the tokenizer: longer assistant audio cannot be tokenized
    # OSUM-EChat: after a chat task's lines in a file, repeats of them worth this many sequence tokens (0: off).
    fill_last_batch: int = 0


@dataclass
class Item:
    split: str
    row: dict[str, Any]
    key: str
    user: np.ndarray
    assistant: np.ndarray | None = None
    units: list[int] | None = None
    user_wav: Path = field(default_factory=Path)
    assistant_wav: Path | None = None

    @property
    def user_seconds(self) -> float:
        return duration(self.user)


@dataclass
class Lines:
    """What one corpus row produced: its main line (or the reason it was skipped) and optional extra lines."""

    main: tuple[str, dict] | None = None
    reason: str | None = None
    extra: list[tuple[str, dict]] = field(default_factory=list)
    extra_skipped: list[str] = field(default_factory=list)


_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class Exporter:
    name: ClassVar[str]
    unit_kind: ClassVar[str | None] = None  # which tokenizer its units come from; None: no units
    writes_assistant_audio: ClassVar[bool] = False

    def __init__(self, final: Path, stage: Path, options: Options, units: UnitCache | None, counter: TextCounter):
        self.final = final
        self.stage = stage
        self.options = options
        self.units = units
        self.counter = counter
        self.files: dict[str, IO[str]] = {}
        self.filled: Counter[str] = Counter()  # "file task" -> repeated lines appended (OSUM-EChat --fill-last-batch)

    # --- per format -------------------------------------------------------------------------------------------
    def check_user(self, item: Item) -> str | None:
        """Reason to skip the row before any unit is computed, or None."""
        return None

    def lines(self, item: Item) -> Lines:
        raise NotImplementedError

    # --- shared -----------------------------------------------------------------------------------------------
    @property
    def with_units(self) -> bool:
        return self.unit_kind is not None and self.units is not None

    def write_group(self, split: str, rows: list[dict], report: Report) -> None:
        items: list[Item] = []
        for row in rows:
            user = decode(row.get("user_audio"))
            if user is None:
                report.skip("user_audio.missing")
                continue
            key = _UNSAFE.sub("_", f"{row['dialogue_id']}-{int(row['exchange_index']):02d}")
            item = Item(split, row, key, user)
            item.user_wav = self.final / "audio" / split / f"{key}_user.wav"
            reason = self.check_user(item)
            if reason:
                report.skip(reason)
                continue
            if self.with_units or self.writes_assistant_audio:
                item.assistant = decode(row.get("assistant_audio"))
                if item.assistant is None:
                    report.skip("assistant_audio.missing")
                    continue
                if self.writes_assistant_audio:
                    item.assistant_wav = self.final / "audio" / split / f"{key}_assistant.wav"
            limit = self.options.unit_max_seconds
            if self.with_units and limit is not None and duration(item.assistant) > limit:
                report.skip("assistant_audio.too_long_for_tokenizer")
                continue
            items.append(item)
        if self.with_units and items:
            for item, ids in zip(items, self.units.units([i.assistant for i in items], RATE), strict=True):
                item.units = ids
        for item in items:
            out = self.lines(item)
            for task_reason in out.extra_skipped:
                report.tasks_skipped[task_reason] += 1
            if out.main is None and not out.extra:
                report.skip(out.reason or "unknown")
                continue
            report.written()
            for name, line in ([out.main] if out.main else []) + out.extra:
                self.write_line(name, line)
                report.lines[name if "task" not in line else f"{name} {line['task']}"] += 1
            write_wav(self.local(item.user_wav), item.user)
            if item.assistant_wav is not None:
                write_wav(self.local(item.assistant_wav), item.assistant)

    def local(self, final_path: Path) -> Path:
        """Where a file that will live at `final_path` is written now (inside the staging directory)."""
        return self.stage / final_path.relative_to(self.final)

    def write_line(self, name: str, line: dict) -> None:
        if name not in self.files:
            path = self.stage / name
            path.parent.mkdir(parents=True, exist_ok=True)
            self.files[name] = open(path, "w", encoding="utf-8")
        self.files[name].write(json.dumps(line, ensure_ascii=False) + "\n")

    def close(self) -> None:
        for f in self.files.values():
            f.close()
