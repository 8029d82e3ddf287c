"""Regeneration rounds: which dialogues to write again, and which version of each one the corpus keeps.

A version is what one round made of a dialogue, read from that round's filter chunk: either exchange
rows (it reached the filter) or an outcome (it stopped at the script or synthesize stage).
"""

from __future__ import annotations

from dataclasses import dataclass

from empathy_data.records.chunk_records import ChunkRecords


@dataclass(frozen=True)
class Version:
    round: int
    planned: int  # exchanges the spec asks for
    accepted: int  # exchanges the filter accepted
    failed: bool  # an error (not a rejection) ended it somewhere

    @property
    def complete(self) -> bool:
        return self.accepted == self.planned


def versions_in_round(filter_chunk: ChunkRecords, round_: int) -> dict[str, Version]:
    """What round `round_` made of each dialogue, from its filter chunk."""
    found = {
        o.dialogue_id: Version(round_, o.spec.num_exchanges, 0, o.verdict == "failed") for o in filter_chunk.outcomes
    }
    by_dialogue: dict[str, list[str]] = {}
    for exchange in filter_chunk.exchanges:
        by_dialogue.setdefault(exchange.dialogue_id, []).append(exchange.verdict)
    for dialogue_id, verdicts in by_dialogue.items():
        found[dialogue_id] = Version(round_, len(verdicts), verdicts.count("accepted"), "failed" in verdicts)
    return found


def best(versions: list[Version]) -> Version:
    """Most accepted exchanges; on a tie the earliest round, so a later round never replaces for nothing."""
    return min(versions, key=lambda v: (-v.accepted, v.round))


def needs_another_round(versions: list[Version]) -> bool:
    return not any(v.failed for v in versions) and not best(versions).complete


def merge(rounds: list[dict[str, Version]]) -> dict[str, list[Version]]:
    """Round-by-round versions -> every version of each dialogue, oldest first."""
    merged: dict[str, list[Version]] = {}
    for found in rounds:
        for dialogue_id, version in found.items():
            merged.setdefault(dialogue_id, []).append(version)
    return merged
