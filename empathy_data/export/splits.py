"""Deterministic split assignment: a hash of dialogue_id, so a dialogue never straddles splits."""

import hashlib


def split_of(dialogue_id: str, weights: dict[str, float]) -> str:
    position = int.from_bytes(hashlib.sha256(dialogue_id.encode()).digest()[:8], "big") / 2**64
    cumulative = 0.0
    names = list(weights)
    for name in names:
        cumulative += weights[name]
        if position < cumulative:
            return name
    return names[-1]
