import json
import os
import re
import shutil

import pytest

from empathy_data.config.model import OpenAIScript, ValidationRules
from empathy_data.core.errors import ConfigError, InfrastructureError
from empathy_data.planning.prompt_library import load_prompts
from empathy_data.records.reasons import texts
from empathy_data.records.schema import Script, ScriptTurn
from empathy_data.stages.script.journal import ReplyJournal
from empathy_data.stages.script.openai_chat import api_key, response_format
from empathy_data.stages.script.prompting import MalformedOutput, build_messages, parse_reply, response_schema
from empathy_data.stages.script.stage import ScriptRun, write_one, write_scripts
from empathy_data.stages.script.validate import validate_script
from tests.helpers import REPO, FakeChat, check_text, good_reply, make_context

RULES = ValidationRules()


@pytest.fixture
def ctx(tmp_path):
    return make_context(tmp_path, distributions={"exchanges": {2: 1.0}})


def script_with(spec, texts, reasoning="The person says it went badly and sounds sad, so comfort fits."):
    turns = [ScriptTurn(role=t.role, text=text) for t, text in zip(spec.turns, texts, strict=True)]
    return Script(spec=spec, turns=turns, reasoning=[reasoning] * spec.num_exchanges, llm={})


def test_schema_fixes_the_turn_structure(ctx):
    spec = ctx.planner.spec(0)
    schema = response_schema(spec)
    ex = schema["properties"]["exchanges"]
    assert ex["minItems"] == ex["maxItems"] == spec.num_exchanges
    assert ex["items"]["required"] == ["user", "reasoning", "assistant"]


def test_messages_carry_planned_labels(ctx):
    spec = ctx.planner.spec(0)
    messages = build_messages(spec, ctx.prompts)
    assert [m["role"] for m in messages] == ["system", "user"]
    for i in range(spec.num_exchanges):
        assert spec.turns[2 * i].emotion in messages[1]["content"]
        assert spec.turns[2 * i + 1].response_style in messages[1]["content"]
    assert spec.scenario_text in messages[1]["content"]


def test_parse_reply(ctx):
    spec = ctx.planner.spec(0)
    script = parse_reply(spec, good_reply(2), {"model": "x"})
    assert [t.role for t in script.turns] == ["user", "assistant", "user", "assistant"]
    assert len(script.reasoning) == 2
    for bad in ("", "not json", json.dumps({"exchanges": []}), json.dumps({"exchanges": [{"user": 1}] * 2})):
        with pytest.raises(MalformedOutput):
            parse_reply(spec, bad, {})


@pytest.mark.parametrize(
    "texts, check",
    [
        (["Hi.", "I hear you, that sounds hard.", "It was a long day at work.", "Tell me more about it."], "length"),
        (
            ["I am so sad *sighs* today.", "I hear you, that sounds hard.", "It was a long day.", "Tell me more."],
            "style",
        ),
        (
            ["I am so sad today friend 😢", "I hear you, that sounds hard.", "It was a long day.", "Tell me more."],
            "style",
        ),
        (["**I am** so sad today.", "I hear you, that sounds hard.", "It was a long day.", "Tell me more."], "style"),
        (
            ["The user is sad about the job.", "I hear you, that is hard.", "It was a long day.", "Tell me more."],
            "style",
        ),
        (
            ["I am so sad today.", 'I hear you, that is hard."}]} {"', "It was a long day.", "Tell me more."],
            "style",
        ),
        (["I am so sad today.", "As an AI, I cannot feel sad.", "It was a long day.", "Tell me more."], "refusal"),
        (["我今天很难过。", "I hear you, that sounds hard.", "It was a long day.", "Tell me more."], "language"),
        (["I am so sad today.", "I hear you, that sounds hard.", "I am so sad today.", "Tell me more."], "repetition"),
        (
            ["I am sad sad sad sad sad sad sad.", "I hear you, it is hard.", "It was a long day.", "Tell me."],
            "repetition",
        ),
    ],
)
def test_validation_rejects_with_reason(ctx, texts, check):
    spec = ctx.planner.spec(0)
    reason = check_text(validate_script(script_with(spec, texts), RULES))
    assert reason is not None and reason.startswith(check)


def test_validation_accepts_a_good_script(ctx):
    spec = ctx.planner.spec(0)
    texts = ["I failed my test today and I feel awful.", "Oh, I am so sorry, that must really hurt.",
             "I studied every night for weeks.", "All that effort still counts, and you can try again."]  # fmt: skip
    assert validate_script(script_with(spec, texts), RULES) is None


def test_retry_with_new_seed_then_success(ctx):
    spec = ctx.planner.spec(0)
    chat = FakeChat(replies=["{broken", json.dumps({"exchanges": []})])
    result = write_one(spec, chat, ctx.prompts, RULES, max_attempts=3)
    assert isinstance(result, Script)
    assert len({c["seed"] for c in chat.calls}) == 3
    assert result.llm["attempt"] == 2 and result.llm["prompt_hash"] == ctx.prompts.content_hash


def test_validation_failures_end_rejected_with_reasons(ctx):
    spec = ctx.planner.spec(0)
    bad = json.dumps(
        {"exchanges": [{"user": "As an AI I am sad.", "reasoning": "x y z w v u", "assistant": "ok then"}] * 2}
    )
    result = write_one(spec, FakeChat(default=bad), ctx.prompts, RULES, max_attempts=2)
    assert result.verdict == "rejected" and len(result.reasons) == 2
    assert all(r.stage == "script" for r in result.reasons)


def test_malformed_every_time_fails_the_item(ctx):
    spec = ctx.planner.spec(0)
    result = write_one(spec, FakeChat(default="nope"), ctx.prompts, RULES, max_attempts=2)
    assert result.verdict == "failed" and "malformed" in str(result.reasons[0])


def test_item_error_fails_only_that_item(ctx):
    specs = ctx.planner.chunk(0)
    chat = FakeChat(replies=[ValueError("prompt longer than the context")])
    scripts, outcomes = write_scripts(specs, ScriptRun(chat, ctx.prompts, RULES, max_attempts=2, max_in_flight=1))
    assert len(scripts) == len(specs) - 1
    assert outcomes[0].verdict == "failed" and "ValueError" in str(outcomes[0].reasons[0])


@pytest.mark.parametrize("fault", [ConnectionError("reset by peer"), TimeoutError("read timed out"), MemoryError()])
def test_infrastructure_fault_fails_the_chunk_not_the_item(ctx, fault):
    chat = FakeChat(replies=[fault])
    with pytest.raises(InfrastructureError, match=f"llm: {type(fault).__name__}"):
        write_scripts(ctx.planner.chunk(0), ScriptRun(chat, ctx.prompts, RULES, max_attempts=2, max_in_flight=1))


def test_journal_replays_replies_and_sends_only_the_missing_requests(ctx, tmp_path):
    specs = ctx.planner.chunk(0)
    path = tmp_path / "journal.jsonl"
    first = FakeChat(replies=[good_reply(specs[0].num_exchanges), ConnectionError("server gone")])
    with pytest.raises(InfrastructureError):
        write_scripts(specs, ScriptRun(first, ctx.prompts, RULES, 2, 1, journal=ReplyJournal(path)))
    assert len(path.read_text().splitlines()) == 1  # the reply that arrived before the fault is kept
    with open(path, "a") as f:
        f.write('{"request": "cut short by a ki')  # a line a SIGKILL cut in half is ignored
    again = FakeChat()
    journal = ReplyJournal(path)
    scripts, outcomes = write_scripts(specs, ScriptRun(again, ctx.prompts, RULES, 2, 1, journal=journal))
    assert len(scripts) == len(specs) and not outcomes
    assert (journal.replayed, journal.sent, len(again.calls)) == (1, len(specs) - 1, len(specs) - 1)
    assert scripts[0].turns[0].text == json.loads(good_reply(1))["exchanges"][0]["user"]
    third = FakeChat()
    replay = ReplyJournal(path)
    assert write_scripts(specs, ScriptRun(third, ctx.prompts, RULES, 2, 1, journal=replay))[0] == scripts
    assert (replay.replayed, replay.sent, third.calls) == (len(specs), 0, [])


def test_journal_key_changes_with_what_decides_the_reply(ctx, tmp_path):
    journal = ReplyJournal(tmp_path / "j.jsonl", salt={"weights": "a"})
    request = ([{"role": "user", "content": "hi"}], {"type": "object"}, 7)
    key = journal.key({"model": "m", "temperature": 0.8}, request)
    assert key == ReplyJournal(tmp_path / "k.jsonl", salt={"weights": "a"}).key({"model": "m", "temperature": 0.8}, request)
    assert key != journal.key({"model": "m", "temperature": 0.7}, request)
    assert key != journal.key({"model": "m", "temperature": 0.8}, (request[0], request[1], 8))
    assert key != ReplyJournal(tmp_path / "j.jsonl", salt={"weights": "b"}).key({"model": "m", "temperature": 0.8}, request)


def test_response_format_forms():
    schema = {"type": "object"}
    assert response_format(schema, "json_schema")["json_schema"]["schema"] == schema
    assert response_format(schema, "json_object_schema") == {"type": "json_object", "schema": schema}
    assert OpenAIScript().schema_form() == "json_object_schema"
    assert OpenAIScript(base_url="http://x/v1").schema_form() == "json_schema"


def test_api_key_comes_from_environment(monkeypatch):
    config = OpenAIScript(base_url="http://x/v1", api_key_env="EMPATHY_TEST_KEY")
    monkeypatch.delenv("EMPATHY_TEST_KEY", raising=False)
    with pytest.raises(ConfigError, match="EMPATHY_TEST_KEY is not set"):
        api_key(config)
    monkeypatch.setenv("EMPATHY_TEST_KEY", "sk-secret")
    assert api_key(config) == "sk-secret"
    assert "sk-secret" not in config.model_dump_json()


def test_request_tag_is_unique_per_attempt_and_optional(ctx):
    spec = ctx.planner.spec(0)
    first, second = build_messages(spec, ctx.prompts, 0), build_messages(spec, ctx.prompts, 1)
    assert first[0]["content"].splitlines()[0] != second[0]["content"].splitlines()[0]
    assert spec.dialogue_id in first[0]["content"].splitlines()[0]
    untagged = build_messages(spec, ctx.prompts, 0, tag=False)
    assert spec.dialogue_id not in untagged[0]["content"] and untagged[1] == first[1]


def example_from_prompt(messages) -> dict:
    """The worked example the system prompt shows the model (its one JSON line)."""
    line = next(ln for ln in messages[0]["content"].splitlines() if ln.startswith('{"exchanges"'))
    return json.loads(line)["exchanges"][0]


@pytest.mark.parametrize("language", ["en", "zh"])
def test_a_script_that_copies_the_prompt_example_is_rejected(tmp_path, language):
    ctx = make_context(tmp_path, languages={language: 1.0}, distributions={"exchanges": {1: 1.0}})
    spec = ctx.planner.spec(0)
    example = example_from_prompt(build_messages(spec, ctx.prompts))
    copied = json.dumps({"exchanges": [example]})
    chat = FakeChat(default=copied)
    scripts, outcomes = write_scripts([spec], ScriptRun(chat, ctx.prompts, RULES, max_attempts=2, max_in_flight=1))
    assert scripts == [] and outcomes[0].verdict == "rejected"
    assert texts(outcomes[0].reasons) == ["script: copy: turn 0 copies the prompt"] * 2


def test_a_script_that_copies_one_sentence_of_the_example_is_rejected(ctx):
    spec = ctx.planner.spec(0)
    prompt = build_messages(spec, ctx.prompts)[0]["content"]
    texts = ["I failed my test today and I feel awful.", "Oh, I am so sorry, that must really hurt.",
             "I studied every night for weeks.", "It's okay to feel down about it for a while."]  # fmt: skip
    assert check_text(validate_script(script_with(spec, texts), RULES, prompt=prompt)) == "copy: turn 3 copies the prompt"
    texts[3] = "All that effort still counts, and you can try again."
    assert validate_script(script_with(spec, texts), RULES, prompt=prompt) is None


def test_a_fresh_mandarin_script_passes_against_the_real_prompt(tmp_path):
    ctx = make_context(tmp_path, languages={"zh": 1.0}, distributions={"exchanges": {1: 1.0}})
    spec = ctx.planner.spec(0)
    prompt = build_messages(spec, ctx.prompts)[0]["content"]
    texts = ["邻居家每天晚上都很吵，我快受不了了。", "换作是我也会生气，我们一起想想办法吧。"]
    reasoning = "他说邻居太吵让他睡不好，听起来很生气，所以先认同他的感受再一起想办法。"
    assert validate_script(script_with(spec, texts, reasoning), RULES, prompt=prompt) is None


def test_raw_control_characters_inside_strings_are_tolerated(ctx):
    spec = ctx.planner.spec(0)
    reply = good_reply(2).replace("today because", "today\nbecause").replace("gentle comforting", "gentle\tcomforting")
    script = parse_reply(spec, reply, {})
    assert script.turns[0].text.startswith("I feel really awful today because my plans")
    assert "\n" not in script.turns[0].text and "\t" not in script.reasoning[0]


def test_a_mandarin_prompt_reads_its_labels_in_chinese(tmp_path):
    ctx = make_context(tmp_path, languages={"zh": 1.0}, distributions={"exchanges": {2: 1.0}})
    spec = ctx.planner.spec(0)
    user = build_messages(spec, ctx.prompts)[1]["content"]
    zh = ctx.prompts.vocabulary_for("zh")
    for i in range(spec.num_exchanges):
        assert zh.emotions[spec.turns[2 * i].emotion] in user
        assert zh.response_styles[spec.turns[2 * i + 1].response_style] in user
    assert set(re.findall(r"[A-Za-z]+", user)) == {"reasoning"}  # no English label leaks into the prompt


def test_localized_vocabulary_must_cover_every_label(tmp_path):
    prompts = tmp_path / "prompts"
    shutil.copytree(REPO / "prompts", prompts)
    (prompts / "vocabulary.zh.yaml").write_text("emotions: {neutral: 平静}\nresponse_styles: {calming: 平静}\n")
    with pytest.raises(ConfigError, match=r"vocabulary\.zh\.yaml: emotions.*no description"):
        load_prompts(prompts, ["en", "zh"])
    assert load_prompts(prompts, ["en"]).vocabulary_for("zh").emotions["sad"].startswith("down")


def test_a_json_tail_typed_into_a_turn_is_cut_and_other_fragments_rejected(tmp_path):
    ctx = make_context(tmp_path, languages={"zh": 1.0}, distributions={"exchanges": {1: 1.0}})
    spec = ctx.planner.spec(0)
    user, assistant = "邻居家每天晚上都很吵，我快受不了了。", "换作是我也会生气，我们一起想想办法吧。"
    reasoning = "他说邻居太吵让他睡不好，听起来很生气，所以先认同他的感受再一起想办法。"
    reply = json.dumps({"exchanges": [{"user": user, "reasoning": reasoning, "assistant": assistant + "”}]}` {"}]})
    script = parse_reply(spec, reply, {})
    assert script.turns[1].text == assistant
    assert validate_script(script, RULES) is None
    middle = json.dumps(
        {"exchanges": [{"user": user, "reasoning": reasoning, "assistant": "好的”}]} {然后继续说话。"}]}
    )
    assert check_text(validate_script(parse_reply(spec, middle, {}), RULES)) == "style: turn 1 has JSON fragments"


def test_a_turn_too_long_to_speak_is_rejected_before_synthesis(tmp_path):
    ctx = make_context(tmp_path, languages={"zh": 1.0}, distributions={"exchanges": {1: 1.0}})
    spec = ctx.planner.spec(0)
    reasoning = "他说邻居太吵让他睡不好，听起来很生气，所以先认同他的感受再一起想办法。"
    lecture = "换作是我也会生气，我们一起想想办法吧。" * 6  # 102 characters: ~36 s of espeak Mandarin
    reason = check_text(validate_script(script_with(spec, ["邻居家每天晚上都很吵，我快受不了了。", lecture], reasoning), RULES))
    assert reason == "length: turn 1 too long (51 words)"


def one_exchange(user: str, assistant: str) -> str:
    reasoning = "The person says their plans fell apart and sounds sad, so a gentle comforting reply fits."
    return json.dumps({"exchanges": [{"user": user, "reasoning": reasoning, "assistant": assistant}]})


FIRST = one_exchange("My trip got cancelled at the last minute.", "Oh no, that is such a letdown after planning.")
SECOND = one_exchange("I had already packed my bags last night.", "You were so ready; it is fine to feel flat today.")


def test_writing_by_exchange_shows_the_model_the_exchange_before(ctx):
    spec = ctx.planner.spec(0)
    chat = FakeChat(replies=[FIRST, SECOND])
    scripts, outcomes = write_scripts([spec], ScriptRun(chat, ctx.prompts, RULES, 3, 1, write_by="exchange"))
    assert outcomes == [] and len(chat.calls) == 2
    assert [c["schema"]["properties"]["exchanges"]["minItems"] for c in chat.calls] == [1, 1]
    assert "exchange 1 only" in chat.calls[0]["messages"][1]["content"]
    second = chat.calls[1]["messages"][1]["content"]
    assert "Oh no, that is such a letdown" in second and "exchange 2 only" in second
    assert "My trip got cancelled" not in second  # a small model copies whatever turn it is shown
    assert chat.calls[0]["seed"] != chat.calls[1]["seed"]
    [script] = scripts
    assert [t.text for t in script.turns][2] == "I had already packed my bags last night."
    assert len(script.reasoning) == 2 and script.llm["attempt"] == [0, 0]
    assert script.llm["seed"] == [c["seed"] for c in chat.calls]


def test_writing_by_exchange_retries_only_the_exchange_that_failed(ctx):
    spec = ctx.planner.spec(0)
    chat = FakeChat(replies=[FIRST, FIRST, SECOND])  # the second request copies exchange 1
    scripts, outcomes = write_scripts([spec], ScriptRun(chat, ctx.prompts, RULES, 3, 1, write_by="exchange"))
    assert len(scripts) == 1 and len(chat.calls) == 3
    assert "Oh no, that is such a letdown" in chat.calls[2]["messages"][1]["content"]  # exchange 1 kept
    assert scripts[0].llm["attempt"] == [0, 1]


def test_writing_by_exchange_rejects_with_every_reason_when_attempts_run_out(ctx):
    spec = ctx.planner.spec(0)
    chat = FakeChat(replies=[FIRST], default=FIRST)
    scripts, outcomes = write_scripts([spec], ScriptRun(chat, ctx.prompts, RULES, 2, 1, write_by="exchange"))
    assert scripts == [] and outcomes[0].verdict == "rejected"
    assert texts(outcomes[0].reasons) == ["script: exchange 1: repetition: a turn repeats another turn"] * 2
    chat = FakeChat(default="{broken")
    _, outcomes = write_scripts([spec], ScriptRun(chat, ctx.prompts, RULES, 2, 1, write_by="exchange"))
    assert outcomes[0].verdict == "failed" and str(outcomes[0].reasons[0]).startswith("script: exchange 0: malformed")


def test_a_stalled_dialogue_keeps_its_passed_exchanges_and_the_next_round_goes_on_from_them(ctx):
    spec = ctx.planner.spec(0)
    chat = FakeChat(replies=[FIRST], default=FIRST)  # exchange 2 keeps copying exchange 1
    scripts, [outcome] = write_scripts([spec], ScriptRun(chat, ctx.prompts, RULES, 2, 1, write_by="exchange"))
    assert scripts == [] and outcome.verdict == "rejected"
    draft = outcome.draft
    assert [t.text for t in draft.turns] == [e for e in json.loads(FIRST)["exchanges"][0].values() if e][::2]
    assert len(draft.reasoning) == 1 and draft.llm["attempt"] == [0]

    chat = FakeChat(replies=[SECOND])
    scripts, outcomes = write_scripts([spec], ScriptRun(chat, ctx.prompts, RULES, 2, 1, write_by="exchange", first_attempt=2), drafts={spec.dialogue_id: draft})
    assert outcomes == [] and len(chat.calls) == 1  # exchange 1 is not written again
    request = chat.calls[0]["messages"]
    assert "exchange 2 only" in request[1]["content"] and "draft 3. Exchange 2." in request[0]["content"]
    [script] = scripts
    assert script.turns[:2] == draft.turns and script.turns[2].text == "I had already packed my bags last night."
    assert script.llm["attempt"] == [0, 2] and script.llm["seed"] == [draft.llm["seed"][0], chat.calls[0]["seed"]]
    # whole-dialogue writing has no use for a draft, and a dialogue without exchanges passed keeps none
    chat = FakeChat(default="{broken")
    _, [outcome] = write_scripts([spec], ScriptRun(chat, ctx.prompts, RULES, 1, 1, write_by="exchange"))
    assert outcome.draft is None


def test_request_tag_setting_reaches_the_request(ctx):
    spec = ctx.planner.spec(0)
    for write_by in ("dialogue", "exchange"):
        chat = FakeChat(replies=[FIRST, SECOND])
        write_scripts([spec], ScriptRun(chat, ctx.prompts, RULES, 1, 1, request_tag=False, write_by=write_by))
        assert spec.dialogue_id not in chat.calls[0]["messages"][0]["content"]
        chat = FakeChat(replies=[FIRST, SECOND])
        write_scripts([spec], ScriptRun(chat, ctx.prompts, RULES, 1, 1, request_tag=True, write_by=write_by))
        assert spec.dialogue_id in chat.calls[0]["messages"][0]["content"]


def test_mandarin_exchange_prompt_carries_the_exchange_before(tmp_path):
    ctx = make_context(tmp_path, languages={"zh": 1.0}, distributions={"exchanges": {2: 1.0}})
    spec = ctx.planner.spec(0)
    written = [{"user": "邻居家每天晚上都很吵。", "assistant": "换作是我也会生气。", "reasoning": "他很生气。"}]
    messages = build_messages(spec, ctx.prompts, written=written)
    assert "换作是我也会生气。" in messages[1]["content"] and "只写第 2 轮" in messages[1]["content"]
    assert "第 2 轮" in messages[0]["content"].splitlines()[0]  # the request tag names the exchange


@pytest.mark.parametrize(
    ("note", "reason"),
    [
        ('The person sounds sad about the exam. "}, {"user": "I failed', "notes: reasoning 0 has JSON fragments"),
        ("只输出 JSON。 用户说考试没过，听起来很难过，所以用安慰的语气回应。", "notes: reasoning 0 has JSON fragments"),
        ("I'm sorry, but I can't help with writing this conversation for you.", "refusal: reasoning 0 has refusal"),
        ("用户很难过。抱歉，我无法协助完成这个对话。", "refusal: reasoning 0 has refusal"),
    ],
)
def test_reasoning_notes_are_checked_like_turns(ctx, note, reason):
    spec = ctx.planner.spec(0)
    texts = ["I failed my driving test again today.", "I am so sorry, that sounds really frustrating.",
             "I practised for months and still failed.", "That must hurt, but you are closer than you think."]  # fmt: skip
    script = script_with(spec, texts, reasoning=note)
    found = check_text(validate_script(script.model_copy(update={"spec": spec.model_copy(update={"language": "en"})}), RULES))
    assert found is not None and found.startswith(reason), found
    quoted = script_with(spec, texts, reasoning='The person says "I failed again" and sounds sad, so comforting fits.')
    assert validate_script(quoted, RULES) is None  # quoting the user is fine


def test_journal_keeps_a_cut_off_reply_cut_off(tmp_path):
    from empathy_data.stages.script.journal import ReplyJournal
    from empathy_data.stages.script.prompting import CutOffReply

    journal = ReplyJournal(tmp_path / "j.jsonl")
    journal.append("a", CutOffReply('{"exchanges": [{"user": "I', 700), 1, {})
    journal.append("b", '{"exchanges": []}', 2, {})
    replayed = ReplyJournal(tmp_path / "j.jsonl")
    found, reply = replayed.lookup("a")
    assert found and isinstance(reply, CutOffReply) and reply.max_tokens == 700
    assert not isinstance(replayed.lookup("b")[1], CutOffReply)


def test_auto_writes_long_dialogues_exchange_by_exchange_and_short_ones_whole(tmp_path):
    ctx = make_context(tmp_path, num_dialogues=2, distributions={"exchanges": {2: 0.5, 4: 0.5}})
    specs = ctx.planner.chunk(0)
    assert sorted(s.num_exchanges for s in specs) == [2, 4]
    words = iter(["lost my keys", "missed the bus", "burned the toast", "broke my phone", "forgot the cake"])

    def fresh(n):  # a new situation per request, so no turn repeats another
        what = next(words)
        return json.dumps({"exchanges": [{
            "user": f"I feel really awful today because I {what} again, part {i}.",
            "reasoning": "The person says something went wrong and sounds sad, so a gentle comforting reply fits.",
            "assistant": f"I am so sorry you {what}, that sounds really hard, part {i}.",
        } for i in range(n)]})  # fmt: skip

    chat = FakeChat(default=fresh)
    scripts, outcomes = write_scripts(specs, ScriptRun(chat, ctx.prompts, ValidationRules(), 1, 1, write_by="auto"))
    assert not outcomes and sorted(len(s.turns) for s in scripts) == [4, 8]
    asked = sorted(call["schema"]["properties"]["exchanges"]["minItems"] for call in chat.calls)
    assert asked == [1, 1, 1, 1, 2]  # the 4-exchange dialogue in four requests, the 2-exchange one in one
    assert ctx.config.script.write_by == "auto" and ctx.config.script.exchange_mode_from == 3


def test_the_embedded_server_sleeps_instead_of_spinning_unless_told_otherwise(tmp_path):
    from empathy_data.stages.script.llama_server import SPIN_BEFORE_SLEEP, LlamaServer

    server = LlamaServer(tmp_path / "m.gguf", n_threads=2, n_ctx=512, log_path=tmp_path / "log")
    assert server.environment({"PATH": "/bin"})["GOMP_SPINCOUNT"] == SPIN_BEFORE_SLEEP
    assert server.environment({"GOMP_SPINCOUNT": "0"})["GOMP_SPINCOUNT"] == "0"  # the user's own setting wins
    assert "GOMP_SPINCOUNT" not in os.environ or os.environ["GOMP_SPINCOUNT"] != SPIN_BEFORE_SLEEP
