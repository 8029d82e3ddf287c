"""Top-up (`rebalance`): extra dialogues go to the labels the filter thinned, planned from the verdicts
alone, resumable, and the card reports the gap that is left."""

import json
import re
import threading
from collections import Counter
from contextlib import nullcontext

import numpy as np
import pytest
import yaml

from empathy_data.flows import build as flow
from empathy_data.planning.plan import Cell
from empathy_data.planning.targets import target_shares
from empathy_data.planning.topup import gaps, plan_extras, worst_gap
from empathy_data.runtime.build import accepted_so_far
from empathy_data.tools.verify import verify_corpus
from tests.helpers import make_context

TARGET = {
    "language": {"en": 1.0},
    "user_emotion": {"happy": 0.5, "sad": 0.5},
    "user_gender": {"female": 0.5, "male": 0.5},
}
CANDIDATES = [Cell("en", g, "adult", e, 1) for g in ("female", "male") for e in ("happy", "sad")]


def achieved(emotions: dict[str, float], genders: dict[str, float]) -> dict:
    return {"language": {"en": sum(emotions.values())}, "user_emotion": emotions, "user_gender": genders}


def test_extras_go_to_the_values_that_lost_most_until_the_shares_meet_the_target():
    got = achieved({"happy": 6, "sad": 2}, {"female": 4, "male": 4})
    extras = plan_extras(TARGET, got, CANDIDATES, budget=10, tolerance=0.01)
    assert [c.emotion for c in extras] == ["sad"] * 4
    assert Counter(c.gender for c in extras) == {"female": 2, "male": 2}  # the balanced label stays balanced
    after = achieved({"happy": 6, "sad": 6}, {"female": 6, "male": 6})
    assert worst_gap(TARGET, after) == 0


def test_the_budget_caps_the_extras_and_the_remaining_gap_is_reported():
    got = achieved({"happy": 6, "sad": 2}, {"female": 4, "male": 4})
    extras = plan_extras(TARGET, got, CANDIDATES, budget=2, tolerance=0.01)
    assert len(extras) == 2 and {c.emotion for c in extras} == {"sad"}
    assert gaps(TARGET, achieved({"happy": 6, "sad": 4}, {"female": 5, "male": 5}))["user_emotion"] == {
        "happy": 0.1,
        "sad": -0.1,
    }


def test_nothing_is_planned_within_the_tolerance_or_when_no_cell_can_help():
    assert plan_extras(TARGET, achieved({"happy": 5, "sad": 5}, {"female": 5, "male": 5}), CANDIDATES, 10, 0.02) == []
    # sad is missing, but no candidate cell serves it: spending the budget elsewhere would not help
    only_happy = [c for c in CANDIDATES if c.emotion == "happy"]
    assert plan_extras(TARGET, achieved({"happy": 6, "sad": 0}, {"female": 3, "male": 3}), only_happy, 10, 0.01) == []


def test_an_extra_spec_is_a_pure_function_of_seed_index_and_cell(tmp_path):
    ctx = make_context(tmp_path, distributions={"user_emotion": {"sad": 0.5, "happy": 0.5}})
    cell = Cell("en", "male", "adult", "sad", 2)
    spec = ctx.planner.extra_spec(10, cell)
    again = make_context(tmp_path, distributions={"user_emotion": {"sad": 0.5, "happy": 0.5}}).planner.extra_spec(10, cell)
    assert spec == again
    assert Cell.of(spec) == cell and spec.index == 10 and spec.dialogue_id == ctx.planner.dialogue_id(10)
    assert "sad" in ctx.prompts.scenario_emotions["en"][spec.scenario]
    assert cell in ctx.planner.candidate_cells()


class TextTaggedTTS:
    """Renders text k (in order of first sight) as a tone of 16000 + 16k samples, so the fake ASR below
    can tell which text it hears from the length alone."""

    sample_rate = 16000

    def __init__(self):
        self.texts: list[str] = []
        self.lock = threading.Lock()

    @property
    def identity(self):
        return {"backend": "tagged-tone"}

    def synthesize(self, requests):
        audios = []
        for request in requests:
            with self.lock:
                if request.text not in self.texts:
                    self.texts.append(request.text)
                k = self.texts.index(request.text)
            t = np.arange(16000 + 16 * k) / 16000
            audios.append((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32))
        return audios


class LengthASR:
    """Hears each tone as the text it was rendered from, except texts with 'mumble' (heard as noise)."""

    def __init__(self, tts: TextTaggedTTS):
        self.tts = tts

    @property
    def identity(self):
        return {"backend": "length-asr"}

    def transcribe(self, audios, languages):
        heard = [self.tts.texts[(len(a) - 16000) // 16] for a in audios]
        return ["static noise only" if "mumble" in text else text for text in heard]


def warm_reply(schema: dict, feeling, tag: str) -> str:
    """A reply of as many exchanges as the schema asks for; exchange i's user says 'I feel <feeling(i)>.'"""
    exchanges = [
        {
            "user": f"I feel {feeling(i)}.",
            "reasoning": "The user sounds moved by what happened, so a warm reply that listens fits.",
            "assistant": f"Thank you for telling me about it, I am here with you {tag} {i}.",
        }
        for i in range(schema["properties"]["exchanges"]["minItems"])
    ]
    return json.dumps({"exchanges": exchanges})


class SadLosesChat:
    """Writes every dialogue the plan opened sad as 'mumble' (the ASR loses it); top-up extras clean."""

    def __init__(self, ctx):
        self.sad = {s.dialogue_id for s in (ctx.planner.spec(i) for i in range(ctx.config.num_dialogues))
                    if s.turns[0].emotion == "sad"}  # fmt: skip
        self.calls: list[str] = []

    identity = {"backend": "fake", "model": "fake"}

    def check_reachable(self):
        pass

    def complete(self, messages, schema, seed):
        dialogue_id = re.search(r"Conversation (\S+), draft", messages[0]["content"]).group(1)
        self.calls.append(dialogue_id)
        word = "mumble" if dialogue_id in self.sad else "today"
        return warm_reply(schema, lambda i: f"{word} about what happened to me with {dialogue_id} turn {i}", dialogue_id)


@pytest.fixture
def topup_config(tmp_path):
    config = {
        "name": "topup",
        "seed": 5,
        "num_dialogues": 6,
        "chunk_size": 3,
        "output": str(tmp_path / "out"),
        "distributions": {"user_emotion": {"happy": 0.5, "sad": 0.5}, "exchanges": {1: 1.0}},
        "synthesize": {"sample_rate": 16000, "tts": {"backend": "espeak", "neutral_reference": False}},
        # the fake chat writes scripts only, and tells dialogues apart by the request tag
        "script": {"judge": {"enabled": False}, "topic": {"enabled": False}, "request_tag": True},
        "filter": {"thresholds": {"check_emotion": False}, "speaker": {"enabled": False}},
        "export": {"near_duplicate_threshold": None, "report": False},
        "rebalance": {"tolerance": 0.02, "max_extra": 0.5, "passes": 2},
        "runner": {"kind": "thread", "max_workers": 2},
    }
    path = tmp_path / "topup.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def fake_backends(monkeypatch, ctx):
    chat, tts = SadLosesChat(ctx), TextTaggedTTS()
    monkeypatch.setattr(flow, "llm_endpoint", lambda ctx: nullcontext("http://127.0.0.1:9/v1"))
    monkeypatch.setattr(flow.backends, "chat_backend", lambda *a: chat)
    monkeypatch.setattr(flow.backends, "tts_backend", lambda *a: tts)
    monkeypatch.setattr(flow.backends, "asr_backend", lambda *a: LengthASR(tts))
    monkeypatch.setattr(flow.backends, "emotion_backend", lambda *a: None)
    return chat


def test_topup_builds_extras_for_the_thinned_label_and_a_rerun_redoes_nothing(topup_config, monkeypatch):
    from empathy_data.runtime.build import BuildContext

    ctx = BuildContext.load(topup_config)
    chat = fake_backends(monkeypatch, ctx)
    manifest = flow.run_build(str(topup_config), {}).to_json()
    out = ctx.out

    # 3 of 6 planned dialogues opened sad and were lost; the budget (0.5 x 6) buys 3 sad extras in pass 1
    extras = json.loads((out / "work" / "topup" / "pass-1.json").read_text())["extras"]
    assert [e[0] for e in extras] == [6, 7, 8] and {e[4] for e in extras} == {"sad"}
    assert not (out / "work" / "topup" / "pass-2.json").exists()  # budget spent
    counts = manifest["counts"]
    assert counts["topup"] == {"passes": 1, "dialogues": 3, "budget": 3}
    assert counts["dialogues"] == {"planned": 9, "accepted": 6, "rejected": 3, "failed": 0}
    assert manifest["distributions"]["achieved"]["user_emotion"] == {"happy": 0.5, "sad": 0.5}
    assert manifest["distributions"]["gap"]["user_emotion"] == {"happy": 0.0, "sad": 0.0}
    assert verify_corpus(out)["rows"] == 6
    card = (out / "README.md").read_text()
    assert "Top-up (`rebalance`): 3 extra dialogue(s) in 1 pass(es), budget 3" in card
    assert "| sad | 50.0% | 4.5 | 6 | 3 | 50.0% | +0.0 |" in card
    assert len(chat.calls) == 9

    # resume: the same command plans the same pass and finds every chunk done
    flow.forget_contexts()
    chat = fake_backends(monkeypatch, BuildContext.load(topup_config))
    again = flow.run_build(str(topup_config), {}).to_json()
    assert chat.calls == []
    assert again["shards"] == manifest["shards"]


def test_without_rebalance_nothing_is_topped_up_and_the_gap_is_still_reported(topup_config, monkeypatch):
    from empathy_data.runtime.build import BuildContext

    data = yaml.safe_load(topup_config.read_text())
    data.pop("rebalance")
    topup_config.write_text(yaml.safe_dump(data))
    flow.forget_contexts()
    fake_backends(monkeypatch, BuildContext.load(topup_config))
    manifest = flow.run_build(str(topup_config), {}).to_json()
    assert manifest["counts"]["topup"] == {"passes": 0, "dialogues": 0, "budget": 0}
    assert manifest["distributions"]["gap"]["user_emotion"] == {"happy": 0.5, "sad": -0.5}
    assert target_shares(BuildContext.load(topup_config).config)["user_emotion"] == {"happy": 0.5, "sad": 0.5}


class FirstExchangeMumbles:
    identity = {"backend": "fake", "model": "fake"}

    def complete(self, messages, schema, seed):
        return warm_reply(schema, lambda i: f"{'mumble' if i == 0 else 'today'} about what happened at work turn {i}", "part")


@pytest.mark.parametrize("unclean_history", ["reject", "keep"])
def test_accepted_so_far_counts_what_export_keeps(tmp_path, unclean_history):
    from tests.test_regenerate import build

    ctx = make_context(
        tmp_path, num_dialogues=2, chunk_size=2, distributions={"exchanges": {2: 1.0}},
        synthesize={"sample_rate": 16000, "tts": {"backend": "espeak", "neutral_reference": False}},
        filter={"thresholds": {"check_emotion": False}},
        export={"near_duplicate_threshold": None, "unclean_history": unclean_history, "report": False},
    )  # fmt: skip
    manifest = build(ctx, FirstExchangeMumbles())
    # exchange 1 of each dialogue passes the filter after a rejected exchange 0
    expected = 0.0 if unclean_history == "reject" else 1.0  # two dialogues x half a dialogue each
    assert sum(accepted_so_far(ctx)["language"].values()) == expected
    assert sum(manifest["distributions"]["achieved_dialogues"].get("language", {}).values()) == expected


class SameScriptChat:
    identity = {"backend": "fake", "model": "fake"}

    def complete(self, messages, schema, seed):
        return warm_reply(schema, lambda i: f"sad about losing the keys to my old flat again, turn {i}", "same")


def test_a_near_duplicate_does_not_count_as_accepted_for_top_up(tmp_path):
    from tests.test_regenerate import build

    ctx = make_context(
        tmp_path, num_dialogues=2, chunk_size=2, distributions={"exchanges": {1: 1.0}},
        synthesize={"sample_rate": 16000, "tts": {"backend": "espeak", "neutral_reference": False}},
        filter={"thresholds": {"check_emotion": False}},
        export={"near_duplicate_threshold": 0.8, "report": False},
    )  # fmt: skip
    manifest = build(ctx, SameScriptChat())
    assert manifest["counts"]["exchanges"]["accepted"] == 1  # the second dialogue repeats the first
    assert sum(accepted_so_far(ctx)["language"].values()) == 1.0
