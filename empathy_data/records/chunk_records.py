"""The typed records of a chunk output, and the JSONL rows they are stored as (each tagged with its kind).

    script chunk       Script (written), Outcome (rejected or failed before audio)
    synthesize chunk   Script, Utterance (one per turn, audio beside it), Outcome
    filter chunk       Exchange (the verdict on one exchange), Outcome

Stages, export and regeneration read ChunkRecords; only this module knows the `kind` tags.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from empathy_data.records.reasons import Reasons
from empathy_data.records.schema import Outcome, Record, Scores, Script, Utterance, Verdict


class Exchange(Record):
    """The filter's verdict on one exchange (a user turn and the reply) of a dialogue."""

    index: int  # the dialogue's plan index
    dialogue_id: str
    exchange_index: int
    verdict: Verdict
    reasons: Reasons
    user_scores: Scores
    assistant_scores: Scores


ChunkRecord = Script | Utterance | Outcome | Exchange
KINDS: dict[str, type[Record]] = {"script": Script, "utterance": Utterance, "outcome": Outcome, "exchange": Exchange}
KIND_OF = {cls: kind for kind, cls in KINDS.items()}
R = TypeVar("R", bound=Record)


def to_row(record: ChunkRecord) -> dict[str, Any]:
    return {"kind": KIND_OF[type(record)], **record.to_dict()}


def from_row(row: dict[str, Any]) -> ChunkRecord:
    fields = {k: v for k, v in row.items() if k != "kind"}
    return KINDS[row["kind"]].from_dict(fields)  # type: ignore[return-value]


@dataclass(frozen=True)
class ChunkRecords:
    """A chunk output's records in stored order."""

    items: tuple[ChunkRecord, ...]

    @classmethod
    def from_rows(cls, rows: Iterable[dict[str, Any]]) -> ChunkRecords:
        return cls(tuple(from_row(row) for row in rows))

    def of(self, kind: type[R]) -> list[R]:
        return [item for item in self.items if isinstance(item, kind)]

    @property
    def scripts(self) -> list[Script]:
        return self.of(Script)

    @property
    def utterances(self) -> list[Utterance]:
        return self.of(Utterance)

    @property
    def outcomes(self) -> list[Outcome]:
        return self.of(Outcome)

    @property
    def exchanges(self) -> list[Exchange]:
        return self.of(Exchange)

    def counts(self) -> dict[str, int]:
        """`script`, `utterance`, and `outcome:<verdict>` / `exchange:<verdict>`: what a ChunkRef reports."""
        counts: dict[str, int] = {}
        for item in self.items:
            kind = KIND_OF[type(item)]
            key = f"{kind}:{item.verdict}" if isinstance(item, Outcome | Exchange) else kind
            counts[key] = counts.get(key, 0) + 1
        return counts
