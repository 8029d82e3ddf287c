"""`empathy-data eval-set OUT --to DIR`: a held-out evaluation set from a finished build, in URO-Bench's layout.

From one split of the accepted rows (default `test`), the first exchange of each dialogue (no history to
replay), spoken by users who appear in no other split, the same number per user emotion (the rarest emotion's
count, or `per_emotion`); where the build mixed in real recordings (`source: real`), `real_share` of each
emotion's items (a third by default, as EChat-eval keeps) are real ones, as far as the split has them. DIR gets the user turns as WAV files and `test.jsonl`, one line per item, with
URO-Bench's fields (`source_wav` relative to the file, `source_text`, `target_text`: the corpus's reply as the
reference) plus the labels (`emotion`, `gender`, `age_group`, `language`, `speaker_id`, `source`, and the
reference reply's `target_emotion` and `target_style`, which `empathy-data score` measures GenEmotion against);
`echat.jsonl`, the same items as EChat-200K data.list lines, the form OSUM-EChat's benchmark EChat-eval follows
(`key`, `wav`, `txt`: the reference reply, `extra.question`: the query's transcript, and the paralinguistic labels
`extra.q_emotion`, `extra.age`, `extra.gender` as "<TAG>"s; our own fields under `extra` keep our names); and
`eval.json` with the counts. Labels are read by column projection first; audio only for the chosen rows.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import soundfile as sf

from empathy_data.core.atomic import atomic_dir
from empathy_data.core.audio import decode_bytes
from empathy_data.core.labels import ECHAT_AGE, ECHAT_EMOTION, ECHAT_GENDER
from empathy_data.tools.report.load import Location, ReportError, iter_groups, read_manifest, read_rows, shard_paths

SELECT = ("dialogue_id", "exchange_index", "split", "language", "user_emotion", "user_speaker_id", "source")
REAL_SHARE = 1 / 3
FIELDS = (*SELECT, "user_text", "assistant_text", "user_gender", "user_age_group", "assistant_emotion", "assistant_style")


def balanced_pick(found: list[tuple[str, str, Location]], n: int, real_share: float) -> list[Location]:
    """n of one emotion's (source, dialogue_id, location) items: round(n * real_share) real ones where there
    are that many (without real ones, none), the rest synthetic, either side filling in for the other."""
    real = sorted((d, loc) for source, d, loc in found if source == "real")
    synthetic = sorted((d, loc) for source, d, loc in found if source != "real")
    want_real = min(len(real), max(n - len(synthetic), round(n * real_share)))
    return [loc for _, loc in real[:want_real] + synthetic[: n - want_real]]


def select_items(out: Path, split: str = "test", per_emotion: int | None = None,
                 real_share: float = REAL_SHARE) -> tuple[list[Location], dict]:  # fmt: skip
    """The rows of the evaluation set (in emotion, then dialogue order) and what was left out and why."""
    manifest = read_manifest(out)
    splits = manifest.shards.data
    if split not in splits:
        raise ReportError(f"--split {split}: not a split of {out} (splits: {', '.join(splits) or 'none'})")
    elsewhere = {
        row["user_speaker_id"]
        for other in splits
        if other != split
        for _, _, rows in iter_groups(shard_paths(out, manifest, "data", other), ("user_speaker_id",))
        for row in rows
    }
    by_emotion: dict[str, list[tuple[str, str, Location]]] = defaultdict(list)
    left_out = {"later_exchange": 0, "speaker_in_another_split": 0}
    for path, group, rows in iter_groups(shard_paths(out, manifest, "data", split), SELECT):
        for i, row in enumerate(rows):
            if row["exchange_index"] != 0:
                left_out["later_exchange"] += 1
            elif row["user_speaker_id"] in elsewhere:
                left_out["speaker_in_another_split"] += 1
            else:
                source = row.get("source") or "synthetic"  # shards before manifest format 3 have no column
                by_emotion[row["user_emotion"]].append((source, row["dialogue_id"], Location(path, group, i)))
    if not by_emotion:
        raise ReportError(f"{out}: no first exchange in split {split!r} from a speaker of that split only")
    n = min(len(found) for found in by_emotion.values())
    if per_emotion is not None:
        n = min(n, per_emotion)
    chosen = [loc for emotion in sorted(by_emotion) for loc in balanced_pick(by_emotion[emotion], n, real_share)]
    counts = {
        "build": manifest.name,
        "split": split,
        "per_emotion": n,
        "emotions": sorted(by_emotion),
        "items": len(chosen),
        "left_out": left_out | {"over_balance": sum(len(v) for v in by_emotion.values()) - len(chosen)},
    }
    return chosen, counts


def write_eval_set(out: Path, to: Path, split: str = "test", per_emotion: int | None = None,
                   real_share: float = REAL_SHARE) -> dict:  # fmt: skip
    locations, counts = select_items(out, split, per_emotion, real_share)
    rows = read_rows(locations, (*FIELDS, "user_audio"))
    speakers = sorted({row["user_speaker_id"] for row in rows})
    with atomic_dir(to) as stage:
        (stage / "audio").mkdir()
        with open(stage / "test.jsonl", "w", encoding="utf-8") as lines, open(stage / "echat.jsonl", "w", encoding="utf-8") as echat:
            for row in rows:
                key = f"{row['dialogue_id']}-{row['exchange_index']:02d}"
                audio, rate = decode_bytes(row["user_audio"]["bytes"])
                sf.write(stage / "audio" / f"{key}.wav", audio, rate, subtype="PCM_16")
                item = {
                    "key": key,
                    "source_wav": f"audio/{key}.wav",
                    "source_text": row["user_text"],
                    "target_text": row["assistant_text"],
                    "emotion": row["user_emotion"],
                    "target_emotion": row["assistant_emotion"],
                    "target_style": row["assistant_style"],
                    "gender": row["user_gender"],
                    "age_group": row["user_age_group"],
                    "language": row["language"],
                    "speaker_id": row["user_speaker_id"],
                    "source": row.get("source") or "synthetic",
                }
                lines.write(json.dumps(item, ensure_ascii=False) + "\n")
                echat.write(json.dumps(echat_line(item, manifest_name=counts["build"]), ensure_ascii=False) + "\n")
        real = sum((row.get("source") or "synthetic") == "real" for row in rows)
        summary = counts | {"speakers": len(speakers), "corpus": str(out), "real": real}
        (stage / "eval.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    return summary


def echat_line(item: dict, manifest_name: str) -> dict:
    """One evaluation item as an EChat-200K data.list line (OSUM-EChat README, "Raw Type"; labels as in
    processor_tag_think.py): the query's audio and transcript, its labels, and the reference reply."""
    return {
        "key": item["key"],
        "wav": item["source_wav"],
        "txt": item["target_text"],
        "task": "<S2TCHAT> <THINK>",
        "extra": {
            "question": item["source_text"],
            "q_emotion": f"<{ECHAT_EMOTION[item['emotion']]}>",
            "age": f"<{ECHAT_AGE[item['age_group']]}>",
            "gender": f"<{ECHAT_GENDER[item['gender']]}>",
            "dataset": manifest_name,
            "source": item["source"],
            "language": item["language"],
            "speaker_id": item["speaker_id"],
            "target_emotion": item["target_emotion"],
            "target_style": item["target_style"],
        },
    }
