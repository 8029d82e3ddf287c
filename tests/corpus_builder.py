"""A small finished-build directory (manifest.json, data/ and rejects/ shards with FLAC audio) for the
report and inspect tests: written in milliseconds with the real dataset features, no models."""

from __future__ import annotations

import io
import json
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import soundfile as sf

from empathy_data.records.manifest import FORMAT_VERSION, Manifest
from empathy_data.stages.export.rows import QUALITY_FIELDS, features
from tests.helpers import sine

RATE = 16000
DIVERSITY = {
    "distinct_1": 0.42,
    "distinct_2": 0.81,
    "near_duplicate_rate": 0.05,
    "top_openings": [["i feel so", 3], ["<b>why</b> does it", 1]],
}
# The script judge as the embedded 0.5B measured it: at chance in both modes, so it only recorded.
JUDGE_CALIBRATION = {
    "agreements": [
        {"mode": "scores", "cases": 16, "agree": 8, "bad_caught": 8, "bad": 8, "good_passed": 0, "good": 8, "failed": 0, "agreement": 0.5},
        {"mode": "labels", "cases": 16, "agree": 9, "bad_caught": 6, "bad": 8, "good_passed": 3, "good": 8, "failed": 0, "agreement": 0.5625},
    ],
    "mode": "labels",
    "gates": False,
    "min_agreement": 0.75,
}
CALIBRATION = {
    "emotions": ["neutral", "happy", "sad"],
    "matrix": {"neutral": {"neutral": 1.0, "happy": 0.0, "sad": 0.0}, "happy": {"neutral": 0.0, "happy": 0.75, "sad": 0.0},
               "sad": {"neutral": 0.25, "happy": 0.0, "sad": 0.5}},
    "clips_per_emotion": 4,
    "recall": {"neutral": 1.0, "happy": 0.75, "sad": 0.5},
    "precision": {"neutral": 0.8, "happy": 1.0, "sad": 1.0},
    "gated": ["happy", "neutral"],
    "min_recall": 0.75,
    "min_precision": 0.5,
}
TARGET = {
    "language": {"en": 1.0},
    "user_emotion": {"sad": 0.5, "happy": 0.25, "neutral": 0.25},
    "user_gender": {"female": 0.5, "male": 0.5},
    "user_age_group": {"adult": 1.0},
    "exchanges": {"1": 0.5, "2": 0.5},
}


def flac(seconds: float, freq: float = 220.0) -> dict:
    buffer = io.BytesIO()
    sf.write(buffer, sine(freq, seconds, RATE), RATE, format="FLAC", subtype="PCM_16")
    return {"bytes": buffer.getvalue(), "path": f"{freq:.0f}-{seconds}.flac"}


def row(dialogue: str, k: int, emotion: str, split: str = "train", speaker: str = "spk-a", **extra) -> dict:
    quality = {name: 0.1 for name in QUALITY_FIELDS} | {"judge_rationale": "all fine", "judge_user_emotion": None, "judge_assistant_style": None}
    quality |= {"user_duration": 1.0, "assistant_duration": 1.5, "user_emotion_score": 0.9}
    gender = "male" if speaker.endswith("m") else "female"
    base = {
        "dialogue_id": dialogue,
        "exchange_index": k,
        "split": split,
        "language": "en",
        "scenario": "lost_job",
        "history": [{"role": "user", "text": "before"}, {"role": "assistant", "text": "reply"}] * k,
        "history_clean": True,
        "user_text": f"user text {dialogue} {k}",
        "user_emotion": emotion,
        "user_speaker_id": speaker,
        "user_gender": gender,
        "user_age_group": "adult",
        "assistant_text": f"assistant text {dialogue} {k}",
        "assistant_style": "comforting",
        "assistant_emotion": "sad",
        "assistant_speaker_id": "asst",
        "reasoning": f"reasoning {dialogue} {k}",
        "quality": quality,
        "provenance": {"build_name": "t", "regeneration_round": "0"},
        "user_audio": flac(1.0, 220.0),
        "assistant_audio": flac(1.5, 330.0),
    }
    return base | extra


def default_rows() -> tuple[list[dict], list[dict]]:
    """d0: sad -> angry, both accepted (train); d1: happy, accepted (test, another speaker);
    d2: neutral -> sad, exchange 1 rejected on user.wer; d3: failed in the script stage (no text);
    and a replaced version of d2, which the report must leave out."""
    data = [
        row("d0", 0, "sad"),
        row("d0", 1, "angry"),
        row("d1", 0, "happy", split="test", speaker="spk-m"),
        row("d2", 0, "neutral"),
    ]
    bad = {"user_wer": 0.9, "user_cer": 0.7}
    rejects = [
        row("d2", 1, "sad", verdict="rejected", stage="filter", reasons=["user.wer: 0.9 > 0.25"])
        | {"quality": data[0]["quality"] | bad},
        row("d3", 0, "fearful", verdict="failed", stage="script", reasons=["llm: malformed"])
        | {"quality": None, "user_text": None, "assistant_text": None, "reasoning": None},
        row("d2", 1, "disgusted", verdict="replaced", stage="filter", reasons=["user.wer: x", "replaced: by round 1"]),
    ]
    return data, rejects


def write_shard(path: Path, rows: list[dict], with_audio: bool, with_verdict: bool, history_clean: bool) -> dict:
    schema = features(RATE, with_audio=with_audio, with_verdict=with_verdict).arrow_schema
    if not history_clean and "history_clean" in schema.names:
        schema = schema.remove(schema.get_field_index("history_clean"))
    table = pa.Table.from_pylist([{name: r.get(name) for name in schema.names} for r in rows], schema=schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, row_group_size=2)
    return {"file": path.name, "rows": len(rows), "sha256": "not-checked"}


def make_corpus(
    root: Path,
    data: list[dict] | None = None,
    rejects: list[dict] | None = None,
    target: bool = True,
    diversity: bool = True,
    history_clean: bool = True,
    calibration: bool = True,
    judge_calibration: bool = True,
    ingested: bool = True,
) -> Path:
    """Write OUT under root and return it."""
    if data is None and rejects is None:
        data, rejects = default_rows()
    data, rejects = data or [], rejects or []
    out = root / "out"
    by_split: dict[str, list[dict]] = defaultdict(list)
    for r in data:
        by_split[r["split"]].append(r)
    shards = {"data": {}, "rejects": []}
    for split in ("train", "validation", "test"):
        rows = by_split.get(split, [])
        name = f"{split}-00000-of-00001.parquet"
        shards["data"][split] = [write_shard(out / "data" / name, rows, True, False, history_clean)] if rows else []
    if rejects:
        shard = write_shard(out / "rejects" / "rejects-00000-of-00001.parquet", rejects, False, True, history_clean)
        shards["rejects"] = [shard]
    kept_rejects = [r for r in rejects if r["verdict"] != "replaced"]
    planned: dict[str, Counter] = defaultdict(Counter)
    accepted: dict[str, Counter] = defaultdict(Counter)
    for r in data + kept_rejects:
        for name in ("language", "user_gender", "user_age_group", "user_emotion", "assistant_style"):
            planned[name][r[name]] += 1
            if r in data:
                accepted[name][r[name]] += 1
    reasons = Counter(reason.split(":")[0] for r in kept_rejects for reason in r["reasons"][:1])
    manifest = {
        "format_version": FORMAT_VERSION,
        "name": "report-test <build>",
        "plan_key": "abc123",
        "config": {
            "languages": {"en": 1.0},
            "export": {"splits": {"train": 0.8, "validation": 0.1, "test": 0.1}},
            "filter": {"thresholds": {"max_wer": 0.25, "max_cer": 0.25, "min_duration_s": 0.5, "max_duration_s": 30}},
        },
        "counts": {
            "dialogues": {"planned": 4, "accepted": 2, "rejected": 1, "failed": 1},
            "exchanges": {
                "planned": len(data) + len(kept_rejects),
                "accepted": len(data),
                "rejected": sum(r["verdict"] == "rejected" for r in kept_rejects),
                "failed": sum(r["verdict"] == "failed" for r in kept_rejects),
            },
            "by_reason": dict(reasons),
            "regeneration": {
                "rounds": 1,
                "dialogues_regenerated": 1,
                "exchanges_replaced": 1,
                "accepted_by_round": {"0": max(len(data) - 1, 0), "1": min(len(data), 1)} if data else {},
            },
            "by_split": {s: len(by_split.get(s, [])) for s in ("train", "validation", "test")},
        },
        "distributions": {"planned": planned, "accepted": accepted},
        "checks": {"user.wer": {"pass": len(data), "fail": 1}, "user.emotion": {"pass": len(data) + 1}},
        "script_checks": {"validation": {"pass": len(data), "fail": 2}, "judge": {"pass": len(data)}, "topic": {"pass": len(data)}},
        "shards": shards,
        "versions": {"empathy-data": "0.1.0"},
        "stage_keys": {},
    }
    if target:
        manifest["distributions"]["target"] = TARGET
    if diversity:
        manifest["diversity"] = DIVERSITY
    if calibration:
        manifest["calibration"] = CALIBRATION
    if judge_calibration:
        manifest["judge_calibration"] = JUDGE_CALIBRATION
    if ingested:  # a build with `ingest:`: rows without a source are synthetic ones
        manifest["ingested"] = {"corpora": [{"name": "iemo", "source": "tests", "licence": "test-only", "queries": 3}]}
        by_source: dict[str, dict] = {}
        for r in data + kept_rejects:
            found = by_source.setdefault(r.get("source") or "synthetic", {"planned": defaultdict(Counter),
                                                                          "accepted": defaultdict(Counter), "checks": {}})
            for name in ("language", "user_gender", "user_age_group", "user_emotion", "assistant_style"):
                found["planned"][name][r[name]] += 1
                if r in data:
                    found["accepted"][name][r[name]] += 1
        manifest["distributions"]["by_source"] = by_source
    Manifest.model_validate(manifest)  # the report reads only what a build writes
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return out
