"""Corpus-level export rules: near-duplicate scripts, exchanges with an unclean history, split sizes."""

from __future__ import annotations

import json
import re

import pyarrow.parquet as pq
import pytest

from empathy_data.stages.export.splits import assign_splits
from empathy_data.tools.verify import verify_corpus
from tests.helpers import make_context
from tests.test_regenerate import build

TOPICS = ["garden", "violin", "bicycle", "kitchen", "passport", "umbrella", "painting", "library"]


class TopicChat:
    """Each dialogue about its own topic, unless `same` maps it to another dialogue's topic (a near copy);
    'mumble' exchanges are heard as noise by the test ASR, so the filter rejects them."""

    def __init__(self, ctx, same: dict[int, int] | None = None, mumble: set[tuple[int, int]] | None = None):
        self.index_of = {ctx.planner.spec(i).dialogue_id: i for i in range(ctx.config.num_dialogues)}
        self.same, self.mumble = same or {}, mumble or set()

    @property
    def identity(self) -> dict:
        return {"backend": "fake", "model": "fake"}

    def complete(self, messages, schema, seed):
        dialogue_id = re.search(r"Conversation (\S+), draft", messages[0]["content"]).group(1)
        index = self.index_of[dialogue_id]
        topic = TOPICS[self.same.get(index, index)]
        n = schema["properties"]["exchanges"]["minItems"]
        exchanges = [
            {
                "user": f"{'mumble ' if (index, i) in self.mumble else ''}I keep thinking about my {topic} and "
                f"what happened with the {topic} this week, part {i}.",
                "reasoning": f"The user talks about the {topic} and sounds sad, so a gentle reply fits well.",
                "assistant": f"That {topic} clearly matters to you, and it is fine to feel this way, step {i}.",
            }
            for i in range(n)
        ]
        return json.dumps({"exchanges": exchanges})


def ctx_for(tmp_path, **export):
    return make_context(
        tmp_path, num_dialogues=4, chunk_size=2,
        distributions={"exchanges": {2: 1.0}},
        script={"max_attempts": 1},
        synthesize={"sample_rate": 16000, "tts": {"backend": "espeak", "neutral_reference": False}},
        filter={"thresholds": {"check_emotion": False}},
        export={"split_by": "dialogue", **export},
    )  # fmt: skip


def rows(out, folder):
    return [r for f in sorted((out / folder).glob("*.parquet")) for r in pq.read_table(f).drop_columns(
        [c for c in ("user_audio", "assistant_audio") if c in pq.read_schema(f).names]).to_pylist()]  # fmt: skip


def test_a_near_copy_of_an_earlier_script_is_rejected_and_the_first_kept(tmp_path):
    ctx = ctx_for(tmp_path)
    manifest = build(ctx, TopicChat(ctx, same={3: 1}))
    first, copy = ctx.planner.spec(1).dialogue_id, ctx.planner.spec(3).dialogue_id
    data = rows(ctx.out, "data")
    assert {r["dialogue_id"] for r in data} == {ctx.planner.spec(i).dialogue_id for i in (0, 1, 2)}
    rejected = [r for r in rows(ctx.out, "rejects") if r["dialogue_id"] == copy]
    assert len(rejected) == 2 and all(r["reasons"] == [f"near_duplicate: the script nearly repeats {first}"]
                                      for r in rejected)  # fmt: skip
    assert manifest["counts"]["by_reason"] == {"near_duplicate": 2}
    assert manifest["diversity"]["near_duplicates"] == 1 and manifest["diversity"]["dialogues"] == 4
    assert 0 < manifest["diversity"]["distinct_2"] <= 1
    assert "near_duplicate" in (ctx.out / "README.md").read_text()
    verify_corpus(ctx.out)


def test_near_duplicate_check_can_be_turned_off(tmp_path):
    ctx = ctx_for(tmp_path, near_duplicate_threshold=None)
    manifest = build(ctx, TopicChat(ctx, same={3: 1}))
    assert manifest["counts"]["exchanges"]["accepted"] == 8


@pytest.mark.parametrize("policy", ["reject", "keep"])
def test_an_exchange_after_a_rejected_one_is_flagged_and_left_out_by_default(tmp_path, policy):
    ctx = ctx_for(tmp_path, unclean_history=policy)
    manifest = build(ctx, TopicChat(ctx, mumble={(2, 0)}))
    unclean = ctx.planner.spec(2).dialogue_id
    data = rows(ctx.out, "data")
    assert all(r["history_clean"] for r in data if r["dialogue_id"] != unclean)
    second = [r for r in data + rows(ctx.out, "rejects") if r["dialogue_id"] == unclean and r["exchange_index"] == 1]
    assert len(second) == 1 and second[0]["history_clean"] is False
    if policy == "reject":
        assert second[0]["reasons"] == ["history: exchange 1 was not accepted"]
        assert manifest["counts"]["by_reason"] == {"history": 1, "user.wer": 1}
        assert manifest["counts"]["exchanges"]["accepted"] == 6
    else:
        assert second[0] in data and manifest["counts"]["exchanges"]["accepted"] == 7
    verify_corpus(ctx.out)


def test_whole_units_fill_splits_as_close_to_the_ratios_as_they_allow():
    ratios = {"train": 0.8, "validation": 0.1, "test": 0.1}
    units = {f"spk{i}": n for i, n in enumerate([5, 3, 2, 2, 1, 1, 1, 0])}
    placement = assign_splits(units, ratios, "s")
    sizes = {s: sum(n for u, n in units.items() if placement[u] == s) for s in ratios}
    assert sizes == {"train": 12, "validation": 2, "test": 1} or sizes == {"train": 12, "validation": 1, "test": 2}
    assert set(placement) == set(units)
    # ten single-row units: 8 / 1 / 1 exactly (a hash would often give 10 / 0 / 0 or 6 / 3 / 1)
    placement = assign_splits({f"d{i}": 1 for i in range(10)}, ratios, "s")
    assert sorted(list(placement.values()).count(s) for s in ratios) == [1, 1, 8]


def test_export_resumes_per_chunk_and_names_parts_as_shards_without_reading_audio(tmp_path, monkeypatch):
    """Each chunk's parts are written once (work/export/); a re-export writes again only a chunk whose
    parts are gone, gives the same shards, and the final step reads no audio (only text columns)."""
    from empathy_data.stages.export import exporter
    from tests.test_resume import shard_digests

    ctx = ctx_for(tmp_path)
    manifest = build(ctx, TopicChat(ctx))
    digests = shard_digests(ctx.out)
    parts = sorted((ctx.out / "work" / "export").iterdir())
    assert len(parts) == ctx.planner.num_chunks == 2
    # every data shard is a chunk's part under its shard name (a hard link: no copy)
    shard = ctx.out / "data" / manifest["shards"]["data"]["train"][0]["file"]
    assert shard.stat().st_nlink == 2

    kept_part = parts[0] / "parts.json"
    kept_mtime = kept_part.stat().st_mtime_ns
    ctx.store.remove(f"work/export/{parts[1].name}")
    read_audio = []
    plan = exporter.plan_export(ctx)
    monkeypatch.setattr(exporter, "_audio", lambda *a: read_audio.append(a) or exporter_audio(*a))
    infos = [exporter.export_chunk(ctx, c, plan.for_chunk(ctx, c)) for c in ctx.chunk_ranges()]
    assert [info["cached"] for info in infos] == [True, False]
    assert read_audio and all(a[1].startswith("work/synthesize/c00001") for a in read_audio)  # chunk 2 only
    read_audio.clear()
    again = exporter.finish_export(ctx, plan).to_json()
    assert not read_audio
    assert kept_part.stat().st_mtime_ns == kept_mtime
    assert shard_digests(ctx.out) == digests
    assert again["counts"] == manifest["counts"] and again["diversity"] == manifest["diversity"]
    verify_corpus(ctx.out)


def exporter_audio(ctx, chunk_key, name):
    return {"bytes": ctx.store.read_bytes(f"{chunk_key}/{name}"), "path": name}


def test_no_shard_holds_more_than_rows_per_shard_and_none_spans_two_chunks(tmp_path):
    ctx = ctx_for(tmp_path, rows_per_shard=3, splits={"train": 1.0})
    manifest = build(ctx, TopicChat(ctx))
    shards = manifest["shards"]["data"]["train"]
    assert [s["rows"] for s in shards] == [3, 1, 3, 1]  # two chunks of 2 dialogues x 2 exchanges
    assert sum(s["rows"] for s in shards) == manifest["counts"]["exchanges"]["accepted"] == 8
    chunk_of = {ctx.planner.spec(i).dialogue_id: i // 2 for i in range(4)}
    for shard in shards:
        table = pq.read_table(ctx.out / "data" / shard["file"], columns=["dialogue_id"])
        assert len({chunk_of[d] for d in table.column("dialogue_id").to_pylist()}) == 1
    assert verify_corpus(ctx.out)["rows"] == 8
