"""The script stage against a server: each dialogue runs its own write -> validate -> judge loop, so one
dialogue's judge request is in flight beside another's writer request, and the replies and verdicts are
those of the round-by-round order."""

from __future__ import annotations

import json
import threading

import httpx
import pytest

from empathy_data.core.errors import InfrastructureError
from empathy_data.runtime.build import script_judges
from empathy_data.stages.script.journal import ReplyJournal
from empathy_data.stages.script.stage import ScriptRun, attempt_seed, write_scripts
from tests.helpers import good_reply, make_context
from tests.test_script_judges import GATE, judgement

JUDGES_ON = {"judge": {"enabled": True, "min_scores": GATE}, "topic": {"enabled": False}}
WORDS = ["", " again", " still", " honestly", " truly", " now", " too", " today"]


class SeededChat:
    """A fake server whose reply is a function of the request's seed only (as a real server's is), so
    any order of requests gives the same replies. Some seeds get malformed replies or low judgements.
    Counts writer and judge requests in flight."""

    def __init__(self, hold_writer=None, fail_seed: int | None = None):
        self.lock = threading.Lock()
        self.in_flight = {"writer": 0, "judge": 0}
        self.stats = {"judged_beside_writer": 0}  # shared with the judge's view (with_sampling)
        self.judge_seen = threading.Event()
        self.writer_held = threading.Event()  # a held writer request is in flight
        self.holding = hold_writer is not None
        self.hold_writer = hold_writer or (lambda seed: False)
        self.fail_seed = fail_seed
        self.seeds: list[int] = []
        self.sampling: dict = {}

    @property
    def identity(self) -> dict:
        return {"backend": "seeded", **self.sampling}

    def with_sampling(self, **settings):
        view = SeededChat.__new__(SeededChat)
        view.__dict__.update(self.__dict__)
        view.sampling = settings
        return view

    def complete(self, messages, schema, seed):
        kind = "writer" if "exchanges" in schema["properties"] else "judge"
        with self.lock:
            self.seeds.append(seed)
            self.in_flight[kind] += 1
            if kind == "judge" and self.in_flight["writer"]:
                self.stats["judged_beside_writer"] += 1
        try:
            if kind == "judge":
                self.judge_seen.set()
                return judgement(emotion=1) if seed % 4 == 0 else judgement()
            if seed == self.fail_seed:
                raise httpx.ConnectError("connection refused")
            if self.hold_writer(seed):
                self.writer_held.set()
                self.judge_seen.wait(timeout=30)  # set at once when pipelined; the bound only ends a broken run
            elif self.holding:  # the one free writer answers once a held one is in flight (threads start late under load)
                self.writer_held.wait(timeout=30)
            if seed % 5 == 0:
                return "{not json"
            word = WORDS[seed % len(WORDS)]
            reply = good_reply(schema["properties"]["exchanges"]["minItems"])
            return reply.replace("awful today", f"awful today{word}").replace("hard for you", f"hard for you{word}")
        finally:
            with self.lock:
                self.in_flight[kind] -= 1


def write(ctx, chat, specs, max_in_flight, journal=None, write_by="auto"):
    cfg = ctx.config.script
    return write_scripts(specs, ScriptRun(chat, ctx.prompts, cfg.validation, max_attempts=3, max_in_flight=max_in_flight, write_by=write_by, journal=journal, exchange_mode_from=3, judges=script_judges(ctx, chat)))  # fmt: skip


def test_a_judge_request_is_in_flight_beside_another_dialogues_writer_request(tmp_path):
    ctx = make_context(tmp_path, script=JUDGES_ON)
    specs = [ctx.planner.spec(i) for i in range(3)]
    first = attempt_seed(specs[0].dialogue_id, 0)
    chat = SeededChat(hold_writer=lambda seed: seed != first)  # others write until a judge request is seen
    write(ctx, chat, specs, max_in_flight=2, write_by="dialogue")
    assert chat.stats["judged_beside_writer"] > 0  # round by round, every judge request waits for all writers: 0


def test_pipelined_and_round_by_round_give_the_same_scripts_outcomes_and_journal(tmp_path):
    mixed = {"exchanges": {1: 0.25, 2: 0.25, 3: 0.25, 4: 0.25}}
    ctx = make_context(tmp_path, script=JUDGES_ON, num_dialogues=8, chunk_size=8, distributions=mixed)
    specs = [ctx.planner.spec(i) for i in range(8)]
    assert {s.num_exchanges < 3 for s in specs} == {True, False}  # both write_by modes of "auto" take part
    results = {}
    for max_in_flight in (1, 4):
        chat = SeededChat()
        journal = ReplyJournal(tmp_path / f"journal-{max_in_flight}.jsonl")
        scripts, outcomes = write(ctx, chat, specs, max_in_flight, journal)
        lines = [json.loads(line) for line in journal.path.read_text().splitlines()]
        results[max_in_flight] = (
            sorted(s.model_dump_json() for s in scripts),
            sorted(o.model_dump_json() for o in outcomes),
            sorted(json.dumps(line, sort_keys=True) for line in lines),
            sorted(chat.seeds),
        )
    assert results[1] == results[4]
    scripts, outcomes, _, _ = results[4]
    assert scripts and outcomes  # the seeds' malformed replies and low judgements ended some dialogues


def test_an_infrastructure_fault_stops_every_pipelined_dialogue_and_is_raised(tmp_path):
    ctx = make_context(tmp_path, script=JUDGES_ON, num_dialogues=8, chunk_size=8)
    specs = [ctx.planner.spec(i) for i in range(8)]
    chat = SeededChat(fail_seed=attempt_seed(specs[1].dialogue_id, 0))
    journal = ReplyJournal(tmp_path / "journal.jsonl")
    with pytest.raises(InfrastructureError, match="connection refused"):
        write(ctx, chat, specs, max_in_flight=2, journal=journal, write_by="dialogue")
    # Nothing after the fault: at most the two dialogues in flight and the one that failed sent anything.
    assert len(chat.seeds) < 2 * 3 + 2
    assert journal.sent == len(chat.seeds) - 1  # every reply that arrived is journaled
