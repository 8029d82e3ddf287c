"""`empathy-recipe export --format preference`: (user audio + history, chosen reply, rejected reply, why) pairs
in the conversational layout TRL's DPOTrainer reads (`prompt`, `chosen`, `rejected` as message lists), with
the user turn's audio path beside them.

Pairs come from what a build already holds (docs/recipes.md, "Preference pairs"):
- `regeneration`: an accepted exchange (chosen: the version the build kept) and a version of the same exchange
  that the build replaced by it (rejected), when one of the replaced version's reasons is of a qualifying kind;
- `contrast`: in a contrast group, an accepted member's reply (chosen) and another member's reply, written for
  another emotion or voice of the same words (rejected).
A pair must also clear `min_score_gap` on the judge scores both versions have. Only the chosen row's user audio
is read: rejects/ need no audio.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pyarrow.parquet as pq

from empathy_recipe.audio import decode, write_wav
from empathy_recipe.corpus import Corpus, read_group
from empathy_recipe.errors import RecipeError
from empathy_recipe.exporters.run import staged

SOURCES = ("regeneration", "contrast")
# Reasons that speak against the reply itself: the filter's checks on the assistant turn and the script
# stage's (validation, judges). The user turn's failures ("user.wer") say nothing about the reply.
REPLY_REASONS = ("assistant.", "script: ")
JUDGE_SCORES = ("judge_emotion", "judge_style", "judge_topic", "judge_reasoning", "judge_naturalness")
TEXT_COLUMNS = ("dialogue_id", "exchange_index", "split", "history", "user_text", "user_emotion", "assistant_text",
                "assistant_style", "group_id", "quality", "provenance")  # fmt: skip
SYSTEM = "You are a caring voice assistant. Listen to how the user sounds as well as what they say."


@dataclass(frozen=True)
class PairRules:
    sources: tuple[str, ...] = SOURCES
    reasons: tuple[str, ...] = REPLY_REASONS  # a replaced version qualifies with a reason starting with one of these
    min_score_gap: float = 0.0  # chosen's mean judge score minus rejected's, where both have scores
    same_words_only: bool = False  # regeneration: only versions whose user said the same words


@dataclass
class Tally:
    pairs: Counter = field(default_factory=Counter)  # by source
    skipped: Counter = field(default_factory=Counter)  # candidate pairs not written, by reason


def mean_judge(row: dict[str, Any]) -> float | None:
    scores = [v for k, v in (row.get("quality") or {}).items() if k in JUDGE_SCORES and v is not None]
    return sum(scores) / len(scores) if scores else None


def score_gap_ok(chosen: dict, rejected: dict, rules: PairRules) -> bool:
    a, b = mean_judge(chosen), mean_judge(rejected)
    return rules.min_score_gap <= 0 or (a is not None and b is not None and a - b >= rules.min_score_gap)


def read_rows(corpus: Corpus, folder: str, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    """Every row of data/ (the chosen side: the splits opened) or rejects/ (text columns only)."""
    if folder == "data":
        return [r for _, rows in corpus.iter_row_groups(columns) for r in rows]
    rows = []
    for entry in corpus.manifest.rejects:
        path = corpus.root / "rejects" / entry.file
        if not path.is_file():
            raise RecipeError(f"missing shard: {path} (listed in {corpus.root / 'manifest.json'}); preference pairs read rejects/")
        names = set(pq.read_schema(path).names)
        rows += pq.read_table(path, columns=[c for c in (*columns, "verdict", "reasons") if c in names]).to_pylist()
    return rows


def candidate_pairs(chosen: list[dict], rejects: list[dict], rules: PairRules, tally: Tally) -> list[tuple[dict, dict, str, str]]:
    """(chosen row, rejected row, source, why) for every pair the rules let through."""
    pairs = []
    if "regeneration" in rules.sources:
        replaced = defaultdict(list)
        for row in rejects:
            if row.get("verdict") != "replaced":
                continue
            if row.get("assistant_text"):
                replaced[(row["dialogue_id"], row["exchange_index"])].append(row)
            else:  # stopped before its reply was written (a script-stage rejection): nothing to pair
                tally.skipped["regeneration: replaced version has no reply"] += 1
        for row in chosen:
            for old in replaced.get((row["dialogue_id"], row["exchange_index"]), []):
                why = [r for r in old.get("reasons") or [] if r.startswith(rules.reasons)]
                if not why:
                    tally.skipped["regeneration: no qualifying reason"] += 1
                elif rules.same_words_only and old.get("user_text") != row["user_text"]:
                    tally.skipped["regeneration: other words"] += 1
                elif not score_gap_ok(row, old, rules):
                    tally.skipped["regeneration: score gap"] += 1
                else:
                    pairs.append((row, old, "regeneration", "; ".join(why)))
    if "contrast" in rules.sources:
        members = defaultdict(list)
        for row in chosen + [r for r in rejects if r.get("verdict") != "replaced"]:
            if row.get("group_id") and row.get("assistant_text"):
                members[row["group_id"]].append(row)
        for row in chosen:
            for other in members.get(row.get("group_id"), []):
                if other["dialogue_id"] == row["dialogue_id"] or other["assistant_text"] == row["assistant_text"]:
                    continue
                if not score_gap_ok(row, other, rules):
                    tally.skipped["contrast: score gap"] += 1
                    continue
                why = (f"written for a {other['user_emotion']} voice saying the same words; this one sounds "
                       f"{row['user_emotion']}") if other["user_emotion"] != row["user_emotion"] else (
                       "written for another speaker saying the same words")  # fmt: skip
                pairs.append((row, other, "contrast", why))
    return pairs


def pair_line(chosen: dict, rejected: dict, source: str, why: str, audio: str) -> dict[str, Any]:
    history = [{"role": t["role"], "content": t["text"]} for t in chosen.get("history") or [] if t.get("text")]
    return {
        "prompt": [{"role": "system", "content": SYSTEM}, *history, {"role": "user", "content": chosen["user_text"]}],
        "chosen": [{"role": "assistant", "content": chosen["assistant_text"]}],
        "rejected": [{"role": "assistant", "content": rejected["assistant_text"]}],
        "audio": audio,  # the user turn the prompt's last message transcribes (16 kHz WAV)
        "why": why,
        "pair_source": source,
        "dialogue_id": chosen["dialogue_id"],
        "exchange_index": chosen["exchange_index"],
        "user_emotion": chosen["user_emotion"],
        "rejected_user_text": rejected.get("user_text"),
        "chosen_round": (chosen.get("provenance") or {}).get("regeneration_round"),
        "rejected_round": (rejected.get("provenance") or {}).get("regeneration_round"),
    }


def export_preference(corpus: Corpus, to: Path, rules: PairRules | None = None) -> dict[str, Any]:
    """Write `{split}.jsonl` pairs, `audio/<split>/<key>_user.wav` and export.json into `to`, atomically."""
    rules = rules or PairRules()
    unknown = [s for s in rules.sources if s not in SOURCES]
    if unknown:
        raise RecipeError(f"unknown pair source {unknown[0]!r} (from: {', '.join(SOURCES)})")
    to = Path(to).expanduser().absolute()
    with staged(to) as stage:
        tally = Tally()
        chosen = read_rows(corpus, "data", TEXT_COLUMNS)
        pairs = candidate_pairs(chosen, read_rows(corpus, "rejects", TEXT_COLUMNS), rules, tally)
        keys = {(c["dialogue_id"], c["exchange_index"]) for c, *_ in pairs}
        audio = user_audio(corpus, keys, stage, to)
        with ExitStack() as files:
            lines: dict[str, IO[str]] = {}
            for c, r, source, why in sorted(pairs, key=lambda p: (p[0]["split"], p[0]["dialogue_id"], p[0]["exchange_index"], p[2])):
                key = (c["dialogue_id"], c["exchange_index"])
                if key not in audio:
                    tally.skipped[f"{source}: user audio missing"] += 1
                    continue
                if c["split"] not in lines:
                    lines[c["split"]] = files.enter_context(open(stage / f"{c['split']}.jsonl", "w", encoding="utf-8"))
                lines[c["split"]].write(json.dumps(pair_line(c, r, source, why, audio[key]), ensure_ascii=False) + "\n")
                tally.pairs[source] += 1
        result = {
            "format": "preference",
            "corpus": str(corpus.root),
            "corpus_rows": corpus.num_rows,
            "pairs": sum(tally.pairs.values()),
            "pairs_by_source": dict(sorted(tally.pairs.items())),
            "chosen_exchanges": len(keys),
            "skipped_by_reason": dict(sorted(tally.skipped.items())),
            "options": {"sources": list(rules.sources), "reasons": list(rules.reasons),
                        "min_score_gap": rules.min_score_gap, "same_words_only": rules.same_words_only,
                        "splits": corpus.splits},  # fmt: skip
        }
        (stage / "export.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return result


def user_audio(corpus: Corpus, keys: set[tuple[str, int]], stage: Path, final: Path) -> dict[tuple[str, int], str]:
    """The chosen exchanges' user turns as WAV files, one row group read at a time; key -> final path."""
    found = {}
    for group in corpus.row_groups():
        ids = read_group(group, ["dialogue_id", "exchange_index"])
        if not any((r["dialogue_id"], r["exchange_index"]) in keys for r in ids):
            continue
        for row in read_group(group, ["dialogue_id", "exchange_index", "user_audio"]):
            key = (row["dialogue_id"], row["exchange_index"])
            wave = decode(row.get("user_audio")) if key in keys else None
            if wave is None:
                continue
            name = Path("audio") / group.shard.split / f"{key[0]}-{key[1]:02d}_user.wav"
            write_wav(stage / name, wave)
            found[key] = str(final / name)
    return found
