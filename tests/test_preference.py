"""`empathy-recipe export --format preference`: pairs from a build's regeneration versions and contrast groups,
in TRL's DPO layout, every chosen reply kept by the build and every rejected one not."""

from __future__ import annotations

import json
import re

import soundfile as sf
from empathy_recipe.corpus import Corpus
from empathy_recipe.preference import PairRules, export_preference

from tests.helpers import make_context
from tests.test_contrast import VoiceChat, contrast_context
from tests.test_regenerate import build


class MumbledReplyChat:
    """Round 0's replies to dialogues 0 and 2 are mumbled (the test ASR hears noise: assistant.wer fails); the
    user's words of dialogue 0 stay the same in round 1, those of dialogue 2 change."""

    def __init__(self, ctx):
        self.index_of = {ctx.planner.spec(i).dialogue_id: i for i in range(ctx.config.num_dialogues)}

    @property
    def identity(self) -> dict:
        return {"backend": "fake", "model": "fake"}

    def complete(self, messages, schema, seed):
        dialogue_id, draft = re.search(r"Conversation (\S+), draft (\d+)\.", messages[0]["content"]).groups()
        index, first = self.index_of[dialogue_id], draft == "1"
        words = "again " if index == 2 and not first else ""
        reply = "mumble mumble, whatever" if first and index in (0, 2) else f"That sounds hard, I am here with you {index}."
        return json.dumps({"exchanges": [{
            "user": f"My plans fell apart {words}today and I feel awful about it, number {index}.",
            "reasoning": "The person sounds sad about plans falling apart, so a comforting reply fits.",
            "assistant": reply,
        }]})  # fmt: skip


def test_regeneration_pairs_keep_the_kept_reply_as_chosen_and_the_replaced_one_as_rejected(tmp_path):
    ctx = make_context(
        tmp_path, num_dialogues=4, chunk_size=2, distributions={"exchanges": {1: 1.0}}, script={"max_attempts": 1},
        synthesize={"sample_rate": 16000, "tts": {"backend": "espeak", "neutral_reference": False}},
        filter={"thresholds": {"check_emotion": False}}, regenerate={"rounds": 1},
        export={"near_duplicate_threshold": None, "splits": {"train": 1.0}},
    )  # fmt: skip
    manifest = build(ctx, MumbledReplyChat(ctx))
    assert manifest["counts"]["regeneration"]["exchanges_replaced"] == 2
    result = export_preference(Corpus.open(ctx.out), tmp_path / "pref", PairRules(sources=("regeneration",)))
    lines = [json.loads(x) for x in (tmp_path / "pref" / "train.jsonl").read_text().splitlines()]
    assert result["pairs"] == len(lines) == 2 and result["pairs_by_source"] == {"regeneration": 2}
    for line in lines:
        assert [m["role"] for m in line["prompt"]] == ["system", "user"]
        assert line["chosen"][0]["content"].startswith("That sounds hard")  # the version the build kept
        assert line["rejected"][0]["content"] == "mumble mumble, whatever"  # the version it replaced
        assert line["why"].startswith("assistant.wer") and (line["chosen_round"], line["rejected_round"]) == ("1", "0")
        assert sf.info(line["audio"]).samplerate == 16000
    same = {line["dialogue_id"]: line["rejected_user_text"] == line["prompt"][-1]["content"] for line in lines}
    assert sorted(same.values()) == [False, True]
    # only the versions whose user said the same words, on request
    narrow = export_preference(Corpus.open(ctx.out), tmp_path / "same", PairRules(sources=("regeneration",), same_words_only=True))
    assert narrow["pairs"] == 1 and narrow["skipped_by_reason"] == {"regeneration: other words": 1}
    # a user-side reason does not make a replaced reply a rejected one
    none = export_preference(Corpus.open(ctx.out), tmp_path / "none", PairRules(sources=("regeneration",), reasons=("user.",)))
    assert none["pairs"] == 0 and none["skipped_by_reason"] == {"regeneration: no qualifying reason": 2}


def test_contrast_pairs_answer_the_same_words_with_the_reply_for_another_voice(tmp_path):
    ctx = contrast_context(tmp_path, n=3, export={"splits": {"train": 1.0}})
    build(ctx, VoiceChat(ctx))
    result = export_preference(Corpus.open(ctx.out), tmp_path / "pref", PairRules(sources=("contrast",)))
    lines = [json.loads(x) for x in (tmp_path / "pref" / "train.jsonl").read_text().splitlines()]
    assert result["pairs"] == len(lines) == 6  # 3 members x the 2 others' replies
    for line in lines:
        emotion = line["user_emotion"]
        assert emotion in line["chosen"][0]["content"] and emotion not in line["rejected"][0]["content"]
        assert line["rejected_user_text"] == line["prompt"][-1]["content"]  # the same words
        assert line["why"].startswith("written for a ") and line["why"].endswith(f"sounds {emotion}")
    assert json.loads((tmp_path / "pref" / "export.json").read_text())["pairs_by_source"] == {"contrast": 6}


def test_the_pairs_are_what_trls_dpo_data_helpers_read(tmp_path):
    from datasets import load_dataset
    from empathy_recipe.tiny import build_tokenizer
    from trl.data_utils import is_conversational, maybe_apply_chat_template

    ctx = contrast_context(tmp_path, n=3, export={"splits": {"train": 1.0}})
    build(ctx, VoiceChat(ctx))
    export_preference(Corpus.open(ctx.out), tmp_path / "pref", PairRules(sources=("contrast",)))
    dataset = load_dataset("json", data_files=str(tmp_path / "pref" / "train.jsonl"), split="train")
    example = dataset[0]
    assert is_conversational(example)
    texts = [m["content"] for key in ("prompt", "chosen", "rejected") for m in example[key]]
    tokenizer = build_tokenizer(texts)
    applied = maybe_apply_chat_template({k: example[k] for k in ("prompt", "chosen", "rejected")}, tokenizer)
    assert example["prompt"][-1]["content"].lower().split()[0] in applied["prompt"]
    assert applied["chosen"] != applied["rejected"] and "<|im_end|>" in applied["chosen"]
