"""The script judge measured against hand labels before it is trusted: each judge mode runs over the labelled
case set (prompts/judge_cases.yaml: good scripts, and scripts with one criterion deliberately broken), and its
verdicts are compared with the labels.

A build measures its judge once per judge identity (the model, its sampling, the exact requests the cases make
in each mode, the labels) before any script task runs, and keeps the result in its store
(`work/calibration/judge-<key>.json`, read by script tasks on any worker) and in the user's cache, so the next
build with the same judge does not ask again. The judge then runs in the mode that agreed better (`mode: auto`)
and gates only when that agreement reaches `script.judge.min_agreement`; below it records its verdicts.
`empathy-data calibrate CONFIG --judge` prints the same measurement.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from empathy_data.config.model import JUDGE_CRITERIA, ScriptJudge
from empathy_data.core.atomic import atomic_path
from empathy_data.core.errors import ConfigError, EmpathyDataError
from empathy_data.core.hashing import digest
from empathy_data.records.schema import DialogueSpec, Script, ScriptTurn, TurnPlan
from empathy_data.runtime.build import BuildContext
from empathy_data.runtime.per_context import PerContext
from empathy_data.stages.script.judge import Review, ScriptJudges
from empathy_data.stages.script.stage import complete_many
from empathy_data.weights.embedded_models import cache_dir

MODES = ("scores", "labels")
CASES_FILE = "judge_cases.yaml"
VERSION = 1  # of what a judge calibration measures and keeps


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


def rejects(review: Review, mode: str, min_scores: dict[str, int]) -> bool:
    """Whether the judge, gating, would turn the script down: a pick the gate compares that differs from the
    plan (labels; the review was made with that gate), a criterion below its minimum (scores), or no usable
    answer."""
    if mode == "labels":
        return review.quality.get("judge_labels") is None or bool(review.reason and review.reason.check == "judge")
    scores = {c: v for c, v in review.quality.get("judge", {}).items() if c in JUDGE_CRITERIA}
    return not scores or any(scores[c] < minimum for c, minimum in min_scores.items() if c in scores)


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


def case_judges(ctx: BuildContext, chat: Any, mode: str) -> ScriptJudges:
    """The config's judge in `mode`, gating as it would gate in a build (topic check off)."""
    judge = ctx.config.script.judge.model_copy(update={"mode": mode, "enabled": True})
    topic = ctx.config.script.topic.model_copy(update={"enabled": False})
    return ScriptJudges(ctx.prompts, judge, topic, chat, judge.thresholds(), None, ctx.config.script.request_tag,
                        judge.label_gate())  # fmt: skip


def judge_agreement(ctx: BuildContext, chat: Any, mode: str, cases: list[dict[str, Any]]) -> tuple[Agreement, list[Review]]:
    """The judge on `chat` in `mode` over the cases, one request per case, against their labels."""
    judges = case_judges(ctx, chat, mode)
    scripts = [case_script(case, i, ctx) for i, case in enumerate(cases)]
    in_flight = ctx.config.script.max_in_flight
    reviews = judges.review(scripts, [0] * len(scripts), lambda requests, labels: complete_many(chat, requests, in_flight))
    tally: Counter[str] = Counter()
    for case, review in zip(cases, reviews, strict=True):
        bad = case["label"] == "bad"
        turned_down = review.error is not None or rejects(review, mode, judges.min_scores)
        tally["agree"] += turned_down == bad and review.error is None
        tally["bad" if bad else "good"] += 1
        tally["bad_caught" if bad else "good_passed"] += (turned_down == bad) and review.error is None
        tally["failed"] += review.error is not None
    return Agreement(mode, len(cases), tally["agree"], tally["bad_caught"], tally["bad"], tally["good_passed"],
                     tally["good"], tally["failed"]), reviews  # fmt: skip


# --- a build's judge, measured once per identity ---


@dataclass(frozen=True)
class JudgeGate:
    """How a build's judge runs: its mode, its verdicts' thresholds, and whether they reject (else recorded)."""

    mode: str
    gates: bool
    min_scores: dict[str, int] = field(default_factory=dict)
    match: tuple[str, ...] = ()
    agreements: tuple[dict[str, Any], ...] = ()  # each measured mode's Agreement.to_dict(); empty: not measured


def judge_gate(ctx: BuildContext, chat: Any | None) -> JudgeGate:
    """The gate of the build's judge: as configured when it is not measured, else from its calibration
    (measured now through `chat` when neither the store nor the user's cache holds it)."""
    judge = ctx.config.script.judge
    if not judge.calibrated:
        return JudgeGate(judge.modes()[0], True, judge.thresholds(), judge.label_gate())
    agreements = ensure_judge_calibration(ctx, chat)
    return gate_from(judge, agreements)


def gate_from(judge: ScriptJudge, agreements: list[dict[str, Any]]) -> JudgeGate:
    # the better-agreeing mode of those the judge may run in; on a tie the closed-set picks, whose few output
    # tokens cost less
    measured = [a for a in agreements if a["mode"] in judge.modes()] or agreements
    best = max(measured, key=lambda a: (a["agree"] / a["cases"], a["mode"] == "labels"))
    gates = best["agree"] / best["cases"] >= (judge.min_agreement or 0.0)  # measure() kept no failed request
    return JudgeGate(best["mode"], gates, judge.thresholds(), judge.label_gate(), tuple(agreements))


def calibration_identity(ctx: BuildContext, cases: list[dict[str, Any]]) -> dict[str, Any]:
    """Everything the agreements depend on: the judge's model and sampling, the exact request each case makes
    in each measured mode (prompts, personas, schema, seed), and the labels."""
    from empathy_data.backends import registry

    script = ctx.config.script
    judge = script.judge
    served = registry.judge_server(script) or script
    model = {"model": getattr(served, "model", None), **registry.declared("llm", served).key(served)}
    requests = {mode: digest(dry_requests(ctx, mode, cases)) for mode in judge.modes()}
    gate = {"min_scores": judge.thresholds(), "match": list(judge.label_gate())}
    labels = [[c["id"], c["label"]] for c in cases]
    sampling = {"temperature": judge.temperature, "max_tokens": judge.max_tokens}
    return {"version": VERSION, "model": model, "sampling": sampling, "requests": requests, "gate": gate, "labels": labels}


def weights_known(script) -> bool:
    """Whether the judge's identity names its weights (the embedded GGUF's sha256, an in-process vLLM model's
    fingerprint): only then may the user's cache serve other builds. A server is known only by the model name
    it serves, which two servers may share."""
    from empathy_data.backends import registry

    return registry.judge_server(script) is None and (script.backend == "vllm" or script.base_url is None)


def dry_requests(ctx: BuildContext, mode: str, cases: list[dict[str, Any]]) -> list:
    """The requests the cases make in `mode`, rendered and not sent."""
    made: list = []

    def record(requests, labels):
        made.extend(requests)
        return [RuntimeError("not sent")] * len(requests)

    scripts = [case_script(c, i, ctx) for i, c in enumerate(cases)]
    case_judges(ctx, "not sent", mode).review(scripts, [0] * len(scripts), record)
    return made


def ensure_judge_calibration(ctx: BuildContext, chat: Any | None, in_store: bool = True) -> list[dict[str, Any]]:
    """Each measured mode's agreement: from the build's store, else the user's cache, else measured through
    `chat` now. Found once per context (every script chunk asks)."""
    return _found.get(ctx, lambda: _find_or_measure(ctx, chat, in_store), in_store)


class NotCalibrated(RuntimeError):
    pass


class JudgeCalibrationFailed(EmpathyDataError):
    pass


_found = PerContext()


def store_key(identity: dict[str, Any]) -> str:
    return f"work/calibration/judge-{digest(identity, 16)}.json"


def _find_or_measure(ctx: BuildContext, chat: Any | None, in_store: bool) -> list[dict[str, Any]]:
    cases = load_cases(ctx)
    identity = calibration_identity(ctx, cases)
    key = store_key(identity)
    if in_store and ctx.store.exists(key):
        return ctx.store.read_json(key)["agreements"]
    cached = cache_dir() / "calibration" / Path(key).name
    if cached.is_file():
        found = json.loads(cached.read_text())
    else:
        if chat is None:
            raise NotCalibrated(f"the script judge is not calibrated yet ({key}) and no judge server was given")
        found = {"identity": identity, "agreements": measure(ctx, chat, cases)}
        if weights_known(ctx.config.script):
            cached.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(cached) as tmp:
                tmp.write_text(json.dumps(found, indent=1))
    if in_store:
        # Script tasks on several workers may each measure an in-process vLLM judge: the first stored
        # measurement is the one every task (and the manifest) uses.
        if not ctx.store.exists(key):
            ctx.store.write_json(key, found)
        return ctx.store.read_json(key)["agreements"]
    return found["agreements"]


def measure(ctx: BuildContext, chat: Any, cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each mode the judge may run in, over the cases. A request that failed fails the measurement (an
    agreement with requests missing would decide the gate on fewer cases)."""
    measured = []
    for mode in ctx.config.script.judge.modes():
        agreement, reviews = judge_agreement(ctx, chat, mode, cases)
        if agreement.failed:
            first = next(r.error for r in reviews if r.error is not None)
            raise JudgeCalibrationFailed(
                f"script judge calibration: {agreement.failed} of {agreement.cases} labelled cases got no reply in "
                f"mode {mode} (first: {first.detail}); nothing was kept, re-run to measure it again"
            )
        measured.append(agreement.to_dict())
    return measured


def summary(ctx: BuildContext) -> dict[str, Any]:
    """What the manifest, card and report show: each measured mode's agreement, the mode the judge ran in and
    whether it gated. Read from the build's store only (export needs no judge server); empty when the judge is
    not measured."""
    judge = ctx.config.script.judge
    if not judge.calibrated:
        return {}
    agreements = _found.known(ctx, True)
    if agreements is None:  # a run that wrote no script (resumed at export): what the build's store holds, if anything
        key = store_key(calibration_identity(ctx, load_cases(ctx)))
        if not ctx.store.exists(key):
            return {}
        agreements = ctx.store.read_json(key)["agreements"]
    gate = gate_from(judge, agreements)
    return {"agreements": agreements, "mode": gate.mode, "gates": gate.gates, "min_agreement": judge.min_agreement}
