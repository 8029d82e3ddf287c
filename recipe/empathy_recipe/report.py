"""export.json: what was written and why the rest was skipped (written + skipped == corpus rows)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Report:
    format: str
    corpus: str
    corpus_rows: int
    rows_written: int = 0
    skipped: Counter = field(default_factory=Counter)
    lines: Counter = field(default_factory=Counter)  # per output file (and task)
    tasks_skipped: Counter = field(default_factory=Counter)  # extra lines not written, "task: reason"
    units: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    lines_filled: dict[str, int] = field(default_factory=dict)  # OSUM-EChat --fill-last-batch: repeats appended

    def written(self) -> None:
        self.rows_written += 1

    def skip(self, reason: str) -> None:
        self.skipped[reason] += 1

    def to_dict(self) -> dict[str, Any]:
        rows_skipped = sum(self.skipped.values())
        assert self.rows_written + rows_skipped == self.corpus_rows, (self.rows_written, rows_skipped, self.corpus_rows)
        return {
            "format": self.format,
            "corpus": self.corpus,
            "corpus_rows": self.corpus_rows,
            "rows_written": self.rows_written,
            "rows_skipped": rows_skipped,
            "skipped_by_reason": dict(sorted(self.skipped.items())),
            "lines": dict(sorted(self.lines.items())),
            "tasks_skipped": dict(sorted(self.tasks_skipped.items())),
            "units": self.units,
            "options": self.options,
            **({"lines_filled": self.lines_filled} if self.lines_filled else {}),
        }
