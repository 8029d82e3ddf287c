"""manifest.json: what a finished export holds, as one typed record. The card, the report, `verify`,
`inspect` and the recipe package (through its own small reader, tests/recipe/test_manifest_contract.py)
read it; written last, it marks an export as finished.

FORMAT_VERSION counts changes to its fields: 0 = the unversioned manifests of earlier builds (the same
fields as 1), 1 = `format_version` written, 2 = `calibration` (the emotion check's measured matrix and the
emotions it gated), 3 = `ingested` (the real-speech corpus a build mixed in; rows gained `source`) and
`contrast` (contrast groups complete / partial; rows gained `group_id`), 4 = `judge_calibration` (the script
judge's measured agreement with hand-labelled cases, the mode it ran in and whether it gated).
A reader refuses a version newer than its own."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from empathy_data.core.errors import EmpathyDataError

FORMAT_VERSION = 4


class ManifestError(EmpathyDataError):
    """manifest.json is missing, unreadable, or not one this version understands: one line saying where."""


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Shard(Record):
    file: str
    rows: int = Field(ge=0)
    sha256: str


class Shards(Record):
    data: dict[str, list[Shard]]  # split -> its shards, in order
    rejects: list[Shard]

    def listed(self) -> list[tuple[str, str, Shard]]:
        """(split or "rejects", the shard's key under the output, its entry), data first."""
        found = [(split, f"data/{s.file}", s) for split, shards in self.data.items() for s in shards]
        return found + [("rejects", f"rejects/{s.file}", s) for s in self.rejects]


class ItemCounts(Record):
    planned: int
    accepted: int
    rejected: int
    failed: int

    def adds_up(self) -> bool:
        return self.accepted + self.rejected + self.failed == self.planned


class Regeneration(Record):
    rounds: int
    dialogues_regenerated: int
    exchanges_replaced: int  # versions a better one replaced: in rejects/, not in `planned`
    accepted_by_round: dict[str, int]


class Topup(Record):
    passes: int
    dialogues: int
    budget: int


class Counts(Record):
    dialogues: ItemCounts
    exchanges: ItemCounts
    # by_reason[k]: non-accepted exchanges with at least one reason of kind k (may sum past rejected + failed)
    by_reason: dict[str, int]
    regeneration: Regeneration
    by_split: dict[str, int]
    topup: Topup = Field(default_factory=lambda: Topup(passes=0, dialogues=0, budget=0))  # format 0: absent


class TaskRun(Record):
    """One chunk task of the build, as the driver saw it finish: what tests and operators read instead of
    the log."""

    stage: str  # script, synthesize, filter or export
    chunk: int
    round: int = 0
    seconds: float
    cached: bool  # found finished in the store, not done again
    worker: str  # host:pid of the process that ran it
    replayed: int = 0  # script: LLM replies read back from the journal
    sent: int = 0  # script: requests sent to the LLM


class Manifest(Record):
    format_version: int
    name: str
    plan_key: str
    config: dict[str, Any]  # the validated BuildConfig, as JSON
    versions: dict[str, str | None]
    counts: Counts
    distributions: dict[str, Any]  # target / planned / accepted / achieved shares per label
    checks: dict[str, dict[str, int]]  # filter check -> pass / fail / ... counts
    script_checks: dict[str, dict[str, int]] = Field(default_factory=dict)
    diversity: dict[str, Any] = Field(default_factory=dict)
    shards: Shards
    stage_keys: dict[str, list[list[str]]]  # stage -> chunk -> the key of each round
    timings_s: dict[str, float] = Field(default_factory=dict)
    llm_requests: dict[str, Any] = Field(default_factory=dict)
    driver: str = ""  # host:pid of the process that ran the flow
    tasks: list[TaskRun] = Field(default_factory=list)  # this run's chunk tasks, in the order they finished
    # The emotion check measured on this build's TTS (runtime/calibration.py summary): empty when the build
    # did not calibrate it (format 1 and earlier: absent).
    calibration: dict[str, Any] = Field(default_factory=dict)
    # The script judge measured on the labelled cases (runtime/judge_calibration.py summary): empty when the
    # build did not measure it (format 3 and earlier: absent).
    judge_calibration: dict[str, Any] = Field(default_factory=dict)
    # The ingested corpora (config.ingest): {"corpora": [each one as `empathy-data ingest` summarised it: name,
    # source, licence, counts]}. Empty without real queries (format 2 and earlier: absent).
    ingested: dict[str, Any] = Field(default_factory=dict)
    # Contrast groups (config.contrast): by, size, and how many groups kept all, some or none of their
    # members. Empty without contrast groups (format 2 and earlier: absent).
    contrast: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _version(cls, data: Any) -> Any:
        if isinstance(data, dict) and "format_version" not in data:
            data = {**data, "format_version": 0}
        return data

    @classmethod
    def parse(cls, text: str, where: str) -> Manifest:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ManifestError(f"{where}: not JSON ({exc})") from None
        version = data.get("format_version", 0) if isinstance(data, dict) else None
        if isinstance(version, int) and version > FORMAT_VERSION:
            raise ManifestError(f"{where}: format_version {version} is newer than this empathy-data reads ({FORMAT_VERSION})")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            path = ".".join(str(p) for p in first["loc"])
            raise ManifestError(f"{where}: {path}: {first['msg']}") from None

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
