"""The script judges against hand labels (prompts/judge_cases.yaml: good scripts and scripts with one
deliberately broken criterion), with the smoke config's judges: the embedded LLM server by default.

For each case it prints the judge's scores, whether the rule checks, the topic check and the LLM judge
pass it, and at the end the agreement of each with the labels (a "bad" case counts as caught when the
check rejects it), plus the share of broken criteria the judge scored below its threshold.

    python benchmarks/judge_agreement.py [--config configs/smoke.yaml] [--cases prompts/judge_cases.yaml]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default=str(REPO / "configs" / "smoke.yaml"))
    parser.add_argument("--cases", default=str(REPO / "prompts" / "judge_cases.yaml"))
    parser.add_argument("--min-score", type=int, default=2, help="a criterion below this counts as a rejection")
    parser.add_argument("--mode", choices=["scores", "labels"], default="scores",
                        help="scores: 1-5 per criterion; labels: the judge picks emotion and style from the lists")
    args = parser.parse_args()

    from empathy_data.backends import registry as backends
    from empathy_data.flows.build import llm_endpoint
    from empathy_data.runtime.build import BuildContext, script_judges
    from empathy_data.runtime.judge_calibration import case_script, rejects
    from empathy_data.stages.script.prompting import build_messages
    from empathy_data.stages.script.stage import complete_many
    from empathy_data.stages.script.validate import validate_script

    cases = yaml.safe_load(Path(args.cases).read_text())
    root = Path(tempfile.mkdtemp(prefix="judge-agreement-"))
    from dataclasses import replace

    from empathy_data.config.model import JUDGE_CRITERIA

    ctx = BuildContext.load(args.config, {"output": str(root / "out"), "languages": {"en": 0.5, "zh": 0.5}})
    script = ctx.config.script  # measured here as a gate, not by a build's calibration (min_agreement null)
    unmeasured = script.model_copy(update={"judge": script.judge.model_copy(update={"min_agreement": None})})
    ctx = replace(ctx, config=ctx.config.model_copy(update={"script": unmeasured}))
    gate = dict.fromkeys(JUDGE_CRITERIA, args.min_score)
    scripts = [case_script(case, i, ctx) for i, case in enumerate(cases)]
    rules = ctx.config.script.validation
    with llm_endpoint(ctx) as base_url:
        chat = backends.chat_backend(ctx.config.script, base_url)
        judges = script_judges(ctx, chat)
        judges.judge = judges.judge.model_copy(update={"mode": args.mode})
        judges.label_gate = ("emotion", "style")  # measured as a gate
        judges.min_scores = gate
        t0 = time.perf_counter()
        reviews = judges.review(scripts, [0] * len(scripts), lambda reqs, labels: complete_many(judges.chat, reqs, 1))
        seconds = time.perf_counter() - t0
    agree: Counter[str] = Counter()
    caught_criteria: Counter[str] = Counter()
    broken_criteria: Counter[str] = Counter()
    for case, script, review in zip(cases, scripts, reviews, strict=True):
        bad = case["label"] == "bad"
        rule = validate_script(script, rules, prompt=build_messages(script.spec, ctx.prompts)[0]["content"])
        topic_failed = bool(review.reason and review.reason.check == "topic")
        scores = {c: v for c, v in review.quality.get("judge", {}).items() if c != "why"}
        picks = review.quality.get("judge_labels")
        if args.mode == "labels":  # per criterion for the counts below: 1 where the judge's pick differed
            scores = {c: 1 if review.reason and review.reason.check == "judge" and c in str(review.reason) else 5
                      for c in ("emotion", "style")}  # fmt: skip
        # scores: a gate at --min-score; no reply: a rejection
        judge_failed = rejects(review, args.mode, gate)
        for name, rejected in (("rules", rule is not None), ("topic", topic_failed), ("judge", judge_failed),
                               ("any", rule is not None or topic_failed or judge_failed)):  # fmt: skip
            agree[name] += rejected == bad
        for criterion in case.get("broken", []):
            broken_criteria[criterion] += 1
            caught_criteria[criterion] += scores.get(criterion, 5) < args.min_score
        print(f"{case['id']:<16} {case['label']:<4} broken={','.join(case.get('broken', [])) or '-':<12} "
              f"rules={'reject' if rule else 'pass':<6} topic={review.quality.get('topic_similarity')} "
              f"judge={picks or scores} {'REJECT' if judge_failed else 'pass'} {review.quality.get('judge', {}).get('why', '')[:80]}")  # fmt: skip
    n = len(cases)
    print(f"\n{n} cases ({sum(c['label'] == 'bad' for c in cases)} bad); judge time {seconds:.1f} s "
          f"({seconds / n:.1f} s per script, topic check included)")  # fmt: skip
    for name in ("rules", "topic", "judge", "any"):
        print(f"agreement with the labels, {name}: {agree[name]}/{n} ({agree[name] / n:.0%})")
    for criterion, total in sorted(broken_criteria.items()):
        print(f"broken {criterion}: judge scored it below threshold in {caught_criteria[criterion]}/{total}")


if __name__ == "__main__":
    main()
