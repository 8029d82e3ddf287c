"""Regeneration rounds: rejected dialogues are written again, each keeps its best version, nothing is lost."""

import json
import re

import pyarrow.parquet as pq
import pytest

from empathy_data.backends import registry as backends
from empathy_data.core.atomic import read_jsonl
from empathy_data.planning.regenerate import Version, best, needs_another_round
from empathy_data.runtime.build import run_filter_chunk, run_script_chunk, run_synthesize_chunk
from empathy_data.runtime.driver import InlineRunner, run_all_chunks
from empathy_data.stages.export.exporter import export_corpus
from empathy_data.stages.script.stage import ScriptRun, write_scripts
from empathy_data.tools.verify import verify_corpus
from tests.helpers import make_context

NOISE = "static noise only"


def test_best_version_has_most_accepted_exchanges_then_earliest_round():
    versions = [Version(0, 2, 1, False), Version(1, 2, 0, False), Version(2, 2, 1, False)]
    assert best(versions).round == 0
    assert best([*versions, Version(3, 2, 2, False)]).round == 3
    assert needs_another_round(versions)
    assert not needs_another_round([*versions, Version(3, 2, 2, False)])
    assert not needs_another_round([Version(0, 2, 0, True)])  # an error is not retried by regeneration


class DraftChat:
    """Writes each dialogue per a plan {plan_index: [kind per draft]}: 'clean', 'mumble' (the ASR below
    hears noise) or 'emoji' (fails script validation). The draft number comes from the request tag."""

    def __init__(self, ctx, drafts: dict[int, list[str]]):
        self.index_of = {ctx.planner.spec(i).dialogue_id: i for i in range(ctx.config.num_dialogues)}
        self.drafts = drafts
        self.calls: list[tuple[int, int]] = []

    @property
    def identity(self) -> dict:
        return {"backend": "fake", "model": "fake"}

    def complete(self, messages, schema, seed):
        dialogue_id, draft = re.search(r"Conversation (\S+), draft (\d+)\.", messages[0]["content"]).groups()
        index, draft = self.index_of[dialogue_id], int(draft)
        self.calls.append((index, draft))
        kinds = self.drafts[index]
        kind = kinds[min(draft - 1, len(kinds) - 1)]
        word = {"clean": "today", "mumble": "mumble", "emoji": "today 🙂"}[kind]
        n = schema["properties"]["exchanges"]["minItems"]
        exchanges = [
            {
                "user": f"I feel really awful {word} because my plans fell apart again, number {i} {draft}.",
                "reasoning": "The person says their plans fell apart and sounds sad, so a gentle comforting reply fits.",
                "assistant": f"I am so sorry to hear that, it sounds really hard for you, take care {i}.",
            }
            for i in range(n)
        ]
        return json.dumps({"exchanges": exchanges})


class ScriptHearingASR:
    """Hears every utterance as the words it was written with, except 'mumble' turns, heard as noise.
    The test loads the texts of the chunk about to be filtered into `texts`."""

    texts: list[str] = []

    @property
    def identity(self) -> dict:
        return {"backend": "fake-asr"}

    def transcribe(self, audios, languages):
        assert len(audios) == len(self.texts)
        return [NOISE if "mumble" in t else t for t in self.texts]


def build(ctx, chat) -> dict:
    tts = backends.tts_backend(ctx.config.synthesize)
    asr = ScriptHearingASR()

    def hear_then_filter(c: int, r: int):
        rows = read_jsonl(ctx.layout.chunk_path("synthesize", c, r) / "records.jsonl")
        asr.texts = [row["text"] for row in rows if row["kind"] == "utterance"]
        return run_filter_chunk(ctx, c, lambda: (asr, None), r)

    run_all_chunks(ctx, InlineRunner({
        "script": lambda c, r: run_script_chunk(ctx, c, lambda: chat, r),
        "synthesize": lambda c, r: run_synthesize_chunk(ctx, c, lambda: tts, r),
        "filter": hear_then_filter,
    }))  # fmt: skip
    return export_corpus(ctx).to_json()


@pytest.fixture
def regen_ctx(tmp_path):
    return make_context(
        tmp_path,
        num_dialogues=4,
        chunk_size=2,
        distributions={"exchanges": {1: 1.0}},
        script={"max_attempts": 1},
        synthesize={"sample_rate": 16000, "tts": {"backend": "espeak", "neutral_reference": False}},
        filter={"thresholds": {"check_emotion": False}},
        regenerate={"rounds": 2},
        export={"near_duplicate_threshold": None},  # the fake chat writes every dialogue alike
    )


def test_rejected_dialogues_are_written_again_until_accepted_or_out_of_rounds(regen_ctx):
    drafts = {0: ["mumble", "clean"], 1: ["mumble"], 2: ["clean"], 3: ["emoji", "clean"]}
    chat = DraftChat(regen_ctx, drafts)
    manifest = build(regen_ctx, chat)

    # one draft per round (max_attempts 1): dialogue 1 used all three rounds, 2 was never asked again
    assert sorted(chat.calls) == [(0, 1), (0, 2), (1, 1), (1, 2), (1, 3), (2, 1), (3, 1), (3, 2)]
    counts = manifest["counts"]
    assert counts["exchanges"] == {"planned": 4, "accepted": 3, "rejected": 1, "failed": 0}
    assert counts["dialogues"] == {"planned": 4, "accepted": 3, "rejected": 1, "failed": 0}
    assert counts["regeneration"] == {
        "rounds": 2,
        "dialogues_regenerated": 3,
        "exchanges_replaced": 4,  # dialogue 0: 1, dialogue 1: 2, dialogue 3: 1
        "accepted_by_round": {"0": 1, "1": 2},
    }
    assert verify_corpus(regen_ctx.out) == {"rows": 3, "rejects": 5, "dialogues": 3}
    assert "3 dialogue(s) were written again" in (regen_ctx.out / "README.md").read_text()

    data = [r for f in sorted((regen_ctx.out / "data").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    assert sorted(r["provenance"]["regeneration_round"] for r in data) == ["0", "1", "1"]
    assert all("mumble" not in r["user_text"] and "🙂" not in r["user_text"] for r in data)
    rejects = [r for f in sorted((regen_ctx.out / "rejects").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    by_verdict = {}
    for r in rejects:
        by_verdict.setdefault(r["verdict"], []).append(r)
    assert len(by_verdict["rejected"]) == 1 and by_verdict["rejected"][0]["reasons"] == ["user.wer"]
    replaced = by_verdict["replaced"]
    assert len(replaced) == 4
    assert all(r["reasons"][-1].startswith("replaced: by round") for r in replaced)
    script_replaced = [r for r in replaced if r["stage"] == "script"]
    assert len(script_replaced) == 1 and "emoji" in script_replaced[0]["reasons"][0]


def test_adding_rounds_to_a_finished_build_reuses_round_zero(regen_ctx, tmp_path):
    drafts = {0: ["mumble", "clean"], 1: ["clean"], 2: ["clean"], 3: ["clean"]}
    data = regen_ctx.config.model_dump(mode="json")
    data["regenerate"] = {"rounds": 0}
    first = make_context(tmp_path, **{k: v for k, v in data.items() if k not in ("name", "seed")} | {"seed": 3})
    assert build(first, DraftChat(first, drafts))["counts"]["exchanges"]["accepted"] == 3

    assert regen_ctx.regeneration.pending_script_work()  # dialogue 0 is to be written again
    chat = DraftChat(regen_ctx, drafts)
    manifest = build(regen_ctx, chat)
    assert not regen_ctx.regeneration.pending_script_work()
    assert chat.calls == [(0, 2)]  # round 0 came from the finished build; only the rejected one is asked
    assert manifest["counts"]["exchanges"]["accepted"] == 4
    assert [keys[0] for keys in manifest["stage_keys"]["filter"]] == [keys[0] for keys in first.layout.keys["filter"].values()]


@pytest.mark.parametrize("write_by", ["dialogue", "exchange"])
def test_a_later_round_asks_with_later_attempt_numbers(regen_ctx, write_by):
    chat = DraftChat(regen_ctx, {0: ["emoji"]})
    spec = regen_ctx.planner.spec(0)
    rules = regen_ctx.config.script.validation
    _, outcomes = write_scripts([spec], ScriptRun(chat, regen_ctx.prompts, rules, 2, 1, write_by=write_by, first_attempt=4))
    assert [draft for _, draft in chat.calls] == [5, 6]
    assert outcomes[0].verdict == "rejected" and len(outcomes[0].reasons) == 2


def test_no_llm_is_needed_when_added_rounds_have_nothing_to_write(regen_ctx, tmp_path):
    assert regen_ctx.regeneration.pending_script_work()
    data = regen_ctx.config.model_dump(mode="json") | {"regenerate": {"rounds": 0}}
    first = make_context(tmp_path, **{k: v for k, v in data.items() if k != "name"})
    build(first, DraftChat(first, dict.fromkeys(range(4), ["clean"])))
    assert not regen_ctx.regeneration.pending_script_work()  # every dialogue was accepted in round 0


class ExchangeChat:
    """Writes one exchange per request; `stumbles` lists the (plan index, exchange, draft) requests that
    get a reply failing script validation (an emoji). Every other reply is clean and unique."""

    def __init__(self, ctx, stumbles: set[tuple[int, int, int]]):
        self.index_of = {ctx.planner.spec(i).dialogue_id: i for i in range(ctx.config.num_dialogues)}
        self.stumbles = stumbles
        self.calls: list[tuple[int, int, int]] = []

    @property
    def identity(self) -> dict:
        return {"backend": "fake", "model": "fake"}

    def complete(self, messages, schema, seed):
        found = re.search(r"Conversation (\S+), draft (\d+)\. Exchange (\d+)\.", messages[0]["content"])
        dialogue_id, draft, exchange = found.groups()
        call = (self.index_of[dialogue_id], int(exchange), int(draft))
        self.calls.append(call)
        mark = " 🙂" if call in self.stumbles else ""
        names = ["one", "two", "three", "four"]
        user = f"My plans for day {names[call[1]]} fell apart{mark}, and draft {names[call[2]]} says so."
        reasoning = "The person says their plans fell apart and sounds sad, so a gentle comforting reply fits."
        assistant = f"I am so sorry about day {names[call[1]]}, that sounds really hard for you."
        return json.dumps({"exchanges": [{"user": user, "reasoning": reasoning, "assistant": assistant}]})


def test_a_dialogue_that_stalled_in_the_script_stage_goes_on_from_its_passed_exchanges(tmp_path):
    ctx = make_context(
        tmp_path,
        num_dialogues=2,
        chunk_size=2,
        distributions={"exchanges": {3: 1.0}},
        script={"max_attempts": 1, "write_by": "exchange"},
        synthesize={"sample_rate": 16000, "tts": {"backend": "espeak", "neutral_reference": False}},
        filter={"thresholds": {"check_emotion": False}},
        regenerate={"rounds": 1},
        export={"near_duplicate_threshold": None},
    )
    chat = ExchangeChat(ctx, stumbles={(0, 3, 1)})  # dialogue 0's third exchange fails in round 0
    manifest = build(ctx, chat)

    round_one = [call for call in chat.calls if call[2] == 2]
    assert round_one == [(0, 3, 2)]  # the two exchanges it had passed are not written again
    assert manifest["counts"]["exchanges"] == {"planned": 6, "accepted": 6, "rejected": 0, "failed": 0}
    data = [r for f in sorted((ctx.out / "data").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    first = sorted((r for r in data if r["dialogue_id"] == ctx.planner.spec(0).dialogue_id), key=lambda r: r["exchange_index"])
    # drafts are numbered from 1 (names[draft]): exchanges 1-2 from round 0, exchange 3 from round 1
    assert [r["user_text"].split(", and draft ")[1] for r in first] == ["two says so."] * 2 + ["three says so."]
    # the stalled version is kept among the rejects, its passed exchanges with their text
    rejects = [r for f in sorted((ctx.out / "rejects").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    assert [(r["verdict"], r["stage"], r["user_text"] is not None) for r in rejects] == [
        ("replaced", "script", True), ("replaced", "script", True), ("replaced", "script", False)
    ]
    assert verify_corpus(ctx.out)["rows"] == 6


class StallingChat:
    """Writes each exchange cleanly, except exchange `stall_at` (0-based), which always has an emoji
    (fails script validation): a long dialogue that stalls there in every round."""

    def __init__(self, stall_at: int):
        self.stall_at = stall_at
        self.calls: list[int] = []

    @property
    def identity(self) -> dict:
        return {"backend": "fake", "model": "fake"}

    def complete(self, messages, schema, seed):
        exchange = int(re.search(r"Exchange (\d+)\.", messages[0]["content"]).group(1)) - 1
        self.calls.append(exchange)
        word = "today 🙂" if exchange == self.stall_at else "today"
        return json.dumps({"exchanges": [{
            "user": f"I feel really awful {word} because my plans fell apart again, part {exchange}.",
            "reasoning": "The person says their plans fell apart and sounds sad, so a gentle comforting reply fits.",
            "assistant": f"I am so sorry to hear that, it sounds really hard for you, take care {exchange}.",
        }]})  # fmt: skip


@pytest.mark.parametrize("keep", [True, False])
def test_a_long_dialogue_that_stalls_keeps_the_exchanges_it_passed(tmp_path, keep):
    ctx = make_context(
        tmp_path,
        num_dialogues=1,
        chunk_size=1,
        distributions={"exchanges": {6: 1.0}},
        script={"max_attempts": 1, "write_by": "exchange", "keep_stalled_exchanges": keep},
        synthesize={"sample_rate": 16000, "tts": {"backend": "espeak", "neutral_reference": False}},
        filter={"thresholds": {"check_emotion": False}},
        regenerate={"rounds": 1},
    )
    chat = StallingChat(stall_at=2)
    manifest = build(ctx, chat)
    # round 0 stalls at exchange 3 and keeps a draft; round 1 goes on from it and stalls again: its last chance
    assert chat.calls == [0, 1, 2, 2]
    kept = 2 if keep else 0
    assert manifest["counts"]["exchanges"] == {"planned": 6, "accepted": kept, "rejected": 6 - kept, "failed": 0}
    assert manifest["counts"]["dialogues"] == {"planned": 1, "accepted": 0, "rejected": 1, "failed": 0}
    assert verify_corpus(ctx.out)["rows"] == kept
    data = [r for f in sorted((ctx.out / "data").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    assert [r["exchange_index"] for r in data] == list(range(kept))
    assert all(r["provenance"]["regeneration_round"] == "1" for r in data)
    rejects = [r for f in sorted((ctx.out / "rejects").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    final = sorted((r["exchange_index"], r["stage"]) for r in rejects if r["verdict"] == "rejected")
    assert final == [(k, "script") for k in range(kept, 6)]
    assert all("emoji" in " ".join(r["reasons"]) for r in rejects if r["verdict"] == "rejected")
    assert manifest["counts"]["by_reason"] == {"script: style": 6 - kept}  # emoji is a style finding
