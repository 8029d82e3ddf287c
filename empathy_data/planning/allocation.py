"""Exact label mixes: a categorical label drawn so that every prefix of the plan matches its weights.

Item i of a stream gets its value from a block of D items (D: the common denominator of the weights), and
each block holds exactly D * w_k items of value k, in a seeded order in which every prefix of the block
stays within one item of its share. Block boundaries are exact, so any prefix of the whole stream is
within +/-1 item of n * w_k for every k, and item i is still a pure function of (salt, i): no state is
carried from one item to the next. Finding such an order costs far more than drawing from it, and blocks
are small (D = 5 for five equal emotions), so each stream keeps a pool of ORDER_POOL seeded orders, made
as they are first needed, and a block takes one of them by a seeded pick (picks are drawn PICKS_PER_DRAW
blocks at a time). Joint tables are the same thing over cells, with the table's
margins (its projections) held to +/-1 as well where a block order allows it. A block whose seeded
random orders all run into dead ends falls back to earliest-deadline-first, which always keeps every
value (not every margin) within one item.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Hashable, Sequence
from fractions import Fraction
from functools import lru_cache
from typing import NamedTuple

MAX_BLOCK = 2000  # weights that need a larger common denominator are rounded to 1/MAX_BLOCK
ORDER_ATTEMPTS = 24
MAX_FIT_ROUNDS = 5000
FIT_TOLERANCE = 1e-4  # finer than the 1/MAX_BLOCK that block_counts rounds weights to anyway
ORDER_POOL = 64
PICKS_PER_DRAW = 1024


class Draw(NamedTuple):
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


def _earliest_deadline(counts: dict[Hashable, int], priority: list[Hashable]) -> list[Hashable]:
    """An order in which every value stays within one item of its share on every prefix, always (the
    chairman assignment problem, Tijdeman 1980). The j-th item of a value with c of the block's D items
    must come at a step t with (j-1)D/c <= t <= jD/c + 1; earliest-deadline-first fills such windows
    whenever they can be filled, and they always can. Ties go by the seeded priority."""
    import heapq

    size = sum(counts.values())
    rank = {k: i for i, k in enumerate(priority)}
    releases = sorted(  # the j-th of c: not before step (j-1)D/c, not after step jD/c + 1
        (max(1, -(-(j - 1) * size // c)), min(size, j * size // c + 1), rank[k], k)
        for k, c in counts.items()
        for j in range(1, c + 1)
    )
    ready: list[tuple[int, int, Hashable]] = []
    order: list[Hashable] = []
    nxt = 0
    for t in range(1, size + 1):
        while nxt < len(releases) and releases[nxt][0] <= t:
            _, deadline, r, k = releases[nxt]
            heapq.heappush(ready, (deadline, r, k))
            nxt += 1
        _, _, k = heapq.heappop(ready)
        order.append(k)
    return order


class BalancedSequence:
    """Values for items 0, 1, 2, ... of one stream; `groups` are projections of a joint cell (e.g. the
    gender of a gender x age cell) that should stay within one item of their share too."""

    def __init__(self, weights: dict[Hashable, float], salt: str, groups: Sequence[Callable] = (),
                 essential: int | None = None) -> None:  # fmt: skip
        if not weights or all(w <= 0 for w in weights.values()):
            raise ValueError("a balanced sequence needs at least one positive weight")
        self.counts = block_counts(weights)
        self.size = sum(self.counts.values())
        self.salt = salt
        self.groups = tuple(groups)
        # when no order keeps every group within one item, the first `essential` groups still are
        self.essential = len(self.groups) if essential is None else essential
        self._orders: dict[int, tuple[tuple[Hashable, int], ...]] = {}
        self._picks = lru_cache(maxsize=4)(self._make_picks)

    def _make_picks(self, batch: int) -> list[int]:
        """Which pooled order each block of a batch of PICKS_PER_DRAW blocks takes."""
        return random.Random(f"{self.salt}:picks:{batch}").choices(range(ORDER_POOL), k=PICKS_PER_DRAW)

    def _order(self, pick: int) -> tuple[tuple[Hashable, int], ...]:
        """Pooled order `pick`, each value with how many of it came earlier in the block."""
        if (ranked := self._orders.get(pick)) is not None:
            return ranked
        rng = random.Random(f"{self.salt}:order:{pick}")
        # a dead end is a matter of luck: small blocks (joint tables) can afford many tries
        attempts = max(ORDER_ATTEMPTS, min(400, 20_000 // self.size))
        tiers = [self.groups] if self.essential == len(self.groups) else [self.groups, self.groups[: self.essential]]
        for order in (_random_order(rng, self.counts, groups) for groups in tiers for _ in range(attempts)):
            if order:
                break
        else:  # a dead end every time (seen only for joint tables with awkward margins)
            priority = sorted(self.counts, key=str)
            rng.shuffle(priority)
            order = _earliest_deadline(self.counts, priority)
        seen = dict.fromkeys(self.counts, 0)
        ranked_list = []
        for value in order:
            ranked_list.append((value, seen[value]))
            seen[value] += 1
        self._orders[pick] = ranked = tuple(ranked_list)
        return ranked

    def draw(self, position: int) -> Draw:
        block, offset = divmod(position, self.size)
        batch, slot = divmod(block, PICKS_PER_DRAW)
        value, rank = self._order(self._picks(batch)[slot])[offset]
        return Draw(value, block * self.counts[value] + rank)

    def __getitem__(self, position: int) -> Hashable:
        return self.draw(position).value



def _margin(table: dict[tuple[Hashable, Hashable], float], part: int) -> dict[Hashable, float]:
    got: dict[Hashable, float] = {}
    for cell, w in table.items():
        got[cell[part]] = got.get(cell[part], 0.0) + w
    return got


def _shares(weights: dict[Hashable, float]) -> dict[Hashable, float]:
    total = sum(w for w in weights.values() if w > 0)
    return {k: w / total for k, w in weights.items() if w > 0}


def _cells(want_row: dict, want_col: dict, allowed: set[tuple[Hashable, Hashable]]) -> list[tuple[Hashable, Hashable]]:
    """The allowed pairs between weighted rows and columns, in a fixed order (never set order: string
    hashes differ between processes, and every process must plan the same specs)."""
    cells = sorted((cell for cell in allowed if cell[0] in want_row and cell[1] in want_col), key=repr)
    for name, want, part in (("row", want_row, 0), ("column", want_col, 1)):
        if missing := [k for k in want if k not in {cell[part] for cell in cells}]:
            raise ValueError(f"{missing[0]!r} fits no {'column' if name == 'row' else 'row'} with weight")
    return cells


def fit_joint(
    rows: dict[Hashable, float],
    columns: dict[Hashable, float],
    allowed: set[tuple[Hashable, Hashable]],
    strict: bool = True,
) -> dict[tuple[Hashable, Hashable], float]:
    """A joint table over the allowed (row, column) pairs whose margins are the given weights, by
    iterative proportional fitting started uniform (of all such tables, the one closest to uniform).
    Strict: raises ValueError naming the column furthest below its weight when the fit does not reach
    both margins; otherwise returns the fit as far as it got."""
    want_row, want_col = _shares(rows), _shares(columns)
    table = dict.fromkeys(_cells(want_row, want_col, allowed), 1.0)
    for _ in range(MAX_FIT_ROUNDS):
        for want, part in ((want_col, 1), (want_row, 0)):  # rows last: they come out exact
            got = _margin(table, part)
            table = {cell: w * want[cell[part]] / got[cell[part]] for cell, w in table.items()}
        col_got = _margin(table, 1)
        off = {c: col_got[c] - w for c, w in want_col.items()}
        if max(abs(v) for v in off.values()) < FIT_TOLERANCE:
            return table
    if not strict:
        return table
    worst = min(off, key=lambda c: off[c])  # the column its rows starve most
    raise ValueError(f"{worst!r} can get about {col_got[worst]:.1%}, not {want_col[worst]:.1%}")


def _transport(want: list[dict], counts: dict[tuple, int], capacity: dict[tuple, int | None]) -> dict[tuple, int]:
    """`counts` plus a max flow that adds whole units to the cells in `capacity` (None: unbounded)
    towards the row and column totals in `want`. The totals may be left short: the caller checks."""
    import networkx as nx

    graph = nx.DiGraph()
    for (r, c), cap in capacity.items():
        graph.add_edge(("row", r), ("column", c), **({} if cap is None else {"capacity": cap}))
    for part, kind in enumerate(("row", "column")):
        for k, n in want[part].items():
            short = n - sum(v for cell, v in counts.items() if cell[part] == k)
            if short > 0:
                graph.add_edge(*(("S", (kind, k)) if part == 0 else ((kind, k), "T")), capacity=short)
    counts = dict(counts)
    if "S" in graph and "T" in graph:
        _, flow = nx.maximum_flow(graph, "S", "T")
        for node, out in flow.items():
            if node != "S" and node[0] == "row":
                for target, n in out.items():
                    if target != "T" and n:
                        counts[(node[1], target[1])] = counts.get((node[1], target[1]), 0) + n
    return counts


def whole_joint(
    rows: dict[Hashable, float], columns: dict[Hashable, float], allowed: set[tuple[Hashable, Hashable]]
) -> dict[tuple[Hashable, Hashable], float]:
    """A joint table with both margins exact in whole counts of the margins' common denominator D (small
    whole blocks are what keep both margins within one item on every prefix). Whether one exists is an
    integral transportation problem, decided exactly by a max flow; among the tables that exist, each
    cell is fit_joint's value times D rounded down or up where a second max flow can make that add up.
    Weights with no denominator up to MAX_BLOCK get fit_joint's fractional table."""
    fractions = [{k: Fraction(w).limit_denominator(MAX_BLOCK) for k, w in _shares(m).items()} for m in (rows, columns)]
    size = math.lcm(*(f.denominator for m in fractions for f in m.values()))
    if size > MAX_BLOCK or any(sum(m.values()) != 1 for m in fractions):
        return fit_joint(rows, columns, allowed)
    want = [{k: int(f * size) for k, f in m.items()} for m in fractions]
    cells = _cells(want[0], want[1], allowed)
    feasible = _transport(want, {}, dict.fromkeys(cells))
    got = {c: sum(n for cell, n in feasible.items() if cell[1] == c) for c in want[1]}
    if got != want[1]:
        worst = min(want[1], key=lambda c: (got[c] - want[1][c], repr(c)))
        raise ValueError(f"{worst!r} can get about {got[worst] / size:.1%}, not {want[1][worst] / size:.1%}")
    guide = fit_joint(rows, columns, allowed, strict=False)
    floors = {cell: math.floor(w * size + 1e-9) for cell, w in guide.items()}
    rounded = _transport(want, floors, {cell: 1 for cell, w in guide.items() if w * size - floors[cell] > 1e-9})
    if all(sum(n for cell, n in rounded.items() if cell[part] == k) == total
           for part in (0, 1) for k, total in want[part].items()):  # fmt: skip
        feasible = rounded
    return {cell: feasible[cell] / size for cell in cells if feasible.get(cell)}
