"""Split assignment: whole units (user speakers by default, else dialogues) go to splits so that each
split's rows come as close to its ratio as whole units allow; a dialogue never straddles splits, nor does a
contrast group, and with units = speakers no user voice appears in two splits (but a contrast group by speaker
follows its first member's voice)."""

from __future__ import annotations

import hashlib

from empathy_data.records.schema import DialogueSpec


def split_key(split_by: str, spec: DialogueSpec) -> str:
    """The unit `spec` goes to a split with: its user speaker or its dialogue; a contrast group's members go
    together, as their first member's speaker or as the group (a by-speaker group's other voices follow it)."""
    if spec.contrast is not None:
        return spec.contrast.anchor_speaker if split_by == "speaker" else spec.contrast.group_id
    return spec.user.id if split_by == "speaker" else spec.dialogue_id


def _position(key: str) -> float:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64


def split_of(key: str, weights: dict[str, float]) -> str:
    """A split by hash alone, for units with no rows to weigh."""
    position = _position(key)
    cumulative = 0.0
    names = list(weights)
    for name in names:
        cumulative += weights[name]
        if position < cumulative:
            return name
    return names[-1]


def assign_splits(rows_by_unit: dict[str, int], ratios: dict[str, float], salt: str) -> dict[str, str]:
    """Biggest unit first, each to the split furthest below its share of the rows (ties: seeded order).
    Units without rows (all their exchanges rejected) only hold rejects: they are placed by hash."""
    total = sum(rows_by_unit.values())
    assigned = dict.fromkeys(ratios, 0)
    order = list(ratios)
    placement: dict[str, str] = {}
    units = sorted((u for u, n in rows_by_unit.items() if n > 0), key=lambda u: (-rows_by_unit[u], _position(salt + u)))
    for unit in units:
        split = max(order, key=lambda s: (ratios[s] * total - assigned[s], -order.index(s)))
        placement[unit] = split
        assigned[split] += rows_by_unit[unit]
    for unit, n in rows_by_unit.items():
        if n == 0:
            placement[unit] = split_of(salt + unit, ratios)
    return placement
