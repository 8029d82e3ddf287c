"""The script judge against the hand-labelled cases: each mode's verdicts compared with the labels, so a
judge that cannot tell good from bad scripts shows it before it gates."""

from __future__ import annotations

import json

import pytest

from empathy_data.config.model import JUDGE_CRITERIA
from empathy_data.core.labels import EMOTIONS
from empathy_data.runtime.build import script_judges
from empathy_data.runtime.judge_calibration import (
    JudgeCalibrationFailed,
    case_script,
    judge_agreement,
    judge_gate,
    load_cases,
    summary,
)
from tests.helpers import make_context

GATE = dict.fromkeys(JUDGE_CRITERIA, 2)


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


def test_a_build_measures_its_judge_once_per_identity_and_reuses_it(tmp_path, monkeypatch):
    monkeypatch.setenv("EMPATHY_DATA_CACHE", str(tmp_path / "cache"))
    judge = {"enabled": True, "min_agreement": 0.75}
    ctx = make_context(tmp_path, script={"judge": judge})
    chat = LabelledJudge(load_cases(ctx))
    gate = judge_gate(ctx, chat)
    assert chat.calls == 32  # 16 English cases, both modes
    assert [(a["mode"], a["agree"]) for a in gate.agreements] == [("scores", 8), ("labels", 16)]
    assert (gate.mode, gate.gates, gate.match, gate.min_scores) == ("labels", True, ("emotion", "style"), GATE)
    assert judge_gate(ctx, chat) == gate and chat.calls == 32
    assert len(list((tmp_path / "out" / "work" / "calibration").glob("judge-*.json"))) == 1  # for the script tasks
    other = make_context(tmp_path / "other", script={"judge": judge})  # another build, the same judge
    assert judge_gate(other, chat) == gate and chat.calls == 32  # from the user's cache
    assert summary(other) == {"agreements": list(gate.agreements), "mode": "labels", "gates": True, "min_agreement": 0.75}
    warmer = make_context(tmp_path / "warmer", script={"judge": {**judge, "temperature": 0.3}})
    judge_gate(warmer, chat)
    assert chat.calls == 64  # another judge identity: measured again
    scores_only = make_context(tmp_path / "scores", script={"judge": {**judge, "mode": "scores"}})
    assert judge_gate(scores_only, chat).gates is False and chat.calls == 80  # 8/16 < 0.75
    script = make_context(tmp_path / "s", script={"judge": {**judge, "mode": "scores"}}).layout.keys["script"][0][0]
    assert script == scores_only.layout.keys["script"][0][0]
    assert script != make_context(tmp_path / "t", script={"judge": {**judge, "min_agreement": 0.5, "mode": "scores"}}).layout.keys["script"][0][0]


class RejectsEverything:
    """A judge that scores every script 1 and never answers the closed-set question: it agrees with the labels
    only on the broken cases (8 of 16)."""

    identity = {"backend": "fake", "model": "harsh"}

    def __init__(self):
        self.calls = 0

    def with_sampling(self, **settings):
        return self

    def complete(self, messages, schema, seed):
        self.calls += 1
        return json.dumps({"emotion": 1, "style": 1, "topic": 1, "reasoning": 1, "naturalness": 1, "why": "bad"})


def test_a_judge_below_min_agreement_records_its_verdicts_and_rejects_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("EMPATHY_DATA_CACHE", str(tmp_path / "cache"))
    ctx = make_context(tmp_path, script={"judge": {"enabled": True, "min_agreement": 0.75}})
    chat = RejectsEverything()
    judges = script_judges(ctx, chat)
    assert chat.calls == 32 and judges.gates is False and judges.label_gate == ("emotion", "style")
    assert judges.judge.mode == "labels"  # a tie at 8/16: the cheaper closed-set picks run, recording
    scripts = [case_script(case, i, ctx) for i, case in enumerate(load_cases(ctx)[:2])]
    reviews = judges.review(scripts, [0, 0], lambda requests, labels: [chat.complete(*r) for r in requests])
    assert all(r.reason is None for r in reviews)  # recorded (the malformed picks counted), not rejected
    assert all(r.checks["judge_reply"] == [0, 1] for r in reviews)
    # in scores mode the verdicts it would have given are counted (the card's pass rates), none rejects
    scoring = make_context(tmp_path / "s", script={"judge": {"enabled": True, "min_agreement": 0.75, "mode": "scores"}})
    judges = script_judges(scoring, chat)
    reviews = judges.review(scripts, [0, 0], lambda requests, labels: [chat.complete(*r) for r in requests])
    assert all(r.reason is None and r.checks["judge"] == [0, 1] for r in reviews)
    assert all(r.quality["judge"]["emotion"] == 1 for r in reviews)
    unmeasured = make_context(tmp_path / "b", script={"judge": {"enabled": True, "min_agreement": None}})
    judges = script_judges(unmeasured, chat)
    assert judges.min_scores == GATE and judges.gates and chat.calls == 52  # gates as set, not measured


def test_a_case_request_without_a_reply_fails_the_measurement_and_keeps_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("EMPATHY_DATA_CACHE", str(tmp_path / "cache"))
    ctx = make_context(tmp_path, script={"judge": {"enabled": True, "min_agreement": 0.0}, "max_in_flight": 1})
    cases = load_cases(ctx)

    class Garbled(LabelledJudge):
        def complete(self, messages, schema, seed):
            if self.calls == 20:  # a closed-set request
                self.calls += 1
                raise ValueError("the server sent nonsense")
            return super().complete(messages, schema, seed)

    with pytest.raises(JudgeCalibrationFailed, match=r"1 of 16 labelled cases got no reply in mode labels .*nonsense.*re-run"):
        judge_gate(ctx, Garbled(cases))
    assert not (tmp_path / "cache" / "models" / "calibration").exists()
    assert not (tmp_path / "out" / "work" / "calibration").exists()
    again = make_context(tmp_path, script={"judge": {"enabled": True, "min_agreement": 0.0}, "max_in_flight": 1})
    assert judge_gate(again, LabelledJudge(cases)).gates  # the re-run measures again


def test_a_judge_on_a_server_is_measured_once_per_build_not_shared_through_the_users_cache(tmp_path, monkeypatch):
    """Two servers may serve different models under one name: only a judge whose identity names its weights
    (the embedded models) is kept in the user's cache."""
    monkeypatch.setenv("EMPATHY_DATA_CACHE", str(tmp_path / "cache"))
    served = {"enabled": True, "min_agreement": 0.75, "base_url": "http://127.0.0.1:9/v1", "model": "judge-7b"}
    ctx = make_context(tmp_path, script={"judge": served})
    chat = LabelledJudge(load_cases(ctx))
    assert judge_gate(ctx, chat).gates and chat.calls == 32
    assert not (tmp_path / "cache" / "models" / "calibration").exists()
    assert len(list((tmp_path / "out" / "work" / "calibration").glob("judge-*.json"))) == 1
    other = make_context(tmp_path / "other", script={"judge": served})
    judge_gate(other, chat)
    assert chat.calls == 64  # another build's output: measured again
    assert summary(make_context(tmp_path / "third", script={"judge": served})) == {}  # export reads the store only


def test_the_card_shows_each_modes_agreement_and_whether_the_judge_gated(tmp_path):
    from empathy_data.records.manifest import Manifest
    from empathy_data.stages.export.card import dataset_card
    from tests.corpus_builder import make_corpus

    manifest = Manifest.parse((make_corpus(tmp_path) / "manifest.json").read_text(), "manifest.json")
    manifest = manifest.model_copy(update={"config": make_context(tmp_path).config.model_dump(mode="json")})
    card = dataset_card(manifest)
    section = card[card.index("## Script judge calibration"):]
    assert "It ran in mode `labels` and recorded its verdicts and rejected nothing (below 0.75)." in section
    assert "| scores | 8/16 (50%) | 8/8 | 0/8 | 0 |" in section and "| labels | 9/16 (56%) | 6/8 | 3/8 | 0 |" in section
    empty = Manifest.model_validate({**json.loads(manifest.model_dump_json()), "judge_calibration": {}})
    assert "Script judge calibration" not in dataset_card(empty)
