"""The script judge against the hand-labelled cases: each mode's verdicts compared with the labels, so a
judge that cannot tell good from bad scripts shows it before it gates."""

from __future__ import annotations

import json

from empathy_data.core.labels import EMOTIONS
from empathy_data.runtime.judge_calibration import judge_agreement, load_cases
from tests.helpers import make_context


class LabelledJudge:
    """Knows each case's label: in labels mode it picks the plan for good cases and another emotion for bad
    ones (a perfect judge); in scores mode it gives every criterion 5 (a judge that passes everything)."""

    def __init__(self, cases):
        self.by_text = {case["exchanges"][0]["user"]: case for case in cases}
        self.calls = 0

    @property
    def identity(self) -> dict:
        return {"backend": "fake", "model": "fake"}

    def complete(self, messages, schema, seed):
        self.calls += 1
        case = next(c for text, c in self.by_text.items() if text in messages[-1]["content"])
        if "picks" in schema["properties"]:
            picks = []
            for ex in case["exchanges"]:
                emotion = ex["user_emotion"]
                if case["label"] == "bad":
                    emotion = next(e for e in EMOTIONS if e != emotion)
                picks.append({"emotion": emotion, "style": ex["response_style"]})
            return json.dumps({"picks": picks})
        return json.dumps({"emotion": 5, "style": 5, "topic": 5, "reasoning": 5, "naturalness": 5, "why": "fine"})


def test_each_mode_is_measured_against_the_labels(tmp_path):
    ctx = make_context(tmp_path, languages={"en": 0.5, "zh": 0.5}, script={"judge": {"enabled": True}})
    cases = load_cases(ctx)
    assert len(cases) == 24 and {c["language"] for c in cases} == {"en", "zh"}
    chat = LabelledJudge(cases)
    labels, _ = judge_agreement(ctx, chat, "labels", cases)
    scores, _ = judge_agreement(ctx, chat, "scores", cases)
    assert chat.calls == 48  # one request per case and mode
    assert (labels.agree, labels.bad_caught, labels.good_passed) == (24, 12, 12) and labels.share == 1.0
    assert (scores.agree, scores.bad_caught, scores.good_passed) == (12, 0, 12)  # passes every bad script too


def test_only_the_builds_languages_are_measured(tmp_path):
    ctx = make_context(tmp_path, script={"judge": {"enabled": True}})
    assert {c["language"] for c in load_cases(ctx)} == {"en"} and len(load_cases(ctx)) == 16
