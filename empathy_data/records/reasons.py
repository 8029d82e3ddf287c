"""Why an item was rejected or failed: a typed `Reason` from the check that found it to the card.

A reason is (stage, check, detail), plus the exchange it concerns when a dialogue is written one
exchange at a time. Its kind (what `manifest.counts.by_reason` counts and the report plots) is the
stage and the check. On disk, in chunk files and in the `reasons` column of rejects/, a reason keeps
the text form the corpus always had ("script: length: turn 2 too long", "user.wer",
"near_duplicate: ..."), so shards keep their bytes and older work directories read back as they were.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer

# The filter's own checks ("user.wer") and export's corpus-level checks ("near_duplicate: ...") are
# written without their stage: the check names it.
UNNAMED_STAGES = ("filter", "export")
CORPUS_CHECKS = ("near_duplicate", "semantic_duplicate", "history", "replaced")
# The stages (and models) whose failures are exceptions raised while running them, not verdicts.
EXCEPTION_STAGES = ("llm", "tts", "asr", "audio", "emotion", "speaker", "mos")


class Reason(BaseModel):
    model_config = ConfigDict(frozen=True)

    stage: str  # script | filter | export, or the model that raised (llm, tts, asr, emotion, ...)
    check: str  # length, judge, user.wer, near_duplicate, or the exception's class name
    detail: str = ""
    exchange: int | None = None  # 1-based: the exchange being written when the check failed

    @property
    def kind(self) -> str:
        """What the counts group by: 'script: length', 'user.wer', 'near_duplicate', 'llm: APIError'."""
        return ": ".join(p for p in (self._stage_part, self.check) if p)

    @property
    def is_exception(self) -> bool:
        return self.stage in EXCEPTION_STAGES

    @property
    def _stage_part(self) -> str:
        return "" if self.stage in UNNAMED_STAGES else self.stage

    def __str__(self) -> str:
        where = f"exchange {self.exchange}" if self.exchange is not None else ""
        return ": ".join(p for p in (self._stage_part, where, self.check, self.detail) if p)

    @classmethod
    def parse(cls, text: str) -> Reason:
        """The text form back into a Reason (chunk files keep reasons as text)."""
        parts = [p.strip() for p in text.split(": ")]
        if len(parts) == 1:
            return cls(stage="filter", check=parts[0])
        if parts[0].startswith("exchange "):  # early exchange-by-exchange failures wrote no stage
            parts = ["script", *parts]
        if parts[0] in CORPUS_CHECKS:
            return cls(stage="export", check=parts[0], detail=": ".join(parts[1:]))
        stage, rest = parts[0], parts[1:]
        exchange = None
        if rest[0].startswith("exchange ") and rest[0].removeprefix("exchange ").isdigit() and len(rest) > 1:
            exchange, rest = int(rest[0].removeprefix("exchange ")), rest[1:]
        return cls(stage=stage, check=rest[0], detail=": ".join(rest[1:]), exchange=exchange)


def raised(stage: str, exc: BaseException, limit: int | None = None) -> Reason:
    """An item that failed because `stage` (or its model) raised `exc` on it."""
    return Reason(stage=stage, check=type(exc).__name__, detail=str(exc)[:limit])


def _parsed(items: Any) -> Any:
    if isinstance(items, list):
        return [Reason.parse(r) if isinstance(r, str) else r for r in items]
    return items


# A record's reasons: typed in memory, their text form in a chunk file.
Reasons = Annotated[
    list[Reason], BeforeValidator(_parsed), PlainSerializer(lambda rs: [str(r) for r in rs], return_type=list[str])
]


def kinds(reasons: list[Reason], verdict: str) -> set[str]:
    """The kinds of reason one exchange was rejected or failed for, each once. `by_reason` counts
    exchanges: by_reason[k] is how many non-accepted exchanges had at least one reason of kind k (an
    exchange rejected for two reasons counts under both, so the values may sum past rejected + failed)."""
    return {r.kind for r in reasons} or {verdict}


def texts(reasons: list[Reason]) -> list[str]:
    return [str(r) for r in reasons]
