"""The script stage's judges: the LLM judge (with a scripted fake server here; the embedded one runs in
the e2e build), the topic check (the real embedded sentence-embedding model), the note and turn checks,
and what the card and the stage key make of them."""

import json

import numpy as np
import pytest

from empathy_data.config.model import ValidationRules, parse_config
from empathy_data.core.errors import ConfigError
from empathy_data.records.schema import Script, ScriptTurn
from empathy_data.runtime.build import BuildContext, script_judges
from empathy_data.stages.export.diversity import SemanticDuplicates
from empathy_data.stages.script.embeddings import pack, unpack
from empathy_data.stages.script.journal import ReplyJournal
from empathy_data.stages.script.judge import judge_schema, parse_judgement
from empathy_data.stages.script.prompting import MalformedOutput
from empathy_data.stages.script.stage import ScriptRun, write_scripts
from empathy_data.stages.script.validate import validate_script
from tests.helpers import REPO, check_text, good_reply, make_context

RULES = ValidationRules()
GATE = {c: 2 for c in ("emotion", "style", "topic", "reasoning", "naturalness")}
JUDGES_ON = {"judge": {"enabled": True, "min_scores": GATE}, "topic": {"enabled": False}}


def judgement(**low: int) -> str:
    why = f"{', '.join(low)} looks wrong" if low else "all fine"
    return json.dumps({**{c: low.get(c, 5) for c in judge_schema()["required"] if c != "why"}, "why": why})


class JudgedChat:
    """A fake server: script requests get a good script, judge requests the queued judgements (the last
    one repeats). Records every request; `with_sampling` is the judge's view of the same server."""

    def __init__(self, judgements: list[str]):
        self.judgements = list(judgements)
        self.calls: list[dict] = []
        self.sampling: dict = {}

    @property
    def identity(self) -> dict:
        return {"backend": "fake", **self.sampling}

    def with_sampling(self, **settings):
        view = type(self)(self.judgements)
        view.calls, view.sampling = self.calls, settings
        return view

    def complete(self, messages, schema, seed):
        self.calls.append({"messages": messages, "schema": schema, "seed": seed, "judge": "exchanges" not in schema["properties"]})
        if "exchanges" in schema["properties"]:
            written = sum(not c["judge"] for c in self.calls)  # a new text each time: no repeated exchange
            word = ["", " again", " still", " honestly", " truly", " now", " too"][written % 7]
            reply = good_reply(schema["properties"]["exchanges"]["minItems"])
            return reply.replace("awful today", f"awful today{word}").replace("hard for you", f"hard for you{word}")
        return self.judgements.pop(0) if len(self.judgements) > 1 else self.judgements[0]


def write(ctx: BuildContext, chat: JudgedChat, journal=None, write_by="dialogue"):
    specs = [ctx.planner.spec(0)]
    cfg = ctx.config.script
    return write_scripts(specs, ScriptRun(chat, ctx.prompts, cfg.validation, max_attempts=3, max_in_flight=1, write_by=write_by, journal=journal, judges=script_judges(ctx, chat)))  # fmt: skip


def test_a_script_the_judge_scores_low_is_written_again_and_the_scores_are_kept(tmp_path):
    ctx = make_context(tmp_path, script=JUDGES_ON)
    chat = JudgedChat([judgement(emotion=1), judgement(naturalness=2)])
    scripts, outcomes = write(ctx, chat)
    assert outcomes == [] and len(scripts) == 1
    script = scripts[0]
    assert script.llm["attempt"] == 1  # the first draft was judged below the threshold and written again
    assert script.quality["judge"]["emotion"] == 5 and script.quality["judge"]["why"] == "naturalness looks wrong"
    assert script.quality["judge"]["naturalness"] == 2  # at the threshold (2): passes
    assert script.checks["judge"] == [1, 1] and script.checks["judge.emotion"] == [1, 1]
    assert script.checks["judge.style"] == [2, 0] and script.checks["validation"] == [2, 0]
    judged = [c for c in chat.calls if c["judge"]]
    assert len(judged) == 2
    prompt = judged[0]["messages"][-1]["content"]
    spec = ctx.planner.spec(0)
    assert spec.scenario_text in prompt and "I feel really awful today" in prompt  # the plan and the turns


def test_a_script_the_judge_always_fails_ends_rejected_with_the_judges_reasons(tmp_path):
    ctx = make_context(tmp_path, script=JUDGES_ON)
    scripts, outcomes = write(ctx, JudgedChat([judgement(reasoning=1)]))
    assert scripts == [] and outcomes[0].verdict == "rejected"
    assert len(outcomes[0].reasons) == 3
    assert all(str(r) == "script: judge: reasoning 1/5 (reasoning looks wrong)" for r in outcomes[0].reasons)
    assert outcomes[0].checks["judge"] == [0, 3]


def test_a_malformed_judgement_is_asked_again_not_taken_as_a_pass(tmp_path):
    ctx = make_context(tmp_path, script=JUDGES_ON)
    scripts, outcomes = write(ctx, JudgedChat(['{"emotion": 3, "why": "ok"}', judgement()]))
    assert outcomes == [] and scripts[0].llm["attempt"] == 1
    assert scripts[0].checks["judge_reply"] == [1, 1]


def test_thresholds_come_from_config(tmp_path):
    strict = {"judge": {"enabled": True, "min_scores": {"naturalness": 5}}, "topic": {"enabled": False}}
    ctx = make_context(tmp_path, script=strict)
    scripts, outcomes = write(ctx, JudgedChat([judgement(naturalness=4)]))
    assert scripts == [] and "naturalness 4/5" in str(outcomes[0].reasons[0])
    lenient = make_context(tmp_path / "b", script={"judge": {"enabled": True, "min_scores": {}}, "topic": {"enabled": False}})
    scripts, _ = write(lenient, JudgedChat([judgement(emotion=1, style=1)]))
    assert len(scripts) == 1 and "judge.emotion" not in scripts[0].checks


def test_exchange_by_exchange_judges_each_exchange_with_the_ones_before_it(tmp_path):
    ctx = make_context(tmp_path, script=JUDGES_ON, distributions={"exchanges": {2: 1.0}})
    chat = JudgedChat([judgement(), judgement(topic=1), judgement()])
    scripts, outcomes = write(ctx, chat, write_by="exchange")
    assert outcomes == [] and scripts[0].llm["attempt"] == [0, 1]  # only exchange 2 was written again
    judged = [c for c in chat.calls if c["judge"]]
    assert len(judged) == 3
    assert "Note on exchange 2" in judged[-1]["messages"][-1]["content"]


def test_judge_replies_are_journaled_and_replayed(tmp_path):
    ctx = make_context(tmp_path, script=JUDGES_ON)
    first = JudgedChat([judgement(emotion=1), judgement()])
    scripts, _ = write(ctx, first, ReplyJournal(tmp_path / "j.jsonl"))
    again = JudgedChat([judgement(style=1)])  # would reject everything if it were asked
    replayed, outcomes = write(ctx, again, ReplyJournal(tmp_path / "j.jsonl"))
    assert again.calls == [] and outcomes == [] and replayed == scripts


def test_the_judge_uses_its_own_sampling_and_seeds(tmp_path):
    judge = {"enabled": True, "temperature": 0.0, "max_tokens": 123, "min_scores": GATE}
    ctx = make_context(tmp_path, script={"judge": judge, "topic": {"enabled": False}})
    chat = JudgedChat([judgement()])
    judges = script_judges(ctx, chat)
    assert judges.chat.sampling["temperature"] == 0.0 and judges.chat.sampling["max_tokens"] == 123
    write(ctx, chat)
    seeds = [c["seed"] for c in chat.calls]
    assert len(set(seeds)) == len(seeds)


def test_judge_settings_and_templates_enter_the_script_key(tmp_path):
    base = make_context(tmp_path, script=JUDGES_ON)
    stricter = make_context(tmp_path, script={**JUDGES_ON, "judge": {"enabled": True, "min_scores": {"emotion": 4}}})
    off = make_context(tmp_path)
    keys = {ctx.layout.keys["script"][0][0] for ctx in (base, stricter, off)}
    assert len(keys) == 3
    prompts = tmp_path / "prompts"
    import shutil

    shutil.copytree(REPO / "prompts", prompts)
    (prompts / "templates" / "judge.en.j2").write_text("Score it.\n{{ written }}\n")
    edited = make_context(tmp_path, script=JUDGES_ON, prompts_dir=str(prompts))
    assert edited.layout.keys["script"][0][0] != base.layout.keys["script"][0][0]


def test_an_unmeasured_judge_gates_at_two_on_every_criterion_wherever_it_runs(tmp_path):
    """No model is trusted by its name: a judge gates only once measured (script.judge.min_agreement,
    tests/test_judge_calibration.py) or, unmeasured (min_agreement null), as set: 2 on every criterion unless
    min_scores says otherwise."""
    embedded = make_context(tmp_path, script={"judge": {"enabled": True}, "topic": {"enabled": False}})
    scripts, outcomes = write(embedded, JudgedChat([judgement(emotion=1, style=1)]))
    assert scripts == [] and outcomes[0].checks["judge"] == [0, 3]
    served = {"enabled": True, "base_url": "http://127.0.0.1:9/v1", "model": "judge-7b"}
    ctx = make_context(tmp_path, script={"judge": served, "topic": {"enabled": False}})
    assert script_judges(ctx, JudgedChat([])).min_scores == GATE
    assert ctx.layout.keys["script"][0][0] != embedded.layout.keys["script"][0][0]


def test_a_missing_judge_template_is_one_line_naming_it(tmp_path):
    import shutil

    prompts = tmp_path / "prompts"
    shutil.copytree(REPO / "prompts", prompts)
    (prompts / "templates" / "judge.en.j2").unlink()
    with pytest.raises(ConfigError, match=r"judge\.en\.j2.*script\.judge needs"):
        make_context(tmp_path, script=JUDGES_ON, prompts_dir=str(prompts))
    make_context(tmp_path, prompts_dir=str(prompts))  # judge off: not needed


def test_parse_judgement_refuses_what_is_not_five_scores():
    assert parse_judgement(judgement(style=3)) == {"emotion": 5, "style": 3, "topic": 5, "reasoning": 5, "naturalness": 5, "why": "style looks wrong"}
    for bad in ("", "not json", "[1, 2]", json.dumps({"emotion": 9}), json.dumps({c: True for c in judge_schema()["required"]})):
        with pytest.raises(MalformedOutput):
            parse_judgement(bad)


# --- topic check and embeddings: the real embedded model (all-MiniLM-L6-v2 from its PyPI package) ---


@pytest.fixture(scope="module")
def topic_ctx(tmp_path_factory):
    return make_context(tmp_path_factory.mktemp("topic"), script={"judge": {"enabled": False}, "topic": {"enabled": True}})


def scripted(spec, user_texts, assistant="I hear you, and that sounds really hard for you right now."):
    turns = []
    for text in user_texts:
        turns += [ScriptTurn(role="user", text=text), ScriptTurn(role="assistant", text=assistant)]
    notes = ["The person says how they feel, so a caring reply fits."] * len(user_texts)
    return Script(spec=spec, turns=turns, reasoning=notes, llm={})


def test_topic_drift_is_rejected_and_an_on_topic_dialogue_passes(topic_ctx):
    judges = script_judges(topic_ctx, None)
    spec = topic_ctx.planner.spec(0).model_copy(update={"scenario_text": "just brought a new puppy home"})
    spec = spec.model_copy(update={"turns": spec.turns[:2]})
    on = scripted(spec, ["I just brought my new puppy home and she keeps chewing my shoes."])
    off = scripted(spec, ["The quarterly tax forms for my small bakery are due on Friday."])
    reviews = judges.review([on, off], [0, 0], lambda reqs, labels: [])
    assert reviews[0].reason is None and reviews[0].checks["topic"] == [1, 0]
    assert str(reviews[1].reason).startswith("script: topic: the user's turns drift from the scenario")
    assert reviews[0].quality["topic_similarity"] > reviews[1].quality["topic_similarity"] + 0.2
    vector = unpack(reviews[0].quality["embedding"])
    assert vector.shape == (384,) and abs(float(np.linalg.norm(vector)) - 1) < 1e-3


def test_the_multilingual_topic_check_rejects_a_drifted_mandarin_dialogue(tmp_path):
    ctx = make_context(
        tmp_path, languages={"zh": 1.0},
        script={"judge": {"enabled": False}, "topic": {"enabled": True, "model": "embedded-multilingual"}},
    )  # fmt: skip
    judges = script_judges(ctx, None)
    spec = ctx.planner.spec(0).model_copy(update={"scenario_text": "今天早上把手机摔坏了"})
    spec = spec.model_copy(update={"turns": spec.turns[:2]})
    on = scripted(spec, ["我的手机今天早上掉在地上摔坏了，屏幕全碎了，我好难过。"], "听起来真让人难受，手机坏了确实很麻烦。")
    off = scripted(spec, ["今年夏天我们全家打算去海边旅行，我特别期待。"], "听起来真让人难受，手机坏了确实很麻烦。")
    reviews = judges.review([on, off], [0, 0], lambda reqs, labels: [])
    assert reviews[0].reason is None, reviews[0].quality["topic_similarity"]
    assert str(reviews[1].reason).startswith("script: topic: the user's turns drift from the scenario")
    assert ctx.config.script.topic.minimum("zh") == 0.87  # the measured minimum, not the English model's none


def test_semantic_duplicates_catch_paraphrases_minhash_misses(topic_ctx):
    judges = script_judges(topic_ctx, None)
    spec = topic_ctx.planner.spec(0)
    spec = spec.model_copy(update={"turns": spec.turns[:2]})
    texts = ["My dog ran away this morning and I can't find him anywhere.",
             "This morning my dog ran off and I cannot find him anywhere.",
             "I finally finished painting the whole kitchen yellow."]  # fmt: skip
    reviews = judges.review([scripted(spec, [t]) for t in texts], [0, 0, 0], lambda reqs, labels: [])
    index = SemanticDuplicates(threshold=0.9)
    found = [index.check(f"d{i}", unpack(r.quality["embedding"])) for i, r in enumerate(reviews)]
    assert found[0] is None and found[1][0] == "d0" and found[2] is None
    summary = index.summary()
    assert summary["semantic_duplicates"] == 1 and 0 < summary["semantic_diversity"]["all"] < 1
    assert index.check("zh-1", unpack(reviews[0].quality["embedding"]), "zh") is None  # compared within a language


def test_packed_embeddings_round_trip():
    v = np.random.default_rng(0).normal(size=384).astype(np.float32)
    v /= np.linalg.norm(v)
    assert float(np.dot(unpack(pack(v)), v)) > 0.9999


# --- rule checks added for notes and turns ---


@pytest.fixture
def spec(tmp_path):
    ctx = make_context(tmp_path, distributions={"gender": {"male": 1.0}, "age_group": {"elderly": 1.0}})
    return ctx.planner.spec(0)


def two_exchanges(spec, notes, turns=None):
    turns = turns or ["I retire next week and I am so angry about how it was handled.", "That sounds really unfair, and your anger makes sense.",
                      "They did not even ask me what I wanted.", "You deserved to be asked, and I am here to listen."]  # fmt: skip
    return Script(spec=spec, turns=[ScriptTurn(role=r, text=t) for r, t in zip(["user", "assistant"] * 2, turns, strict=True)],
                  reasoning=notes, llm={})  # fmt: skip


@pytest.mark.parametrize(
    ("notes", "turns", "reason"),
    [
        (["She says she retires next week and sounds angry, so calming fits.", "He feels ignored, so listening fits."], None,
         "notes: reasoning 0 calls the male user 'She'"),
        (["He says he retires next week and sounds **angry**, so calming fits.", "He feels ignored, so listening fits."], None,
         "style: reasoning 0 has markdown"),
        (["他说下周退休，听起来很生气，所以用平静的语气。", "He feels ignored, so listening fits."], None,
         "note_language: reasoning 0 is not English"),
        (["He says he retires next week and sounds angry, so calming fits.", "He feels ignored, so listening fits."],
         ["I retire next week and I am so angry about how it was handled.", "The calming reply helps him feel heard again.",
          "They did not even ask me what I wanted.", "You deserved to be asked, and I am here to listen."],
         "style: turn 1 narrates or labels instead of speaking"),
        (["He says he retires next week and sounds angry, so calming fits.", "He feels ignored, so listening fits."],
         ["I retire next week and I am so angry about how it was handled.", "You retire next week and you are so angry about how it was handled.",
          "They did not even ask me what I wanted.", "You deserved to be asked, and I am here to listen."],
         "repetition: turn 1 parrots the user's turn"),
    ],
)  # fmt: skip
def test_rule_checks_catch_wrong_pronouns_markdown_narration_and_parroting(spec, notes, turns, reason):
    assert check_text(validate_script(two_exchanges(spec, notes, turns), RULES)) == reason
    good = ["He says he retires next week and sounds angry, so calming fits.", "He feels ignored, so listening fits."]
    assert validate_script(two_exchanges(spec, good), RULES) is None


def test_the_worked_example_uses_the_users_pronoun(tmp_path):
    from empathy_data.stages.script.prompting import build_messages

    for gender, pronoun in (("male", "He says he failed his"), ("female", "She says she failed her")):
        ctx = make_context(tmp_path / gender, distributions={"gender": {gender: 1.0}})
        assert pronoun in build_messages(ctx.planner.spec(0), ctx.prompts)[0]["content"]


def test_config_refuses_unknown_judge_criteria():
    with pytest.raises(ConfigError, match="script.judge.min_scores: unknown criterion .tone."):
        parse_config({"script": {"judge": {"min_scores": {"tone": 3}}}})


def test_a_garbled_judgement_rejects_nothing_when_the_judge_only_records(tmp_path):
    ctx = make_context(tmp_path, script={"judge": {"enabled": True, "min_scores": {}}, "topic": {"enabled": False}})
    scripts, outcomes = write(ctx, JudgedChat(["not json at all"]))
    assert outcomes == [] and scripts[0].llm["attempt"] == 0 and scripts[0].checks["judge_reply"] == [0, 1]


def test_a_judge_request_that_raises_fails_the_dialogue_not_the_chunk(tmp_path):
    class BrokenJudge(JudgedChat):
        def complete(self, messages, schema, seed):
            if "exchanges" not in schema["properties"]:
                raise ValueError("prompt longer than the context")
            return super().complete(messages, schema, seed)

    ctx = make_context(tmp_path, script=JUDGES_ON)
    scripts, outcomes = write(ctx, BrokenJudge([judgement()]))
    assert scripts == [] and outcomes[0].verdict == "failed"
    assert str(outcomes[0].reasons[0]).startswith("llm: judge: ValueError: prompt longer than the context")


@pytest.mark.parametrize(
    ("notes", "turns"),
    [
        (["He says his wife left and she took the car, so calming fits.", "He feels ignored, so listening fits."], None),
        (["He says he retires next week and sounds angry, so calming fits.", "He feels ignored, so listening fits."],
         ["I got the response from the company today and I am so angry about it.", "That sounds really unfair, and your anger makes sense.",
          "My manager never even called me back.", "You deserved a call, and I am here to listen."]),
    ],
)  # fmt: skip
def test_rule_checks_leave_third_parties_and_the_users_own_words_alone(spec, notes, turns):
    assert validate_script(two_exchanges(spec, notes, turns), RULES) is None


def test_other_in_mandarin_is_not_a_pronoun(tmp_path):
    ctx = make_context(tmp_path, languages={"zh": 1.0}, distributions={"gender": {"female": 1.0}, "exchanges": {1: 1.0}})
    spec = ctx.planner.spec(0)
    turns = [ScriptTurn(role="user", text="我的钱包丢了，我真的不知道该怎么办才好。"),
             ScriptTurn(role="assistant", text="别着急，我们一起想想还有没有别的办法。")]  # fmt: skip
    note = "她说钱包丢了，没有其他办法，听起来很着急，所以用安慰的语气。"
    assert validate_script(Script(spec=spec, turns=turns, reasoning=[note], llm={}), RULES) is None
    wrong = "他说钱包丢了，听起来很着急，所以用安慰的语气。"
    assert validate_script(Script(spec=spec, turns=turns, reasoning=[wrong], llm={}), RULES).detail.startswith("reasoning 0 calls")


LABELS_ON = {"judge": {"enabled": True, "mode": "labels", "match": ["emotion", "style"]}, "topic": {"enabled": False}}


def picks_for(spec, **changed: str) -> str:
    """The closed-set judge's reply: the plan's own labels per exchange, with `changed` ones swapped into the first."""
    picks = [{"emotion": spec.turns[2 * k].emotion, "style": spec.turns[2 * k + 1].response_style} | (changed if k == 0 else {})
             for k in range(spec.num_exchanges)]  # fmt: skip
    return json.dumps({"picks": picks})


def test_the_closed_set_judge_rejects_a_script_whose_user_emotion_contradicts_its_label(tmp_path):
    ctx = make_context(tmp_path, script=LABELS_ON)
    spec = ctx.planner.spec(0)
    wrong = "happy" if spec.turns[0].emotion != "happy" else "sad"
    scripts, outcomes = write(ctx, JudgedChat([picks_for(spec, emotion=wrong)]))
    assert scripts == [] and outcomes[0].verdict == "rejected" and len(outcomes[0].reasons) == 3
    assert {str(r) for r in outcomes[0].reasons} == {f"script: judge: exchange 1 emotion {wrong}, planned {spec.turns[0].emotion}"}
    assert outcomes[0].checks["judge.emotion_match"] == [0, 3] and outcomes[0].checks["judge.style_match"] == [3, 0]


def test_the_closed_set_judge_is_shown_the_conversation_not_the_plan_and_passes_a_match(tmp_path):
    ctx = make_context(tmp_path, script=LABELS_ON)
    spec = ctx.planner.spec(0)
    chat = JudgedChat([picks_for(spec, emotion="angry" if spec.turns[0].emotion != "angry" else "sad"), picks_for(spec)])
    scripts, outcomes = write(ctx, chat)
    assert outcomes == [] and scripts[0].llm["attempt"] == 1  # the first draft's emotion was contradicted
    assert scripts[0].quality["judge_labels"] == json.loads(picks_for(spec))["picks"]
    asked = [c for c in chat.calls if "picks" in c["schema"]["properties"]]
    prompt = asked[0]["messages"][-1]["content"]
    assert "I feel really awful today" in prompt and spec.scenario_text not in prompt  # the turns, not the plan
    assert asked[0]["schema"]["properties"]["picks"]["minItems"] == spec.num_exchanges


def test_a_style_the_plan_does_not_match_passes_when_only_emotion_is_matched(tmp_path):
    ctx = make_context(tmp_path, script={**LABELS_ON, "judge": {**LABELS_ON["judge"], "match": ["emotion"]}})
    spec = ctx.planner.spec(0)
    other = "curious" if spec.turns[1].response_style != "curious" else "informative"
    scripts, outcomes = write(ctx, JudgedChat([picks_for(spec, style=other)]))
    assert outcomes == [] and scripts[0].llm["attempt"] == 0


def test_a_closed_set_judge_that_matches_nothing_records_its_picks_and_gates_nothing(tmp_path):
    ctx = make_context(tmp_path, script={**LABELS_ON, "judge": {"enabled": True, "mode": "labels", "match": []}})
    spec = ctx.planner.spec(0)
    wrong = "happy" if spec.turns[0].emotion != "happy" else "sad"
    scripts, outcomes = write(ctx, JudgedChat([picks_for(spec, emotion=wrong)]))
    assert outcomes == [] and scripts[0].llm["attempt"] == 0
    assert scripts[0].quality["judge_labels"][0]["emotion"] == wrong and scripts[0].checks["judge.emotion_match"] == [0, 1]
    assert ctx.layout.settings["script"]["script"]["judge"]["match"] == []


def test_the_labels_mode_keys_the_build_and_an_unmeasured_auto_judge_keys_as_scores(tmp_path):
    scores = make_context(tmp_path / "a", script=JUDGES_ON)
    explicit = make_context(tmp_path / "b", script={**JUDGES_ON, "judge": {**JUDGES_ON["judge"], "mode": "scores"}})
    labels = make_context(tmp_path / "c", script=LABELS_ON)
    assert scores.layout.settings["script"] == explicit.layout.settings["script"]
    assert "judge_labels_prompts" not in scores.layout.settings["script"]
    assert labels.layout.settings["script"]["judge_labels_prompts"] == labels.prompts.judge_labels_hash != ""
    assert labels.layout.settings["script"] != scores.layout.settings["script"]
