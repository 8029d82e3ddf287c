"""Exact label mixes: a categorical label drawn so that every prefix of the plan matches its weights.

Item i of a stream gets its value from a block of D items (D: the common denominator of the weights), and
each block holds exactly D * w_k items of value k, in a seeded order in which every prefix of the block
stays within one item of its share. Block boundaries are exact, so any prefix of the whole stream is
within +/-1 item of n * w_k for every k, and item i is still a pure function of (salt, i): no state is
carried from one item to the next. Joint tables are the same thing over cells, with the table's
margins (its projections) held to +/-1 as well where a block order allows it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

MAX_BLOCK = 2000  # weights that need a larger common denominator are rounded to 1/MAX_BLOCK
ORDER_ATTEMPTS = 24


@dataclass(frozen=True)
class Draw:
    value: Hashable
    rank: int  # how many earlier items of the same stream drew this value


def block_counts(weights: dict[Hashable, float]) -> dict[Hashable, int]:
    """Whole counts per block: exact for weights with a small common denominator, else largest remainder."""
    keys = [k for k, w in weights.items() if w > 0]
    total = sum(weights[k] for k in keys)
    fractions = [Fraction(weights[k] / total).limit_denominator(MAX_BLOCK) for k in keys]
    size = math.lcm(*(f.denominator for f in fractions))
    if sum(fractions) == 1 and size <= MAX_BLOCK:
        return {k: int(f * size) for k, f in zip(keys, fractions, strict=True)}
    size = MAX_BLOCK
    quotas = [weights[k] / total * size for k in keys]
    counts = [math.floor(q) for q in quotas]
    by_remainder = sorted(range(len(keys)), key=lambda j: (counts[j] - quotas[j], j))
    for j in by_remainder[: size - sum(counts)]:
        counts[j] += 1
    return {k: c for k, c in zip(keys, counts, strict=True) if c}


def _random_order(
    rng: random.Random, counts: dict[Hashable, int], groups: Sequence[Callable[[Hashable], Hashable]]
) -> list[Hashable]:
    """Pick, at each step, among the values whose choice keeps every value (and every group of values)
    within one item of its share, weighted by how far behind each is; a value or group about to fall
    more than one item behind is forced. [] when the order runs into a dead end."""
    size = sum(counts.values())
    members = {k: [("value", k), *((j, project(k)) for j, project in enumerate(groups))] for k in counts}
    share: dict[Hashable, int] = {}
    for k, n in counts.items():
        for entity in members[k]:
            share[entity] = share.get(entity, 0) + n
    taken = dict.fromkeys(share, 0)
    order: list[Hashable] = []
    for t in range(1, size + 1):
        behind = {e: t * n / size - taken[e] for e, n in share.items()}
        forced = {e for e, b in behind.items() if b > 1 + 1e-9}
        choices = [
            k for k in counts
            if taken[("value", k)] < counts[k]
            and forced.issubset(members[k])
            and all(behind[e] >= -1e-9 for e in members[k])
        ]  # fmt: skip
        if not choices:
            return []
        pick = rng.choices(choices, weights=[behind[("value", k)] + 1 for k in choices])[0]
        for entity in members[pick]:
            taken[entity] += 1
        order.append(pick)
    return order


def _largest_behind(counts: dict[Hashable, int], priority: list[Hashable]) -> list[Hashable]:
    """Smooth weighted round robin: always the value furthest behind its share (ties by seeded priority).
    Keeps every value within one item of its share on every prefix."""
    size = sum(counts.values())
    rank = {k: j for j, k in enumerate(priority)}
    taken = dict.fromkeys(counts, 0)
    order = []
    for t in range(1, size + 1):
        pick = max(counts, key=lambda k: (t * counts[k] / size - taken[k], -rank[k]))
        taken[pick] += 1
        order.append(pick)
    return order


class BalancedSequence:
    """Values for items 0, 1, 2, ... of one stream; `groups` are projections of a joint cell (e.g. the
    gender of a gender x age cell) that should stay within one item of their share too."""

    def __init__(self, weights: dict[Hashable, float], salt: str, groups: Sequence[Callable] = ()) -> None:
        if not weights or all(w <= 0 for w in weights.values()):
            raise ValueError("a balanced sequence needs at least one positive weight")
        self.counts = block_counts(weights)
        self.size = sum(self.counts.values())
        self.salt = salt
        self.groups = tuple(groups)
        self._block = lru_cache(maxsize=64)(self._make_block)

    def _make_block(self, block: int) -> tuple[tuple[Hashable, int], ...]:
        """The block's order, each value with how many of it came earlier in the block."""
        rng = random.Random(f"{self.salt}:{block}")
        for _ in range(ORDER_ATTEMPTS):
            order = _random_order(rng, self.counts, self.groups)
            if order:
                break
        else:  # a dead end every time (seen only for joint tables with awkward margins)
            priority = sorted(self.counts, key=str)
            rng.shuffle(priority)
            order = _largest_behind(self.counts, priority)
        seen = dict.fromkeys(self.counts, 0)
        ranked = []
        for value in order:
            ranked.append((value, seen[value]))
            seen[value] += 1
        return tuple(ranked)

    def draw(self, position: int) -> Draw:
        block, offset = divmod(position, self.size)
        value, rank = self._block(block)[offset]
        return Draw(value, block * self.counts[value] + rank)

    def __getitem__(self, position: int) -> Hashable:
        return self.draw(position).value
