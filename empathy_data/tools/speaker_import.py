"""Build a speaker pool YAML from reference clips laid out like common emotional-speech corpora:

    DIR/<speaker>/<emotion>/<clip>.wav   with the transcript in <clip>.txt (or <clip>.lab) beside it
    speakers.csv                          speaker,gender,age_group[,language]

Every clip is checked like any pool clip (speakers.clip_problem); every problem is reported with its path.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from empathy_data.core.corpus_labels import GENERIC
from empathy_data.core.labels import AGE_GROUPS, EMOTIONS, GENDERS
from empathy_data.planning.speakers import clip_problem

# A reference clip read "calm" still gives the voice's neutral prosody, so calm counts as neutral here.
EMOTION_ALIASES = GENERIC | {"calm": "neutral"}
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


@dataclass
class ImportResult:
    speakers: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def read_meta(path: Path) -> tuple[dict[str, dict], list[str]]:
    meta, problems = {}, []
    with open(path, newline="", encoding="utf-8") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            where = f"{path}:{line}"
            sid = (row.get("speaker") or "").strip()
            gender = (row.get("gender") or "").strip().lower()
            age = (row.get("age_group") or "").strip().lower()
            if not sid:
                problems.append(f"{where}: empty speaker")
            elif gender not in GENDERS:
                problems.append(f"{where}: gender {gender!r} not in {list(GENDERS)}")
            elif age not in AGE_GROUPS:
                problems.append(f"{where}: age_group {age!r} not in {list(AGE_GROUPS)}")
            else:
                meta[sid] = {"gender": gender, "age_group": age, "language": (row.get("language") or "en").strip()}
    return meta, problems


def transcript_of(clip: Path) -> str | None:
    for suffix in (".txt", ".lab"):
        path = clip.with_suffix(suffix)
        if path.is_file():
            return path.read_text(encoding="utf-8").strip() or None
    return None


def import_speakers(root: Path, meta_path: Path, pool_path: Path) -> ImportResult:
    meta, problems = read_meta(meta_path)
    result = ImportResult(problems=problems)
    folders = {p.name for p in root.iterdir() if p.is_dir()}
    for sid in sorted(set(meta) - folders):
        result.problems.append(f"{meta_path}: speaker {sid!r} has no folder {root / sid}")
    for transcript in sorted(p for suffix in (".txt", ".lab") for p in root.glob(f"*/*/*{suffix}")):
        if not any(transcript.with_suffix(s).is_file() for s in (*AUDIO_SUFFIXES, *(s.upper() for s in AUDIO_SUFFIXES))):
            result.problems.append(f"{transcript}: transcript without audio ({transcript.stem}.wav/.flac/.ogg)")
    for speaker_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        sid = speaker_dir.name
        if sid not in meta:
            result.problems.append(f"{speaker_dir}: speaker not in {meta_path.name}")
            continue
        clips: dict[str, list[dict]] = {}
        for emotion_dir in sorted(p for p in speaker_dir.iterdir() if p.is_dir()):
            emotion = EMOTION_ALIASES.get(emotion_dir.name.lower())
            if emotion is None:
                result.problems.append(f"{emotion_dir}: unknown emotion folder (use one of {list(EMOTIONS)})")
                continue
            for clip in sorted(p for p in emotion_dir.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES):
                problem = clip_problem(clip)
                text = transcript_of(clip)
                if problem:
                    result.problems.append(problem)
                elif text is None:
                    result.problems.append(f"{clip}: no transcript ({clip.stem}.txt or .lab)")
                else:
                    rel = os.path.relpath(clip.resolve(), pool_path.parent.resolve())
                    clips.setdefault(emotion, []).append({"path": rel, "transcript": text})
        if not clips:
            result.problems.append(f"{speaker_dir}: no usable clips")
            continue
        result.speakers.append({"id": sid, **meta[sid], "source": str(root.name), "clips": clips})
    return result


def write_pool(result: ImportResult, pool_path: Path, licence: str) -> None:
    from empathy_data.core.atomic import write_text

    header = "# Speaker pool imported by `empathy-data speakers import`; clip paths are relative to this file.\n"
    body = {"licence": licence, "speakers": result.speakers}
    write_text(pool_path, header + yaml.safe_dump(body, sort_keys=False, allow_unicode=True))


def pool_counts(speakers) -> tuple[list[str], dict[tuple[str, str], Counter]]:
    """Per (gender, age_group): speakers and, per emotion, speakers with at least one clip in it."""
    emotions = sorted({e for s in speakers for e in s.clips}, key=lambda e: EMOTIONS.index(e) if e in EMOTIONS else 99)
    table: dict[tuple[str, str], Counter] = {}
    for s in speakers:
        cell = table.setdefault((s.gender, s.age_group), Counter())
        cell["speakers"] += 1
        for emotion in s.clips:
            cell[emotion] += 1
    return emotions, table
