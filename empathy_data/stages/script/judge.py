"""The script stage's judges, run on every script that passed validation, before any audio is made:
topic drift by sentence embeddings (cheap, first), then an LLM judge that either scores the script against
its spec on five criteria (mode `scores`) or, not shown the plan, picks each exchange's emotion and reply
style from the fixed lists, compared with the plan in code (mode `labels`). A script that fails either is
written again like any rejected one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from empathy_data.config.model import JUDGE_CRITERIA, ScriptJudge, TopicCheck
from empathy_data.core.hashing import digest
from empathy_data.core.labels import EMOTIONS, RESPONSE_STYLES
from empathy_data.planning.prompt_library import PromptLibrary
from empathy_data.records.reasons import Reason
from empathy_data.records.schema import Script
from empathy_data.stages.script.embeddings import E5Embedder, SentenceEmbedder, pack
from empathy_data.stages.script.prompting import MalformedOutput, load_reply, prompt_context, request_tag

MAX_WHY_CHARS = 150
JUDGE_TAG = {"en": "Review. ", "zh": "审核。"}


def judge_schema() -> dict[str, Any]:
    """A 1-5 score per criterion and one line of rationale: on the embedded CPU server every output token
    costs ~40 ms, so a rationale per criterion would triple the judge's time."""
    score = {"type": "integer", "minimum": 1, "maximum": 5}
    return {
        "type": "object",
        "properties": {**{c: score for c in JUDGE_CRITERIA}, "why": {"type": "string", "minLength": 2, "maxLength": MAX_WHY_CHARS}},
        "required": [*JUDGE_CRITERIA, "why"],
        "additionalProperties": False,
    }


def written_exchanges(script: Script) -> list[dict[str, str]]:
    texts = [t.text for t in script.turns]
    return [
        {"user": texts[2 * k], "assistant": texts[2 * k + 1], "reasoning": note}
        for k, note in enumerate(script.reasoning)
    ]


def judge_messages(script: Script, prompts: PromptLibrary, attempt: int, tag: bool = True) -> list[dict[str, str]]:
    spec = script.spec
    context = prompt_context(spec, prompts, written_exchanges(script))
    context["exchanges"] = context["exchanges"][: len(script.reasoning)]  # written by exchange: the plan so far
    prefix = JUDGE_TAG.get(spec.language, JUDGE_TAG["en"]) + request_tag(spec, attempt, len(script.reasoning) - 1) + "\n"
    body = prompts.template("judge", spec.language).render(**context).strip()
    return [{"role": "user", "content": (prefix if tag else "") + body}]


def labels_schema(num_exchanges: int) -> dict[str, Any]:
    pick = {
        "type": "object",
        "properties": {"emotion": {"type": "string", "enum": list(EMOTIONS)}, "style": {"type": "string", "enum": list(RESPONSE_STYLES)}},
        "required": ["emotion", "style"],
        "additionalProperties": False,
    }
    picks = {"type": "array", "items": pick, "minItems": num_exchanges, "maxItems": num_exchanges}
    return {"type": "object", "properties": {"picks": picks}, "required": ["picks"], "additionalProperties": False}


def labels_messages(script: Script, prompts: PromptLibrary, attempt: int, tag: bool = True) -> list[dict[str, str]]:
    """The conversation without its plan, and the two lists to pick from (described in the dialogue's language)."""
    spec = script.spec
    vocabulary = prompts.vocabulary_for(spec.language)
    context = {
        "written": written_exchanges(script),
        "emotions": [(e, vocabulary.emotions[e]) for e in EMOTIONS],
        "styles": [(s, vocabulary.response_styles[s]) for s in RESPONSE_STYLES],
    }
    prefix = JUDGE_TAG.get(spec.language, JUDGE_TAG["en"]) + request_tag(spec, attempt, len(script.reasoning) - 1) + "\n"
    body = prompts.template("judge_labels", spec.language).render(**context).strip()
    return [{"role": "user", "content": (prefix if tag else "") + body}]


def parse_labels(content: str | None, num_exchanges: int) -> list[dict[str, str]]:
    """[{"emotion": ..., "style": ...}] per exchange, or MalformedOutput."""
    data = load_reply(content)
    picks = data.get("picks") if isinstance(data, dict) else None
    if not isinstance(picks, list) or len(picks) != num_exchanges:
        raise MalformedOutput(f"judge reply has no list of {num_exchanges} picks")
    for pick in picks:
        if not isinstance(pick, dict) or pick.get("emotion") not in EMOTIONS or pick.get("style") not in RESPONSE_STYLES:
            raise MalformedOutput("judge reply picks a label outside the lists")
    return [{"emotion": p["emotion"], "style": p["style"]} for p in picks]


def label_mismatches(script: Script, picks: list[dict[str, str]], match: tuple[str, ...]) -> list[str]:
    """Where the judge's picks differ from the plan, for the labels in `match`."""
    found = []
    for k, pick in enumerate(picks):
        planned = {"emotion": script.spec.turns[2 * k].emotion, "style": script.spec.turns[2 * k + 1].response_style}
        found += [f"exchange {k + 1} {label} {pick[label]}, planned {planned[label]}" for label in match if pick[label] != planned[label]]
    return found


def parse_judgement(content: str | None) -> dict[str, Any]:
    """{criterion: 1..5, ..., "why": one line} or MalformedOutput (CutOff included)."""
    data = load_reply(content)
    if not isinstance(data, dict):
        raise MalformedOutput("judge reply is not a JSON object")
    found: dict[str, Any] = {}
    for criterion in JUDGE_CRITERIA:
        score = data.get(criterion)
        if isinstance(score, bool) or not isinstance(score, int | float) or score != int(score) or not 1 <= score <= 5:
            raise MalformedOutput(f"judge reply has no 1-5 score for {criterion}")
        found[criterion] = int(score)
    found["why"] = " ".join(str(data.get("why", "")).split())[:MAX_WHY_CHARS]
    return found


@dataclass
class Review:
    """What the judges made of one script: `reason` None when it passed all of them."""

    reason: Reason | None
    quality: dict[str, Any] = field(default_factory=dict)
    error: Reason | None = None  # the judge's request raised: the dialogue fails (not a verdict on it)
    checks: dict[str, list[int]] = field(default_factory=dict)

    def count(self, check: str, passed: bool) -> None:
        tally = self.checks.setdefault(check, [0, 0])
        tally[0 if passed else 1] += 1


def add_checks(total: dict[str, list[int]], more: dict[str, list[int]]) -> dict[str, list[int]]:
    merged = {k: list(v) for k, v in total.items()}
    for check, (passed, failed) in more.items():
        tally = merged.setdefault(check, [0, 0])
        tally[0] += passed
        tally[1] += failed
    return merged


# (requests, labels) -> replies, as script.stage.complete_many (journaled, infrastructure faults raise)
Complete = Callable[[list, list[dict[str, Any]]], list]


@dataclass
class ScriptJudges:
    prompts: PromptLibrary
    judge: ScriptJudge
    topic: TopicCheck
    chat: Any | None = None  # the judge's ChatBackend (None: judge off)
    min_scores: dict[str, int] = field(default_factory=dict)  # ScriptJudge.thresholds(): criterion -> minimum
    embedder: SentenceEmbedder | E5Embedder | None = None  # None: topic check off and no embeddings kept
    request_tag: bool = True
    label_gate: tuple[str, ...] = ("emotion", "style")  # labels mode: the picks that must match the plan
    # False: the judge records its verdicts (counted as checks, kept in quality) and rejects nothing: a judge
    # whose measured agreement with the labelled cases is below script.judge.min_agreement
    gates: bool = True

    def review(self, scripts: list[Script], attempts: list[int], complete: Complete) -> list[Review]:
        """One Review per script, in order; every model call is one batch over all scripts."""
        reviews = [Review(None) for _ in scripts]
        if self.embedder is not None:
            self._embeddings(scripts, reviews)
        to_judge = [i for i, r in enumerate(reviews) if r.reason is None]
        if self.chat is not None and self.judge.enabled and to_judge:
            judge = self._pick_labels if self.judge.mode == "labels" else self._judge
            judge([scripts[i] for i in to_judge], [attempts[i] for i in to_judge], [reviews[i] for i in to_judge], complete)
        return reviews

    def _embeddings(self, scripts: list[Script], reviews: list[Review]) -> None:
        scenarios = sorted({s.spec.scenario_text for s in scripts})
        user_texts = [" ".join(t.text for t in s.turns if t.role == "user") for s in scripts]
        whole_texts = [" ".join(t.text for t in s.turns) for s in scripts]
        vectors = self.embedder.encode(scenarios + user_texts + whole_texts)
        scenario_of = dict(zip(scenarios, vectors[: len(scenarios)], strict=True))
        n = len(scripts)
        for k, (script, review) in enumerate(zip(scripts, reviews, strict=True)):
            user, whole = vectors[len(scenarios) + k], vectors[len(scenarios) + n + k]
            similarity = round(float(np.dot(scenario_of[script.spec.scenario_text], user)), 4)
            review.quality["topic_similarity"] = similarity
            review.quality["embedding"] = pack(whole)
            minimum = self.topic.minimum(script.spec.language)
            if not self.topic.enabled or minimum is None:
                continue
            passed = similarity >= minimum
            review.count("topic", passed)
            if not passed:
                drift = f"the user's turns drift from the scenario (similarity {similarity:.2f} < {minimum})"
                review.reason = Reason(stage="script", check="topic", detail=drift)

    def _ask(self, scripts: list[Script], attempts: list[int], reviews: list[Review], complete: Complete, kind: str, gates: bool):
        """The judge's request for each script, one batch; yields (script, review, parsed reply) for every reply
        that parses. A request that raised fails its dialogue; a garbled reply is never a pass where `gates`."""
        labels_mode = kind == "labels"
        requests = [
            (
                (labels_messages if labels_mode else judge_messages)(s, self.prompts, a, self.request_tag),
                labels_schema(len(s.reasoning)) if labels_mode else judge_schema(),
                judge_seed(s, a),
            )
            for s, a in zip(scripts, attempts, strict=True)
        ]
        labels = [{"dialogue_id": s.spec.dialogue_id, "attempt": a, "judge": len(s.reasoning)} for s, a in zip(scripts, attempts, strict=True)]
        for script, reply, review in zip(scripts, complete(requests, labels), reviews, strict=True):
            if isinstance(reply, Exception):
                review.error = Reason(stage="llm", check="judge", detail=f"{type(reply).__name__}: {str(reply)[:200]}")
                continue
            try:
                parsed = parse_labels(reply, len(script.reasoning)) if labels_mode else parse_judgement(reply)
            except MalformedOutput as exc:
                review.count("judge_reply", False)
                if gates:
                    review.reason = Reason(stage="script", check="judge", detail=f"malformed: {exc}")
                continue
            review.count("judge_reply", True)
            yield script, review, parsed

    def _pick_labels(self, scripts: list[Script], attempts: list[int], reviews: list[Review], complete: Complete) -> None:
        gates = self.gates and bool(self.label_gate)
        for script, review, picks in self._ask(scripts, attempts, reviews, complete, "labels", gates):
            review.quality["judge_labels"] = picks
            found = {label: label_mismatches(script, picks, (label,)) for label in ("emotion", "style")}
            for label, differ in found.items():
                review.count(f"judge.{label}_match", not differ)
            if not self.label_gate:  # nothing to compare
                continue
            mismatches = [m for label in self.label_gate for m in found[label]]
            review.count("judge", not mismatches)  # the verdict, also where it only records
            if mismatches and gates:
                review.reason = Reason(stage="script", check="judge", detail="; ".join(mismatches))

    def _judge(self, scripts: list[Script], attempts: list[int], reviews: list[Review], complete: Complete) -> None:
        for _, review, found in self._ask(scripts, attempts, reviews, complete, "scores", self.gates and bool(self.min_scores)):
            review.quality["judge"] = found
            low = [c for c in JUDGE_CRITERIA if found[c] < self.min_scores.get(c, 1)]
            for criterion in JUDGE_CRITERIA:
                if criterion in self.min_scores:
                    review.count(f"judge.{criterion}", criterion not in low)
            review.count("judge", not low)  # the verdict, also where it only records
            if low and self.gates:
                scores = ", ".join(f"{c} {found[c]}/5" for c in low)
                review.reason = Reason(stage="script", check="judge", detail=f"{scores} ({found['why']})")


def judge_seed(script: Script, attempt: int) -> int:
    return int(digest(["judge", script.spec.dialogue_id, len(script.reasoning), attempt], 8), 16) % (2**31)
