"""Contrast groups: one user text said in K planned emotions and/or by K voices, each with its own reply,
written once per group, kept in one split, carried through export, the card and the recipe."""

from __future__ import annotations

import json
import re

import pyarrow.parquet as pq
import pytest

from empathy_data.core.errors import ConfigError
from empathy_data.tools.verify import verify_corpus
from tests.helpers import make_context
from tests.test_regenerate import build

WORDS = "I just got off the phone with my brother and I keep thinking about what he told me."


class VoiceChat:
    """The group's first member writes WORDS; every reply names the emotion its prompt asks it to answer,
    so three members give three different replies. `fail` lists plan indices whose every reply is malformed."""

    def __init__(self, ctx, fail: set[int] = frozenset()):
        self.index_of = {ctx.planner.spec(i).dialogue_id: i for i in range(ctx.config.num_dialogues)}
        self.fail = fail
        self.calls: list[tuple[int, str]] = []

    @property
    def identity(self) -> dict:
        return {"backend": "fake", "model": "fake"}

    def complete(self, messages, schema, seed):
        index = self.index_of[re.search(r"Conversation (\S+), draft", messages[0]["content"]).group(1)]
        self.calls.append((index, messages[1]["content"]))
        if index in self.fail:
            return "not json"
        emotion = re.search(r"sound(?:s|ing) (\w+)", messages[1]["content"]).group(1)
        return json.dumps({"exchanges": [{
            "user": WORDS,
            "reasoning": f"The person talks about a call with a brother and sounds {emotion}, so this reply fits.",
            "assistant": f"You sound {emotion} about that call, and I am here to listen to all of it with you.",
        }]})  # fmt: skip


def contrast_context(tmp_path, by="emotion", size=3, n=6, **extra):
    return make_context(
        tmp_path, num_dialogues=n, chunk_size=size * 2, contrast={"by": by, "size": size},
        distributions={"exchanges": {1: 0.5, 2: 0.5}}, script={"max_attempts": 1},
        synthesize={"sample_rate": 16000, "tts": {"backend": "espeak", "neutral_reference": False}},
        filter={"thresholds": {"check_emotion": False}}, regenerate={"rounds": 1}, **extra,
    )  # fmt: skip


def test_a_group_shares_scenario_and_user_with_distinct_emotions_and_one_exchange(tmp_path):
    ctx = contrast_context(tmp_path, n=12)
    for group in range(4):
        specs = [ctx.planner.spec(group * 3 + j) for j in range(3)]
        roles = [s.contrast for s in specs]
        assert [r.member for r in roles] == [0, 1, 2] and len({r.group_id for r in roles}) == 1
        assert len({s.scenario for s in specs}) == 1 and len({s.user.id for s in specs}) == 1
        assert len({s.turns[0].emotion for s in specs}) == 3 and all(s.num_exchanges == 1 for s in specs)
        assert [v.emotion for v in roles[0].variants] == [s.turns[0].emotion for s in specs]
    assert ctx.planner.spec(5) == ctx.planner.spec(5)  # still a pure function of (seed, index)
    hashes = {ctx.planner.spec(i).dialogue_id[4:] for i in range(12)}
    assert not hashes & {ctx.planner.spec(i).contrast.group_id[4:] for i in range(12)}  # no id looks like another's


def test_a_group_by_speaker_has_voices_of_other_genders_and_ages(tmp_path):
    ctx = contrast_context(tmp_path, by="speaker")
    specs = [ctx.planner.spec(j) for j in range(3)]
    assert len({(s.user.gender, s.user.age_group) for s in specs}) == 3 and len({s.turns[0].emotion for s in specs}) == 1


def test_a_group_size_that_splits_a_chunk_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="must divide chunk_size"):
        make_context(tmp_path, chunk_size=4, contrast={"by": "emotion", "size": 3})


def test_a_group_of_three_emotions_shares_the_words_with_three_replies_in_one_split(tmp_path):
    ctx = contrast_context(tmp_path, export={"near_duplicate_threshold": 0.8})
    chat = VoiceChat(ctx)
    manifest = build(ctx, chat)
    rows = [r for f in sorted((ctx.out / "data").glob("*.parquet")) for r in
            pq.read_table(f, columns=["group_id", "user_text", "assistant_text", "split", "user_emotion"]).to_pylist()]  # fmt: skip
    assert len(rows) == 6
    for group in {r["group_id"] for r in rows}:
        members = [r for r in rows if r["group_id"] == group]
        assert len(members) == 3 and {r["user_text"] for r in members} == {WORDS}
        assert len({r["assistant_text"] for r in members}) == 3 and len({r["split"] for r in members}) == 1
        assert all(r["user_emotion"] in r["assistant_text"] for r in members)  # each reply for its own voice
    # the first member's prompt names every voice; the others are given the words and write the reply only
    prompts = dict(chat.calls)
    assert "These exact words will be said by each of" in prompts[0] and WORDS not in prompts[0]
    assert all(WORDS in prompts[i] and "said this out loud" in prompts[i] for i in (1, 2, 4, 5))
    assert manifest["contrast"] == {"by": "emotion", "size": 3, "groups": 2, "complete": 2, "partial": 0, "empty": 0}
    assert "| 2 | 2 | 0 | 0 |" in (ctx.out / "README.md").read_text()
    verify_corpus(ctx.out)


def test_a_group_whose_words_were_not_written_rejects_its_other_members(tmp_path):
    ctx = contrast_context(tmp_path)
    manifest = build(ctx, VoiceChat(ctx, fail={3}))
    rejects = [r for f in sorted((ctx.out / "rejects").glob("*.parquet")) for r in
               pq.read_table(f, columns=["dialogue_id", "group_id", "reasons", "verdict"]).to_pylist()]  # fmt: skip
    group = ctx.planner.spec(3).contrast.group_id
    assert sorted(r["verdict"] for r in rejects if r["group_id"] == group) == ["failed", "rejected", "rejected"]
    assert [r["reasons"] for r in rejects if r["verdict"] == "rejected"] == [["script: contrast: the group's words were not written"]] * 2
    assert manifest["counts"]["dialogues"] == {"planned": 6, "accepted": 3, "rejected": 2, "failed": 1}
    assert manifest["contrast"]["complete"] == 1 and manifest["contrast"]["empty"] == 1
