"""Deterministic split assignment: a hash of the user speaker's id (default) or of the dialogue id, so a
dialogue never straddles splits, and by default no user speaker appears in two splits."""

import hashlib


def split_key(split_by: str, dialogue_id: str, user_speaker_id: str) -> str:
    return user_speaker_id if split_by == "speaker" else dialogue_id


def split_of(key: str, weights: dict[str, float]) -> str:
    position = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64
    cumulative = 0.0
    names = list(weights)
    for name in names:
        cumulative += weights[name]
        if position < cumulative:
            return name
    return names[-1]
