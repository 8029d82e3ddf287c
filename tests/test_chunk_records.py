"""Chunk outputs are JSONL rows: every record kind comes back from its row as it went in."""

import json

from empathy_data.backends import registry as backends
from empathy_data.records.chunk_records import KINDS, ChunkRecords, Exchange, from_row, to_row
from empathy_data.records.schema import Outcome, Scores
from empathy_data.runtime.build import run_script_chunk, run_synthesize_chunk
from tests.helpers import FakeChat, make_context


def through_json(rows: list[dict]) -> list[dict]:
    return [json.loads(json.dumps(row)) for row in rows]


def test_every_kind_of_record_survives_its_row(tmp_path):
    ctx = make_context(tmp_path)
    run_script_chunk(ctx, 0, lambda: FakeChat())
    run_synthesize_chunk(ctx, 0, lambda: backends.tts_backend(ctx.config.synthesize))
    backends.release(["synthesize"])
    stored = list(ctx.store.read_rows(ctx.layout.records_key("synthesize", 0)))
    records = ChunkRecords.from_rows(through_json(stored))
    user = Scores(dialogue_id="d", turn_index=0, asr_text="hi", wer=0.125, checks={"wer": "pass"}, verdict="accepted")
    reply = Scores(dialogue_id="d", turn_index=1, verdict="rejected", reasons=["assistant.wer"], checks={"wer": "fail"})
    exchange = Exchange(index=9, dialogue_id="d", exchange_index=0, verdict="rejected", reasons=["assistant.wer"],
                        user_scores=user, assistant_scores=reply)  # fmt: skip
    script = records.scripts[0]
    failed = Outcome(dialogue_id=script.spec.dialogue_id, index=script.spec.index, stage="synthesize",
                     verdict="failed", reasons=["tts: RuntimeError: no audio"], spec=script.spec, script=script)  # fmt: skip
    items = [*records.items, failed, exchange]
    assert {type(item) for item in items} == set(KINDS.values())  # script, utterance, outcome, exchange
    again = [from_row(row) for row in through_json([to_row(item) for item in items])]
    assert again == items
    assert [to_row(item) for item in records.items] == stored
    assert ChunkRecords(tuple(again)).counts() == ChunkRecords(tuple(items)).counts()
