"""The script judge measured against hand labels before it is trusted: each judge mode runs over the labelled
case set (prompts/judge_cases.yaml: good scripts, and scripts with one criterion deliberately broken), and its
verdicts are compared with the labels. `empathy-data calibrate CONFIG --judge` prints it; the judge agreement
benchmark reports it per case."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

import yaml

from empathy_data.config.model import JUDGE_CRITERIA
from empathy_data.core.errors import ConfigError
from empathy_data.records.schema import DialogueSpec, Script, ScriptTurn, TurnPlan
from empathy_data.runtime.build import BuildContext
from empathy_data.stages.script.judge import Review, ScriptJudges
from empathy_data.stages.script.stage import complete_many

MODES = ("scores", "labels")
CASES_FILE = "judge_cases.yaml"
MIN_SCORE = 2  # scores mode, measured as a gate: a criterion scored below this rejects


def load_cases(ctx: BuildContext) -> list[dict[str, Any]]:
    """The case set of the build's prompts folder, in the languages the build writes."""
    path = ctx.prompts.root / CASES_FILE
    if not path.is_file():
        raise ConfigError(str(path), "missing: the judge's labelled cases (see prompts/judge_cases.yaml)")
    cases = [c for c in yaml.safe_load(path.read_text(encoding="utf-8")) if c["language"] in ctx.config.languages]
    if not cases:
        raise ConfigError(str(path), f"no case in the build's languages {sorted(ctx.config.languages)}")
    return cases


def case_script(case: dict[str, Any], index: int, ctx: BuildContext) -> Script:
    """A case as the script it would be in a build: its plan, with voices drawn from the build's pool."""
    rng = random.Random(index)
    pool = ctx.planner.pool
    user = pool.draw_user(rng, case["language"], case["user_gender"], case["user_age_group"])
    turns, texts, notes = [], [], []
    for ex in case["exchanges"]:
        turns += [TurnPlan(role="user", emotion=ex["user_emotion"]), TurnPlan(role="assistant", response_style=ex["response_style"])]
        texts += [ScriptTurn(role="user", text=ex["user"]), ScriptTurn(role="assistant", text=ex["assistant"])]
        notes.append(ex["reasoning"])
    spec = DialogueSpec(
        dialogue_id=case["id"], index=index, language=case["language"], scenario=case["scenario"],
        scenario_text=ctx.prompts.scenarios[case["language"]][case["scenario"]], user=user,
        assistant_voice=pool.draw_assistant(rng, case["language"], user), turns=turns,
    )  # fmt: skip
    return Script(spec=spec, turns=texts, reasoning=notes, llm={})


def rejects(review: Review, mode: str, min_score: int = MIN_SCORE) -> bool:
    """Whether the judge turned the script down: a pick that differs from the plan (labels), a criterion below
    `min_score` (scores), or no usable answer."""
    if mode == "labels":
        return review.quality.get("judge_labels") is None or bool(review.reason and review.reason.check == "judge")
    scores = {c: v for c, v in review.quality.get("judge", {}).items() if c in JUDGE_CRITERIA}
    return not scores or min(scores.values()) < min_score


@dataclass(frozen=True)
class Agreement:
    mode: str
    cases: int
    agree: int
    bad_caught: int
    bad: int
    good_passed: int
    good: int
    failed: int  # requests that raised (counted as disagreeing)

    @property
    def share(self) -> float:
        return self.agree / self.cases if self.cases else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**vars(self), "agreement": round(self.share, 4)}


def judge_agreement(ctx: BuildContext, chat: Any, mode: str, cases: list[dict[str, Any]]) -> tuple[Agreement, list[Review]]:
    """The judge on `chat` in `mode` over the cases, one request per case, against their labels."""
    judge = ctx.config.script.judge.model_copy(update={"mode": mode, "enabled": True})
    topic = ctx.config.script.topic.model_copy(update={"enabled": False})
    judges = ScriptJudges(ctx.prompts, judge, topic, chat, {}, None, ctx.config.script.request_tag, ("emotion", "style"))
    scripts = [case_script(case, i, ctx) for i, case in enumerate(cases)]
    reviews = judges.review(scripts, [0] * len(scripts), lambda requests, labels: complete_many(chat, requests, 1))
    tally: Counter[str] = Counter()
    for case, review in zip(cases, reviews, strict=True):
        bad = case["label"] == "bad"
        turned_down = review.error is not None or rejects(review, mode)
        tally["agree"] += turned_down == bad and review.error is None
        tally["bad" if bad else "good"] += 1
        tally["bad_caught" if bad else "good_passed"] += (turned_down == bad) and review.error is None
        tally["failed"] += review.error is not None
    return Agreement(mode, len(cases), tally["agree"], tally["bad_caught"], tally["bad"], tally["good_passed"],
                     tally["good"], tally["failed"]), reviews  # fmt: skip
