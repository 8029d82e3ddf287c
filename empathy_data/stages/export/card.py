"""The dataset card: a YAML header `datasets` reads (configs, splits), then what the corpus holds."""

from __future__ import annotations

from typing import Any

import yaml

from empathy_data.records.manifest import Manifest, Regeneration, Topup


def _kept(planned: int, accepted: int) -> str:
    return f"{accepted / planned:.0%}" if planned else "-"


def _table(title: str, planned: dict[str, int], accepted: dict[str, int],
           by_source: dict[str, tuple[dict[str, int], dict[str, int]]] | None = None) -> list[str]:  # fmt: skip
    """planned / accepted / kept per value; with `by_source` (source -> its planned, accepted) the same for
    each source in columns of its own."""
    by_source = by_source or {}
    sources = sorted(by_source)
    head = "| value | planned | accepted | kept |" + "".join(f" {s}: planned | {s}: accepted | {s}: kept |" for s in sources)
    lines = [f"### {title}", "", head, "| --- |" + " ---: |" * (3 + 3 * len(sources))]
    for key in sorted(set(planned) | set(accepted)):
        p, a = planned.get(key, 0), accepted.get(key, 0)
        row = f"| {key} | {p} | {a} | {_kept(p, a)} |"
        for source in sources:
            sp, sa = by_source[source][0].get(key, 0), by_source[source][1].get(key, 0)
            row += f" {sp} | {sa} | {_kept(sp, sa)} |"
        lines.append(row)
    return lines + [""]


def _contrast(c: dict[str, Any]) -> list[str]:
    if not c:
        return []
    return [
        "## Contrast groups",
        "",
        f"Groups of {c['size']} one-exchange dialogues whose user says the same words, in {c['size']} "
        + {"emotion": "planned emotions", "speaker": "voices of other genders and ages",
           "both": "emotions, each in a voice of another gender and age"}[c["by"]]
        + ", each with its own reply; rows share a `group_id`, a group stays in one split, and a group is "
        "never written again by regeneration (its words would change).",
        "",
        "| groups | complete | partial | none accepted |",
        "| ---: | ---: | ---: | ---: |",
        f"| {c['groups']} | {c['complete']} | {c['partial']} | {c['empty']} |",
        "",
    ]  # fmt: skip


def _source_counts(manifest: Manifest) -> list[str]:
    """The exchanges row again for each source (a build with real recordings)."""
    if not manifest.ingested:
        return []
    rows = []
    for source, found in sorted((manifest.distributions.get("by_source") or {}).items()):
        n = {v: found.get("exchanges", {}).get(v, 0) for v in ("accepted", "rejected", "failed")}
        rows.append(f"| exchanges, {source} | {sum(n.values())} | {n['accepted']} | {n['rejected']} | {n['failed']} |")
    return rows


def _ingested(ingested: dict[str, Any]) -> list[str]:
    if not ingested:
        return []
    lines = [
        "## Real recordings",
        "",
        "Rows whose `source` is `real` have a recorded user turn from an existing corpus (`empathy-data ingest`): "
        "its transcript and emotion label are the corpus's; the reply was written and rendered for it. The "
        "recording went through the same ASR check against its own transcript; the emotion check, calibrated on "
        "TTS audio, does not judge it.",
        "",
        "| corpus | source | licence | queries | speakers | emotions |",
        "| --- | --- | --- | ---: | ---: | --- |",
    ]
    for corpus in ingested.get("corpora", []):
        emotions = ", ".join(f"{e} {n}" for e, n in corpus.get("by_emotion", {}).items())
        lines.append(f"| {corpus.get('name')} | {corpus.get('source')} | {corpus.get('licence')} | {corpus.get('queries')} "
                     f"| {corpus.get('speakers')} | {emotions} |")  # fmt: skip
    return lines + [""]


TARGET_TITLES = {
    "language": "Language",
    "user_emotion": "User emotion (first exchange)",
    "user_gender": "User gender",
    "user_age_group": "User age group",
    "exchanges": "Exchanges per dialogue",
}


def _targets(distributions: dict[str, Any], planned_total: int, topup: Topup) -> list[str]:
    """Target, planned and achieved side by side, per dialogue-level label. The plan allocates each label
    exactly: every prefix of it is within one dialogue of target share x dialogues."""
    target = distributions.get("target")
    if not target:
        return []
    planned = distributions.get("planned_dialogues", {})
    accepted = distributions.get("accepted", {})
    achieved = distributions.get("achieved", {})
    gap = distributions.get("gap", {})
    lines = [
        "## Target, planned and accepted",
        "",
        f"Target: the configured share, and that share of the {planned_total} planned dialogues. Planned: "
        "dialogues the plan holds (the configured ones within one dialogue of their target; top-up extras, "
        "if any, go to the labels the filter thinned). Accepted: exchanges in the corpus "
        "(for the user emotion, exchanges of dialogues that opened with it are counted by their own emotion). "
        "Achieved: the share of accepted dialogue equivalents (each dialogue counts accepted / planned "
        "exchanges), and its gap to the target in percentage points.",
        "",
    ]
    if topup.dialogues:
        lines += [
            f"Top-up (`rebalance`): {topup.dialogues} extra dialogue(s) in {topup.passes} pass(es), "
            f"budget {topup.budget}, planned into the labels the filter thinned; they are among the planned.",
            "",
        ]
    for label, title in TARGET_TITLES.items():
        if label not in target:
            continue
        lines += [f"### {title}", "",
                  "| value | target | target dialogues | planned dialogues | accepted exchanges | achieved | gap |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
        for value in sorted(set(target[label]) | set(planned.get(label, {}))):
            share = target[label].get(value, 0.0)
            got = planned.get(label, {}).get(value, 0)
            acc = accepted.get(label, {}).get(value, "-") if label != "exchanges" else "-"
            ach = achieved.get(label, {}).get(value, 0.0)
            off = gap.get(label, {}).get(value, ach - share) * 100
            lines.append(f"| {value} | {share:.1%} | {share * planned_total:.1f} | {got} | {acc} | {ach:.1%} | {off:+.1f} |")
        lines.append("")
    return lines


def _pass_rows(checks: dict[str, dict[str, int]]) -> list[str]:
    rows = []
    for name, c in checks.items():
        passed, failed = c.get("pass", 0), c.get("fail", 0)
        rate = f"{passed / (passed + failed):.0%}" if passed + failed else "-"
        rows.append(f"| {name} | {passed} | {failed} | {rate} |")
    return rows


def _diversity(d: dict[str, Any] | None) -> list[str]:
    if not d:
        return []
    lines = [
        "",
        "## Text diversity (accepted turns)",
        "",
        f"distinct-1 {d['distinct_1']:.3f}, distinct-2 {d['distinct_2']:.3f} (unique / total word n-grams; "
        f"characters for Mandarin). Near-duplicate scripts (MinHash, Jaccard >= 0.8, the first one kept): "
        f"{d.get('near_duplicates', 0)} of {d.get('dialogues', 0)} dialogues "
        f"({d.get('near_duplicate_rate', 0.0):.1%}), rejected with reason `near_duplicate`.",
    ]
    if d.get("semantic_checked"):
        by_language = d.get("semantic_diversity") or {}
        diversity = ", ".join(f"{language} {value:.3f}" for language, value in by_language.items()) or "-"
        lines += [
            "",
            f"Semantic (sentence embeddings, within each language): diversity {diversity} (1 - mean cosine "
            f"similarity between two scripts); paraphrased duplicates {d.get('semantic_duplicates', 0)} of "
            f"{d['semantic_checked']}, rejected with reason `semantic_duplicate`.",
        ]
    if d.get("top_openings"):
        lines += ["", "Most repeated openings of the user's first turn:", ""]
        lines += [f"- \"{text}\" x{count}" for text, count in d["top_openings"]]
    return lines


def _split_rule(split_by: str) -> str:
    if split_by == "speaker":
        return ("Splits are assigned by user speaker (a hash of the speaker id): no user voice appears in two "
                "splits, and a dialogue never straddles splits. On a small corpus the ratios are coarse.")  # fmt: skip
    return "Splits are assigned by dialogue (a hash of the dialogue id): a dialogue never straddles splits."


def _empty_splits(by_split: dict[str, int]) -> list[str]:
    empty = [s for s, rows in by_split.items() if rows == 0]
    if not empty:
        return []
    return ["", f"Configured but empty (no accepted row was assigned to them; `datasets` cannot load an empty "
                f"split, so they are left out of the header): {', '.join(empty)}."]  # fmt: skip


def dataset_card(manifest: Manifest) -> str:
    config = manifest.config
    counts = manifest.counts
    splits = [s for s, rows in counts.by_split.items() if rows > 0]
    header = {
        "pretty_name": manifest.name,
        "language": sorted(config["languages"]),
        "license": "other",
        "task_categories": ["automatic-speech-recognition", "text-to-speech", "audio-classification"],
        "tags": ["synthetic", "empathetic-dialogue", "speech", "emotion", "empathy-data"],
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": s, "path": f"data/{s}-*.parquet"} for s in splits],
            }
        ],
    }
    ex, dl = counts.exchanges, counts.dialogues
    lines = [
        "---",
        yaml.safe_dump(header, sort_keys=False, allow_unicode=True).strip(),
        "---",
        "",
        f"# {manifest.name}",
        "",
        "Synthetic empathetic spoken dialogues made by empathy-data: an LLM wrote each dialogue for a planned "
        "scenario, speaker and per-turn emotion; TTS rendered it; ASR and an emotion check filtered it. "
        "One row per exchange (a user turn and the assistant reply), with its dialogue history."
        + (" Some user turns are real recordings (`source: real`, see Real recordings)." if manifest.ingested else ""),
        "",
        "## Counts",
        "",
        "| unit | planned | accepted | rejected | failed |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| dialogues | {dl.planned} | {dl.accepted} | {dl.rejected} | {dl.failed} |",
        f"| exchanges | {ex.planned} | {ex.accepted} | {ex.rejected} | {ex.failed} |",
        *_source_counts(manifest),
        "",
        "Rows per split: " + ", ".join(f"{s} {n}" for s, n in counts.by_split.items()),
        "",
        _split_rule(config["export"].get("split_by", "dialogue")),
        *_empty_splits(counts.by_split),
        "",
        *_regeneration(counts.regeneration),
        *_targets(manifest.distributions, dl.planned, counts.topup),
        "## Distributions (exchanges)",
        "",
    ]
    planned, accepted = manifest.distributions["planned"], manifest.distributions["accepted"]
    sources = manifest.distributions.get("by_source", {}) if manifest.ingested else {}

    def split(key: str) -> dict[str, tuple[dict[str, int], dict[str, int]]]:
        return {s: (v["planned"].get(key, {}), v["accepted"].get(key, {})) for s, v in sources.items()}

    if sources:
        lines += _table("Source", planned.get("source", {}), accepted.get("source", {}))
    for key, title in (
        ("user_emotion", "User emotion"),
        ("assistant_style", "Assistant reply style"),
        ("user_gender", "User gender"),
        ("user_age_group", "User age group"),
        ("language", "Language"),
    ):
        lines += _table(title, planned.get(key, {}), accepted.get(key, {}), split(key))
    lines += [
        "## Filter pass rates (utterances)",
        "",
        "| check | pass | fail | pass rate |",
        "| --- | ---: | ---: | ---: |",
    ]
    lines += _pass_rows(manifest.checks)
    for source, found in sources.items():
        lines += ["", f"{source}:", "", "| check | pass | fail | pass rate |", "| --- | ---: | ---: | ---: |"]
        lines += _pass_rows(found["checks"])
    if manifest.script_checks:
        lines += [
            "",
            "## Script judge pass rates (every attempt, before any audio)",
            "",
            "`validation`: the rule checks; `topic`: scenario-dialogue embedding similarity; `judge`: the LLM "
            "judge's verdict (scores against `script.judge.min_scores`, or its closed-set picks against the "
            "plan; counted also where it only recorded, and then it rejected nothing), `judge.<criterion>` / "
            "`judge.<label>_match` each one; `judge_reply`: replies that were a judgement.",
            "",
            "| check | pass | fail | pass rate |",
            "| --- | ---: | ---: | ---: |",
        ]
        lines += _pass_rows(manifest.script_checks)
        for source, found in sources.items():
            if found.get("script_checks"):
                lines += ["", f"{source}:", "", "| check | pass | fail | pass rate |", "| --- | ---: | ---: | ---: |"]
                lines += _pass_rows(found["script_checks"])
    lines += _ingested(manifest.ingested)
    lines += _contrast(manifest.contrast)
    lines += _judge_calibration(manifest.judge_calibration)
    lines += _calibration(manifest.calibration)
    lines += _diversity(manifest.diversity)
    lines += ["", "## Rejection reasons (exchanges)", ""]
    names = sorted(sources)
    lines += ["| reason | count |" + "".join(f" {s} |" for s in names), "| --- | ---: |" + " ---: |" * len(names)]
    lines += [f"| {r} | {n} |" + "".join(f" {sources[s].get('reasons', {}).get(r, 0)} |" for s in names)
              for r, n in counts.by_reason.items()] or ["| - | 0 |" + " 0 |" * len(names)]  # fmt: skip
    lines += [
        "",
        "## Provenance",
        "",
        f"Seed {config['seed']}; LLM backend `{config['script']['backend']}` (model `{config['script']['model']}`); "
        f"TTS `{config['synthesize']['tts']['backend']}`; ASR `{config['filter']['asr']['backend']}`; "
        f"emotion check `{config['filter']['emotion']['backend']}`. Package versions and shard checksums are in "
        "`manifest.json`; rejected and failed exchanges, with reasons, are in `rejects/`.",
        "",
    ]
    return "\n".join(lines)


def _regeneration(r: Regeneration) -> list[str]:
    if not r.rounds:
        return []
    by_round = ", ".join(f"round {k}: {n}" for k, n in r.accepted_by_round.items()) or "none"
    return [
        f"Regeneration: up to {r.rounds} more round(s) for dialogues with a rejected exchange; "
        f"{r.dialogues_regenerated} dialogue(s) were written again. Accepted exchanges by round: {by_round}. "
        f"The {r.exchanges_replaced} exchange(s) of versions a dialogue did not keep are in `rejects/` "
        "with verdict `replaced`.",
        "",
    ]


def _judge_calibration(j: dict[str, Any]) -> list[str]:
    if not j:
        return []
    role = "gated" if j["gates"] else f"recorded its verdicts and rejected nothing (below {j['min_agreement']})"
    lines = [
        "",
        "## Script judge calibration (on hand-labelled scripts)",
        "",
        "Before it judged this build, the script judge ran over the hand-labelled cases "
        "(`prompts/judge_cases.yaml`: good scripts, and scripts with one criterion deliberately broken) in each "
        "mode; agreement is the share of cases where it would have rejected exactly the broken ones. "
        f"It ran in mode `{j['mode']}` and {role}.",
        "",
        "| mode | agrees with the labels | broken caught | good passed | requests failed |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {a['mode']} | {a['agree']}/{a['cases']} ({a['agreement']:.0%}) | {a['bad_caught']}/{a['bad']} | "
        f"{a['good_passed']}/{a['good']} | {a['failed']} |"
        for a in j["agreements"]
    ]
    return lines


def _calibration(c: dict[str, Any]) -> list[str]:
    if not c:
        return []
    emotions = c["emotions"]
    gated = set(c["gated"])
    lines = [
        "",
        "## Emotion check calibration (on this build's TTS)",
        "",
        f"Before it gated, the emotion check was measured on {c['clips_per_emotion']} probe clips per emotion "
        "that this build's TTS rendered (neutral-content sentences, voices of the pool): each row is the "
        "emotion a clip was rendered in, each column the emotion the check was asked about, each cell the share "
        f"it passed. It rejects only for the emotions whose recall reaches {c['min_recall']} and precision "
        f"{c['min_precision']} (gated: {', '.join(sorted(gated)) or 'none'}); for the others it is recorded as "
        "`emotion_recorded` and rejects nothing.",
        "",
        "| rendered \\ checked | " + " | ".join(emotions) + " |",
        "| --- | " + " | ".join("---:" for _ in emotions) + " |",
    ]
    for rendered in emotions:
        lines.append(f"| {rendered} | " + " | ".join(f"{c['matrix'][rendered][e]:.2f}" for e in emotions) + " |")
    lines += ["", "| emotion | recall | precision | gates |", "| --- | ---: | ---: | --- |"]
    lines += [
        f"| {e} | {c['recall'][e]:.2f} | {c['precision'][e]:.2f} | {'yes' if e in gated else 'no (recorded)'} |"
        for e in emotions
    ]
    return lines
