"""Top-up (config `rebalance`): extra dialogues into the labels that lost most to the filter.

The accepted corpus is measured per dialogue-level label in *dialogue equivalents*: each dialogue's kept
version counts accepted / planned exchanges, so a half-accepted dialogue is half a dialogue. That is
the unit the target shares are given in (targets.py). A pass plans extras one at a time, each time the
candidate cell (language x gender x age group x first emotion x exchanges) that lowers the squared gap
between achieved and target shares most, as if it were accepted; it stops when every share is within
the tolerance, when no candidate lowers the gap (a value no cell can serve), or when the budget is spent.
Which cells a pass picks depends only on the filter's verdicts, so a re-run plans the same extras.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from empathy_data.config.model import BuildConfig
from empathy_data.core.hashing import digest
from empathy_data.planning.plan import Cell, Planner
from empathy_data.planning.targets import TARGET_LABELS, target_shares
from empathy_data.store.work_layout import WorkLayout

Shares = Mapping[str, Mapping[str, float]]


def add_dialogue(achieved: dict[str, Counter], cell: Cell, accepted: int, planned: int) -> None:
    if accepted and planned:
        for label, value in cell.labels().items():
            achieved[label][value] += accepted / planned


def shares(achieved: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    found = {}
    for label, values in achieved.items():
        total = sum(values.values())
        found[label] = {v: n / total for v, n in sorted(values.items())} if total else {}
    return found


def gaps(target: Shares, achieved: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """label -> value -> achieved share minus target share (dialogue-level labels only)."""
    got = shares(achieved)
    return {
        label: {
            v: round(got.get(label, {}).get(v, 0.0) - target[label].get(v, 0.0), 6)
            for v in sorted(set(target[label]) | set(got.get(label, {})))
        }
        for label in TARGET_LABELS
        if label in target
    }


def worst_gap(target: Shares, achieved: Mapping[str, Mapping[str, float]]) -> float:
    return max((abs(g) for values in gaps(target, achieved).values() for g in values.values()), default=0.0)


def plan_extras(
    target: Shares,
    achieved: Mapping[str, Mapping[str, float]],
    candidates: Iterable[Cell],
    budget: int,
    tolerance: float,
) -> list[Cell]:
    labels = [label for label in TARGET_LABELS if label in target]
    counts: dict[str, Counter] = defaultdict(Counter, {k: Counter(v) for k, v in achieved.items()})
    total = sum(counts["language"].values())
    candidates = list(candidates)
    candidate_labels = [cell.labels() for cell in candidates]
    extras: list[Cell] = []

    def error(label: str, value: str, extra: float, after: float) -> float:
        return ((counts[label][value] + extra) / after - target[label].get(value, 0.0)) ** 2

    while len(extras) < budget and candidates:
        if total and worst_gap(target, counts) <= tolerance:
            break
        after = total + 1
        # what adding one dialogue with `value` changes in the squared error: labels are separable
        change = {
            label: {v: error(label, v, 1, after) - error(label, v, 0, after) for v in sorted(set(target[label]) | set(counts[label]))}
            for label in labels
        }
        rest = sum(error(label, v, 0, after) for label in labels for v in change[label])
        now = sum(error(label, v, 0, total) for label in labels for v in change[label]) if total else float("inf")
        score, best = min(
            (sum(change[label].get(values[label], 0.0) for label in labels), i)
            for i, values in enumerate(candidate_labels)
        )
        if rest + score >= now:
            break  # nothing any candidate could add brings the mix closer
        cell = candidates[best]
        extras.append(cell)
        for label, value in cell.labels().items():
            counts[label][value] += 1
        total = after
    return extras


Achieved = dict[str, Counter]


@dataclass
class TopUpPasses:
    """A build's top-up passes. Pass p's extras are written to work/topup/pass-p.json before they are
    built; the file names the filter outputs it was planned from, so a pass planned from another
    config's results is never reused. `count_accepted` counts the accepted dialogue equivalents per
    label value the way export would keep them (the export stage supplies it)."""

    config: BuildConfig
    planner: Planner
    layout: WorkLayout
    count_accepted: Callable[[], Achieved]
    # next()'s answer per (basis, passes so far): chunk outputs are immutable once written
    _planned: dict[tuple[str, int], list[tuple[int, Cell]]] = field(default_factory=dict, repr=False)

    @property
    def passes_left(self) -> bool:
        rebalance = self.config.rebalance
        return rebalance is not None and self.planner.extra_passes < rebalance.passes

    @staticmethod
    def pass_key(pass_: int) -> str:
        return f"work/topup/pass-{pass_}.json"

    def basis(self) -> str:
        """What a pass is planned from: the filter outputs, the rebalance settings, and the export
        settings that decide which accepted rows count (count_accepted)."""
        rebalance = self.config.rebalance.model_dump() if self.config.rebalance else None
        export = self.config.export
        counted = {"rule": "corpus_pass", "unclean_history": export.unclean_history,
                   "near_duplicate_threshold": export.near_duplicate_threshold,
                   "semantic_duplicate_threshold": export.semantic_duplicate_threshold}  # fmt: skip
        filters = [self.layout.keys["filter"][c] for c in self.layout.chunks()]
        return digest({"rebalance": rebalance, "counted": counted, "filter": filters})

    def load(self) -> None:
        """Register the passes planned on disk beyond those registered (a worker process calls it again
        when it meets a chunk it does not know). Passes only ever append."""
        while self.passes_left:
            try:
                planned = self.layout.store.read_json(self.pass_key(self.planner.extra_passes + 1))
            except (OSError, ValueError):
                return
            if planned.get("basis") != self.basis():
                return
            self._register([(i, Cell(*fields)) for i, *fields in planned["extras"]])

    def _register(self, extras: list[tuple[int, Cell]]) -> list[int]:
        size = self.config.chunk_size
        return self.planner.add_extra_pass([dict(extras[k : k + size]) for k in range(0, len(extras), size)])

    def next(self) -> list[tuple[int, Cell]]:
        """The extras the next pass would plan (none when rebalance is off or its passes are spent).
        Every chunk so far must be filtered."""
        if not self.passes_left:
            return []
        cfg = self.config.rebalance
        assert cfg is not None
        key = (self.basis(), self.planner.extra_passes)
        if key not in self._planned:
            spent = self.planner.num_dialogues - self.config.num_dialogues
            budget = cfg.budget(self.config.num_dialogues) - spent
            candidates = self.planner.candidate_cells()
            cells = plan_extras(target_shares(self.config), self.count_accepted(), candidates, budget, cfg.tolerance)
            self._planned[key] = list(enumerate(cells, start=self.planner.num_dialogues))
        return self._planned[key]

    def add_pass(self) -> list[int]:
        """Plan the next pass, record it, and return its new chunk indices (none: top-up is over)."""
        extras = self.next()
        if not extras:
            return []
        self.layout.store.write_json(
            self.pass_key(self.planner.extra_passes + 1),
            {"basis": self.basis(), "extras": [[i, *vars(cell).values()] for i, cell in extras]},
        )
        return self._register(extras)

    def pending(self) -> bool:
        """Whether top-up may still need the LLM: unfinished chunks first, else a pass with extras."""
        if not self.passes_left:
            return False
        layout = self.layout
        if not all(layout.is_done("filter", c, r) for c in layout.chunks() for r in layout.rounds):
            return True
        return bool(self.next())
