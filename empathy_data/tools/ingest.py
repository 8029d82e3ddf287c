"""`empathy-data ingest`: an existing emotional-speech corpus read into an ingested-corpus directory that a
build's `ingest:` block plans real user queries from.

Inputs (`--layout`):
- `manifest`: a CSV or JSONL file, one clip per row: `audio` (relative to the manifest), `text`, `emotion`,
  and where present `id`, `speaker`, `gender`, `age_group` or `age` (years), `language`; `--columns` renames
  (MELD's CSV: `--columns text=Utterance,emotion=Emotion`);
- `folders`: DIR/<speaker>/<emotion>/<clip>.wav with <clip>.txt beside it (the `speakers import` layout);
- `ravdess`, `crema-d`: their published file-name codes (emotion, actor, sentence) and fixed sentences.

Every row is checked (its label maps, its clip decodes, is 1-30 s long, >= 16 kHz and not silent) and every
problem is reported as one line naming the file and row; with any problem nothing is written. Otherwise the
output directory appears whole: `queries.jsonl`, `corpus.json` (name, source, licence, label map, counts)
and `clips/` (mono FLAC at the clip's own rate).
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from empathy_data.core.atomic import atomic_dir, write_json, write_jsonl
from empathy_data.core.audio import read_audio, to_mono_float32, write_flac
from empathy_data.core.corpus_labels import label_map, map_label
from empathy_data.core.hashing import file_sha256
from empathy_data.core.labels import AGE_GROUPS, GENDERS, LANGUAGES
from empathy_data.planning.speakers import clip_problem

LAYOUTS = ("manifest", "folders", "ravdess", "crema-d")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
MIN_QUERY_SECONDS, MAX_QUERY_SECONDS = 1.0, 30.0
FIELDS = ("id", "audio", "text", "emotion", "speaker", "gender", "age_group", "age", "language")

# RAVDESS (Livingstone & Russo 2018): 03-01-EE-II-SS-RR-AA.wav, statement SS, actor AA (odd male, even female).
RAVDESS_STATEMENTS = {"01": "Kids are talking by the door.", "02": "Dogs are sitting by the door."}
RAVDESS_NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
# CREMA-D (Cao et al. 2014): ActorID_Sentence_Emotion_Level.wav; VideoDemographics.csv has ActorID, Age, Sex.
CREMA_D_SENTENCES = {
    "IEO": "It's eleven o'clock.", "TIE": "That is exactly what happened.", "IOM": "I'm on my way to the meeting.",
    "IWW": "I wonder what this is about.", "TAI": "The airplane is almost full.",
    "MTI": "Maybe tomorrow it will be cold.", "IWL": "I would like a new alarm clock.",
    "ITH": "I think I have a doctor's appointment.", "DFA": "Don't forget a jacket.",
    "ITS": "I think I've seen this before.", "TSI": "The surface is slick.", "WSI": "We'll stop in a couple of minutes.",
}  # fmt: skip
CREMA_D_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")


def age_group_of(years: float) -> str:
    """An age in years as this package's age group (child < 13, teen < 18, young_adult < 30, adult < 60)."""
    for limit, group in ((13, "child"), (18, "teen"), (30, "young_adult"), (60, "adult")):
        if years < limit:
            return group
    return "elderly"


@dataclass(frozen=True)
class IngestOptions:
    name: str
    layout: str = "manifest"
    labels: str = "generic"
    language: str | None = None
    gender: str | None = None  # for every clip whose row has none
    age_group: str | None = None
    source: str = ""
    licence: str = "unknown"
    skip_labels: frozenset[str] = frozenset()
    columns: dict[str, str] = field(default_factory=dict)  # our field -> the manifest's column
    min_seconds: float = MIN_QUERY_SECONDS
    max_seconds: float = MAX_QUERY_SECONDS


@dataclass
class RawRow:
    where: str  # file:row, for messages
    values: dict[str, Any]
    audio: Path | None


@dataclass
class IngestResult:
    queries: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)


def manifest_rows(path: Path, columns: dict[str, str]) -> Iterator[RawRow]:
    def renamed(row: dict[str, Any]) -> dict[str, Any]:
        return {ours: row.get(columns.get(ours, ours)) for ours in FIELDS}

    def audio_of(values: dict[str, Any]) -> Path | None:
        return (path.parent / str(values["audio"])).resolve() if values.get("audio") else None

    if path.suffix.lower() == ".jsonl":
        with open(path, encoding="utf-8") as f:
            for line_no, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield RawRow(f"{path}:{line_no}", {"error": f"not JSON ({exc.msg})"}, None)
                    continue
                values = renamed(row if isinstance(row, dict) else {})
                yield RawRow(f"{path}:{line_no}", values, audio_of(values))
        return
    with open(path, newline="", encoding="utf-8") as f:
        for line_no, row in enumerate(csv.DictReader(f), start=2):
            values = renamed(row)
            yield RawRow(f"{path}:{line_no}", values, audio_of(values))


def audio_files(root: Path, pattern: str) -> list[Path]:
    return sorted(p for p in root.glob(pattern) if p.suffix.lower() in AUDIO_SUFFIXES)


def folder_rows(root: Path) -> Iterator[RawRow]:
    for clip in audio_files(root, "*/*/*"):
        transcript = next((clip.with_suffix(s) for s in (".txt", ".lab") if clip.with_suffix(s).is_file()), None)
        text = transcript.read_text(encoding="utf-8").strip() if transcript else None
        values = {"id": f"{clip.parent.parent.name}-{clip.stem}", "text": text, "emotion": clip.parent.name,
                  "speaker": clip.parent.parent.name}  # fmt: skip
        yield RawRow(str(clip), values, clip)


def ravdess_rows(root: Path) -> Iterator[RawRow]:
    for clip in audio_files(root, "**/*"):
        match = RAVDESS_NAME.match(clip.stem)
        if not match:
            yield RawRow(str(clip), {"error": "not a RAVDESS file name (MM-VV-EE-II-SS-RR-AA)"}, clip)
            continue
        _, channel, emotion, _, statement, _, actor = match.groups()
        if channel != "01":  # 02 is song
            yield RawRow(str(clip), {"skip": "song"}, clip)
            continue
        values = {"id": clip.stem, "text": RAVDESS_STATEMENTS.get(statement), "emotion": emotion,
                  "speaker": f"actor{actor}", "gender": "male" if int(actor) % 2 else "female"}  # fmt: skip
        yield RawRow(str(clip), values, clip)


def crema_d_rows(root: Path) -> Iterator[RawRow]:
    demographics: dict[str, dict[str, str]] = {}
    table = next(iter(sorted(root.glob("**/VideoDemographics.csv"))), None)
    if table is not None:
        with open(table, newline="", encoding="utf-8") as f:
            demographics = {row["ActorID"]: row for row in csv.DictReader(f)}
    for clip in audio_files(root, "**/*"):
        match = CREMA_D_NAME.match(clip.stem)
        if not match:
            yield RawRow(str(clip), {"error": "not a CREMA-D file name (ActorID_SEN_EMO_LV)"}, clip)
            continue
        actor, sentence, emotion, _ = match.groups()
        person = demographics.get(actor, {})
        sex = (person.get("Sex") or "").lower() or None
        values = {"id": clip.stem, "text": CREMA_D_SENTENCES.get(sentence), "emotion": emotion,
                  "speaker": f"actor{actor}", "gender": sex, "age": person.get("Age")}  # fmt: skip
        yield RawRow(str(clip), values, clip)


def raw_rows(source: Path, options: IngestOptions) -> Iterator[RawRow]:
    if options.layout == "manifest":
        return manifest_rows(source, options.columns)
    return {"folders": folder_rows, "ravdess": ravdess_rows, "crema-d": crema_d_rows}[options.layout](source)


def _text(value: Any) -> str | None:
    return str(value).strip() or None if value is not None else None


def check_row(row: RawRow, options: IngestOptions, mapping: dict[str, str]) -> tuple[dict[str, Any] | None, str | None]:
    """(the query, None), (None, a problem naming the row), or (None, None) for a row dropped on purpose."""
    v = row.values
    if "error" in v:
        return None, f"{row.where}: {v['error']}"
    raw_label = _text(v.get("emotion"))
    if "skip" in v or (raw_label or "").lower() in options.skip_labels:
        return None, None
    if raw_label is None:
        return None, f"{row.where}: no emotion label"
    emotion = map_label(raw_label, mapping)
    if emotion is None:
        return None, (f"{row.where}: emotion label {raw_label!r} is not in the {options.labels} label map "
                      "(map it in the manifest, or drop it with --skip-label)")  # fmt: skip
    text = _text(v.get("text"))
    if text is None:
        return None, f"{row.where}: no transcript"
    language = _text(v.get("language")) or options.language
    if language not in LANGUAGES:
        return None, f"{row.where}: language {language!r} not in {list(LANGUAGES)} (give --language)"
    gender = (_text(v.get("gender")) or options.gender or "").lower()
    gender = {"f": "female", "m": "male"}.get(gender, gender)
    if gender not in GENDERS:
        return None, f"{row.where}: gender {gender or None!r} not in {list(GENDERS)} (a gender column or --gender)"
    age_group = _text(v.get("age_group"))
    if age_group is None and _text(v.get("age")) is not None:
        try:
            age_group = age_group_of(float(str(v["age"])))
        except ValueError:
            return None, f"{row.where}: age {v['age']!r} is not a number of years"
    age_group = age_group or options.age_group
    if age_group not in AGE_GROUPS:
        return None, f"{row.where}: age_group {age_group!r} not in {list(AGE_GROUPS)} (an age column or --age-group)"
    if row.audio is None:
        return None, f"{row.where}: no audio path"
    if not row.audio.is_file():
        return None, f"{row.where}: missing file {row.audio}"
    if problem := clip_problem(row.audio, options.min_seconds, options.max_seconds):
        return None, f"{row.where}: {problem}"
    query_id = _text(v.get("id")) or row.audio.stem
    speaker = _text(v.get("speaker")) or query_id
    return {
        "id": query_id, "transcript": text, "emotion": emotion, "label": raw_label, "language": language,
        "speaker": speaker, "gender": gender, "age_group": age_group, "original": str(row.audio),
    }, None  # fmt: skip


def read_corpus(source: Path, options: IngestOptions) -> IngestResult:
    mapping = label_map(options.labels)
    result = IngestResult()
    seen: dict[str, str] = {}
    for row in raw_rows(source, options):
        query, problem = check_row(row, options, mapping)
        if problem:
            result.problems.append(problem)
        elif query is None:
            result.skipped[str(row.values.get("skip") or row.values.get("emotion"))] += 1
        elif query["id"] in seen:
            result.problems.append(f"{row.where}: duplicate id {query['id']!r} (first at {seen[query['id']]})")
        else:
            seen[query["id"]] = row.where
            result.queries.append(query)
    if not result.queries and not result.problems:
        result.problems.append(f"{source}: no clips found for layout {options.layout!r}")
    return result


def write_corpus(result: IngestResult, out: Path, source: Path, options: IngestOptions) -> None:
    """The ingested directory, whole or not at all: clips as mono FLAC, then queries.jsonl and corpus.json."""
    with atomic_dir(out) as tmp:
        (tmp / "clips").mkdir()
        rows = []
        for query in result.queries:
            audio, rate = read_audio(query["original"])
            name = "clips/" + re.sub(r"[^A-Za-z0-9._-]", "_", query["id"]) + ".flac"
            write_flac(tmp / name, to_mono_float32(audio), rate)
            rows.append({**query, "audio": name, "sha256": file_sha256(tmp / name)})
        write_jsonl(tmp / "queries.jsonl", rows)
        write_json(tmp / "corpus.json", corpus_summary(rows, source, options, result.skipped))


def corpus_summary(rows: list[dict[str, Any]], source: Path, options: IngestOptions, skipped: Counter) -> dict[str, Any]:
    return {
        "name": options.name,
        "source": options.source or str(source),
        "licence": options.licence,
        "layout": options.layout,
        "label_map": options.labels,
        "queries": len(rows),
        "speakers": len({r["speaker"] for r in rows}),
        "by_emotion": dict(sorted(Counter(r["emotion"] for r in rows).items())),
        "by_language": dict(sorted(Counter(r["language"] for r in rows).items())),
        "skipped": dict(sorted(skipped.items())),
    }
