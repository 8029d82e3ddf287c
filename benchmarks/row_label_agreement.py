"""Accepted rows of a finished build against hand labels: does each row's text fit its labels, as a person
reading it says, and as the build's script judge recorded it?

The hand labels are a YAML list, one entry per row read: `row` (dialogue_id#exchange_index), `fits` (true
when the user's words show the planned emotion, belong to the scenario and persona, and the reply has the
planned style and answers the user as "you"), and `why` for a row that does not fit. Rows not listed are
printed for reading and left out of the counts.

The judge's verdict on a row is what the build recorded (manifest `judge_calibration`: the mode it ran in):
scores mode, every criterion at or above its minimum; labels mode, its picks equal the planned user emotion
and reply style. A row the judge gave no usable answer for has no verdict.

    python benchmarks/row_label_agreement.py OUT [--hand FILE]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pyarrow.parquet as pq
import yaml

COLUMNS = ["dialogue_id", "exchange_index", "scenario", "user_gender", "user_age_group", "user_emotion",
           "assistant_style", "user_text", "assistant_text", "quality"]  # fmt: skip
CRITERIA = ("emotion", "style", "topic", "reasoning", "naturalness")


def judge_passes(row: dict, mode: str, min_scores: dict[str, int]) -> bool | None:
    q = row["quality"] or {}
    if mode == "labels":
        if q.get("judge_user_emotion") is None:
            return None
        return q["judge_user_emotion"] == row["user_emotion"] and q["judge_assistant_style"] == row["assistant_style"]
    scores = {c: q.get(f"judge_{c}") for c in CRITERIA}
    if any(v is None for v in scores.values()):
        return None
    return all(scores[c] >= minimum for c, minimum in min_scores.items())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path, help="a finished build's output directory")
    parser.add_argument("--hand", type=Path, help="YAML hand labels (see the module docstring)")
    args = parser.parse_args()

    manifest = json.loads((args.out / "manifest.json").read_text())
    judge = manifest.get("judge_calibration") or {}
    mode = judge.get("mode") or manifest["config"]["script"]["judge"]["mode"]
    min_scores = manifest["config"]["script"]["judge"].get("min_scores") or dict.fromkeys(CRITERIA, 2)
    rows = [r for f in sorted((args.out / "data").glob("*.parquet")) for r in pq.read_table(f, columns=COLUMNS).to_pylist()]
    rows.sort(key=lambda r: (r["dialogue_id"], r["exchange_index"]))
    hand = {e["row"]: e for e in yaml.safe_load(args.hand.read_text())} if args.hand else {}

    fits = judged = judge_agrees = 0
    for r in rows:
        name = f"{r['dialogue_id']}#{r['exchange_index']}"
        verdict = judge_passes(r, mode, min_scores)
        label = hand.get(name)
        print(f"{name} | {r['scenario']} | {r['user_gender']} {r['user_age_group']} | {r['user_emotion']} -> "
              f"{r['assistant_style']} | judge ({mode}): {'-' if verdict is None else 'pass' if verdict else 'reject'}"
              + ("" if label is None else f" | hand: {'fits' if label['fits'] else 'no: ' + label.get('why', '')}"))  # fmt: skip
        print(f"  user: {r['user_text']}\n  reply: {r['assistant_text']}")
        if label is None:
            continue
        fits += bool(label["fits"])
        if verdict is not None:
            judged += 1
            judge_agrees += verdict == bool(label["fits"])
    read = sum(f"{r['dialogue_id']}#{r['exchange_index']}" in hand for r in rows)
    print(f"\n{len(rows)} accepted rows; {read} read by hand: {fits} fit their labels")
    if judged:
        passed = sum(judge_passes(r, mode, min_scores) is True for r in rows)
        print(f"judge ({mode}, {'gated' if judge.get('gates') else 'recorded'}): passes {passed}/{len(rows)} rows; "
              f"agrees with the hand labels on {judge_agrees}/{judged}")  # fmt: skip


if __name__ == "__main__":
    main()
