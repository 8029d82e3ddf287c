"""What the report and `inspect` read from a finished build: manifest.json, and the Parquet shards one row
group at a time with only the columns asked for. Audio columns are read only for the rows being shown."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from empathy_data.core.errors import EmpathyDataError
from empathy_data.records.manifest import Manifest, ManifestError

LABELS = (
    "dialogue_id", "exchange_index", "split", "language", "scenario", "user_emotion", "user_speaker_id",
    "user_gender", "user_age_group", "assistant_style",
)  # fmt: skip
TEXTS = ("user_text", "assistant_text", "reasoning", "history")
AUDIO = ("user_audio", "assistant_audio")
VERDICT = ("verdict", "stage", "reasons")
OPTIONAL = ("history_clean",)  # newer builds only
STATS_COLUMNS = (*LABELS, "quality", *OPTIONAL)
SAMPLES_PER_EMOTION = 2


class ReportError(EmpathyDataError):
    """OUT is not a finished build, or a shard it lists cannot be read."""


def read_manifest(out: Path) -> Manifest:
    path = out / "manifest.json"
    if not path.is_file():
        raise ReportError(f"{path}: missing (not a finished build)")
    try:
        return Manifest.parse(path.read_text(encoding="utf-8"), str(path))
    except ManifestError as exc:
        raise ReportError(str(exc)) from None


def shard_paths(out: Path, manifest: Manifest, kind: str, split: str | None = None) -> list[Path]:
    """The shards manifest.json lists for `kind` ("data", optionally one split, or "rejects"), in order."""
    if kind == "data":
        shards = [s for name, listed in manifest.shards.data.items() if split in (None, name) for s in listed]
    else:
        shards = manifest.shards.rejects
    paths = [out / kind / s.file for s in shards]
    for path in paths:
        if not path.is_file():
            raise ReportError(f"{path}: listed in manifest.json but missing")
    return paths


@dataclass(frozen=True)
class Location:
    """Where one row lives: shard, row group, row within the group."""

    path: Path
    group: int
    row: int


def iter_groups(paths: list[Path], columns: tuple[str, ...]) -> Iterator[tuple[Path, int, list[dict]]]:
    """Rows of each row group as dicts, reading only `columns` (those a shard lacks are left out)."""
    for path in paths:
        shard = pq.ParquetFile(path)
        names = set(shard.schema_arrow.names)
        wanted = [c for c in columns if c in names]
        for group in range(shard.num_row_groups):
            yield path, group, shard.read_row_group(group, columns=wanted).to_pylist()


def find_rows(
    paths: list[Path], columns: tuple[str, ...], keep: Callable[[dict], bool], limit: int
) -> list[tuple[Location, dict]]:
    """The first `limit` rows `keep` accepts, reading only `columns`."""
    found: list[tuple[Location, dict]] = []
    for path, group, rows in iter_groups(paths, columns):
        for i, row in enumerate(rows):
            if len(found) < limit and keep(row):
                found.append((Location(path, group, i), row))
        if len(found) >= limit:
            break
    return found


def read_rows(locations: list[Location], columns: tuple[str, ...]) -> list[dict]:
    """The rows at `locations`, in that order, with `columns` (a row group is read once)."""
    by_group: dict[tuple[Path, int], list[int]] = defaultdict(list)
    for loc in locations:
        by_group[(loc.path, loc.group)].append(loc.row)
    rows: dict[Location, dict] = {}
    for (path, group), indices in by_group.items():
        shard = pq.ParquetFile(path)
        wanted = [c for c in columns if c in set(shard.schema_arrow.names)]
        table = shard.read_row_group(group, columns=wanted)
        for i in indices:
            rows[Location(path, group, i)] = table.slice(i, 1).to_pylist()[0]
    return [rows[loc] for loc in locations]


# Labels the plan allocates per dialogue (manifest distributions.target); user_emotion: the first exchange's.
DIALOGUE_LABELS = ("language", "user_emotion", "user_gender", "user_age_group", "exchanges")


@dataclass
class Dialogue:
    """The version of a dialogue the build kept: its labels, user emotion per exchange, exchanges accepted."""

    language: str
    user_gender: str
    user_age_group: str
    emotions: dict[int, str] = field(default_factory=dict)
    accepted: int = 0

    def labels(self) -> dict[str, str]:
        return {
            "language": self.language,
            "user_emotion": self.emotions[min(self.emotions)],
            "user_gender": self.user_gender,
            "user_age_group": self.user_age_group,
            "exchanges": str(len(self.emotions)),
        }


@dataclass
class ReportData:
    """Counts and per-exchange numbers the figures need: labels and scores, never text or audio."""

    out: Path
    manifest: Manifest
    gender_age: Counter[tuple[str, str]] = field(default_factory=Counter)  # accepted exchanges
    emotion_scenario: Counter[tuple[str, str]] = field(default_factory=Counter)  # accepted exchanges
    speakers: Counter[tuple[str, str]] = field(default_factory=Counter)  # (user speaker, split) -> accepted
    transitions: Counter[tuple[str, str]] = field(default_factory=Counter)  # user emotion k -> k+1, planned
    # "planned" / "accepted" (every exchange accepted) -> label -> value -> dialogues
    dialogues: dict[str, dict[str, Counter[str]]] = field(default_factory=dict)
    # verdict ("accepted" / "rejected") -> quality field -> values
    quality: dict[str, dict[str, list[float]]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(list)))
    # quality field -> (verdict, user emotion) -> values
    by_emotion: dict[str, dict[tuple[str, str], list[float]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )
    history_clean: Counter[bool] | None = None  # None: the shards have no history_clean column
    samples: list[dict] = field(default_factory=list)  # rows with text and audio bytes

    @property
    def name(self) -> str:
        return self.manifest.name


def _add_quality(data: ReportData, verdict: str, row: dict) -> None:
    quality = row.get("quality") or {}
    for name, value in quality.items():
        if not isinstance(value, int | float) or not np.isfinite(value):  # judge_rationale is text
            continue
        data.quality[verdict][name].append(float(value))
        if name in ("user_emotion_score", "user_arousal_shift"):
            data.by_emotion[name][(verdict, row["user_emotion"])].append(float(value))


def _dialogue(dialogues: dict[str, Dialogue], row: dict) -> Dialogue:
    found = dialogues.get(row["dialogue_id"])
    if found is None:
        found = dialogues[row["dialogue_id"]] = Dialogue(row["language"], row["user_gender"], row["user_age_group"])
    found.emotions[row["exchange_index"]] = row["user_emotion"]
    return found


def load_report_data(out: Path, samples_per_emotion: int = SAMPLES_PER_EMOTION) -> ReportData:
    """One streaming pass over data/ and rejects/ (labels and scores only), then the sample rows with audio."""
    manifest = read_manifest(out)
    data = ReportData(out=out, manifest=manifest)
    data_paths, reject_paths = shard_paths(out, manifest, "data"), shard_paths(out, manifest, "rejects")
    if any("history_clean" in pq.read_schema(path).names for path in data_paths + reject_paths):
        data.history_clean = Counter()
    dialogues: dict[str, Dialogue] = {}  # the versions the build kept, from data/ and rejects/
    picked: dict[str, list[Location]] = defaultdict(list)
    for path, group, rows in iter_groups(data_paths, STATS_COLUMNS):
        for i, row in enumerate(rows):
            emotion = row["user_emotion"]
            _dialogue(dialogues, row).accepted += 1
            data.gender_age[(row["user_gender"], row["user_age_group"])] += 1
            data.emotion_scenario[(emotion, row["scenario"])] += 1
            data.speakers[(row["user_speaker_id"], row["split"])] += 1
            _add_quality(data, "accepted", row)
            if data.history_clean is not None:
                data.history_clean[bool(row["history_clean"])] += 1
            if len(picked[emotion]) < samples_per_emotion:
                picked[emotion].append(Location(path, group, i))
    for _, _, rows in iter_groups(reject_paths, (*STATS_COLUMNS, "verdict")):
        for row in rows:
            if row["verdict"] == "replaced":  # a version the dialogue did not keep
                continue
            _dialogue(dialogues, row)
            if row["verdict"] == "rejected":
                _add_quality(data, "rejected", row)
    data.dialogues = {"planned": defaultdict(Counter), "accepted": defaultdict(Counter)}
    for dialogue in dialogues.values():
        emotions = [dialogue.emotions[k] for k in sorted(dialogue.emotions)]
        data.transitions.update(zip(emotions, emotions[1:], strict=False))
        complete = dialogue.accepted == len(dialogue.emotions)
        for name, value in dialogue.labels().items():
            data.dialogues["planned"][name][value] += 1
            if complete:
                data.dialogues["accepted"][name][value] += 1
    locations = [loc for emotion in sorted(picked) for loc in picked[emotion]]
    data.samples = read_rows(locations, (*LABELS, *TEXTS, "quality", *OPTIONAL, *AUDIO))
    return data
