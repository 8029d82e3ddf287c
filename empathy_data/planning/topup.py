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
from collections.abc import Iterable, Mapping

from empathy_data.planning.plan import Cell
from empathy_data.planning.targets import TARGET_LABELS

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
