"""The work layout: cache keys per chunk and round, chunk output names, and keys that follow a growing plan."""

from __future__ import annotations

from dataclasses import dataclass, field

from empathy_data.store.chunk_store import LocalStore
from empathy_data.store.work_layout import STAGES, WorkLayout, stage_keys

SETTINGS = {"script": {"llm": "a"}, "synthesize": {"tts": "b"}, "filter": {"asr": "c"}}


@dataclass
class GrowingPlan:
    key: str = "plan"
    wheres: list[dict] = field(default_factory=lambda: [{"range": [0, 2]}, {"range": [2, 3]}])

    @property
    def num_chunks(self) -> int:
        return len(self.wheres)

    def chunk_where(self, chunk_index: int) -> dict:
        return self.wheres[chunk_index]


def test_each_key_chains_its_upstream_and_rounds_follow_the_previous_filter():
    keys = stage_keys(GrowingPlan(), SETTINGS, range(2))
    assert [len(keys[s][c]) for s in STAGES for c in (0, 1)] == [2] * 6
    assert len({k for s in STAGES for c in (0, 1) for k in keys[s][c]}) == 12  # every output its own name
    one_round = stage_keys(GrowingPlan(), SETTINGS, range(1))
    assert all(one_round[s][c][0] == keys[s][c][0] for s in STAGES for c in (0, 1))  # more rounds reuse round 0
    changed = stage_keys(GrowingPlan(), {**SETTINGS, "synthesize": {"tts": "other"}}, range(1))
    assert changed["script"] == one_round["script"]
    assert changed["synthesize"][0] != one_round["synthesize"][0] and changed["filter"][0] != one_round["filter"][0]


def test_keys_follow_the_plan_when_top_up_appends_chunks(tmp_path):
    plan = GrowingPlan()
    layout = WorkLayout(LocalStore(tmp_path), plan, SETTINGS, range(1))
    before = layout.keys
    plan.wheres = [*plan.wheres, {"topup": [[3, "en", "female", "adult", "sad", 2]]}]
    after = layout.keys
    assert after is not before and layout.chunks() == [0, 1, 2]
    assert all(after[s][c] == before[s][c] for s in STAGES for c in (0, 1))  # finished chunks keep their names
    assert layout.chunk_key("synthesize", 2) == f"work/synthesize/c00002-{after['synthesize'][2][0]}"


def test_chunk_outputs_are_found_by_their_key_and_others_are_stale(tmp_path):
    store = LocalStore(tmp_path)
    layout = WorkLayout(store, GrowingPlan(), SETTINGS, range(2))
    assert layout.chunk_key("script", 1, 1) == f"work/script/c00001-r1-{layout.key('script', 1, 1)}.jsonl"
    assert layout.records_key("synthesize", 0).endswith(f"c00000-{layout.key('synthesize', 0)}/records.jsonl")
    assert not layout.is_done("filter", 0, 1)
    store.write_rows(layout.chunk_key("filter", 0, 1), [])
    assert layout.is_done("filter", 0, 1) and not layout.is_done("filter", 0, 0)
    store.write_rows("work/filter/c00000-0123456789abcdef.jsonl", [])  # another config's output
    assert layout.stale_work() == ["work/filter/c00000-0123456789abcdef.jsonl"]
