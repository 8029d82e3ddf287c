"""`empathy-data eval-set`: a speaker-disjoint, emotion-balanced held-out set in URO-Bench's layout."""

import json

import soundfile as sf
from empathy_recipe import labels as recipe_labels

from empathy_data.core import labels
from tests.cli_helpers import run_cli
from tests.corpus_builder import make_corpus, row


def corpus(tmp_path):
    data = [
        row("d0", 0, "sad", speaker="spk-a"),
        row("d0", 1, "angry", speaker="spk-a"),
        row("t0", 0, "sad", split="test", speaker="spk-t0"),
        row("t1", 0, "sad", split="test", speaker="spk-t1"),
        row("t5", 0, "sad", split="test", speaker="spk-t5"),
        row("t2", 0, "happy", split="test", speaker="spk-t2"),
        row("t6", 0, "happy", split="test", speaker="spk-t6"),
        row("t3", 0, "happy", split="test", speaker="spk-a"),  # also speaks in train: not held out
        row("t5", 1, "sad", split="test", speaker="spk-t5"),  # a later exchange: its history is not replayed
    ]
    return make_corpus(tmp_path, data, [])


def test_eval_set_is_speaker_disjoint_balanced_and_in_uro_bench_layout(tmp_path):
    out = corpus(tmp_path)
    done = run_cli("eval-set", str(out), "--to", str(tmp_path / "eval"))
    assert done.returncode == 0, done.stderr
    lines = [json.loads(x) for x in (tmp_path / "eval" / "test.jsonl").read_text().splitlines()]
    assert [x["key"] for x in lines] == ["t2-00", "t6-00", "t0-00", "t1-00"]  # 2 per emotion, the rarest's count
    assert {x["emotion"] for x in lines} == {"sad", "happy"}
    assert not {x["speaker_id"] for x in lines} & {"spk-a"}  # nobody who speaks in train
    for x in lines:
        assert set(x) >= {"source_wav", "source_text", "target_text", "emotion"}
        audio, rate = sf.read(tmp_path / "eval" / x["source_wav"])
        assert rate == 16000 and len(audio) == rate  # the user turn (1 s in the fixture)
        assert x["source_text"] == f"user text {x['key'][:2]} 0" and x["target_text"] == f"assistant text {x['key'][:2]} 0"
    echat = [json.loads(x) for x in (tmp_path / "eval" / "echat.jsonl").read_text().splitlines()]
    assert [e["key"] for e in echat] == [x["key"] for x in lines]
    for e, x in zip(echat, lines, strict=True):
        assert e["wav"] == x["source_wav"] and e["txt"] == x["target_text"] and e["extra"]["question"] == x["source_text"]
        assert e["extra"]["q_emotion"] == {"sad": "<SAD>", "happy": "<HAPPY>"}[x["emotion"]]
        assert e["extra"]["gender"] in ("<FEMALE>", "<MALE>") and e["extra"]["age"] in ("<CHILD>", "<ADULT>", "<OLD>")
        assert e["extra"]["source"] == "synthetic"
    summary = json.loads((tmp_path / "eval" / "eval.json").read_text())
    assert summary["items"] == 4 and summary["per_emotion"] == 2 and summary["speakers"] == 4
    assert summary["left_out"] == {"later_exchange": 1, "speaker_in_another_split": 1, "over_balance": 1}


def test_per_emotion_caps_and_a_missing_split_is_one_line(tmp_path):
    out = corpus(tmp_path)
    done = run_cli("eval-set", str(out), "--to", str(tmp_path / "one"), "--per-emotion", "1")
    assert done.returncode == 0, done.stderr
    assert len((tmp_path / "one" / "test.jsonl").read_text().splitlines()) == 2
    done = run_cli("eval-set", str(out), "--to", str(tmp_path / "none"), "--split", "dev")
    assert done.returncode != 0 and "--split dev: not a split" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "none").exists()


def test_the_echat_tags_are_the_recipes_osum_tags():
    """Two packages, one vocabulary: the eval set's EChat labels and the recipe's OSUM-EChat export agree."""
    assert labels.ECHAT_EMOTION == recipe_labels.OSUM_EMOTION
    assert labels.ECHAT_AGE == recipe_labels.OSUM_AGE and labels.ECHAT_GENDER == recipe_labels.OSUM_GENDER


def test_a_third_of_each_emotion_is_real_where_the_build_mixed_in_recordings(tmp_path):
    data = [row(f"s{i}", 0, e, split="test", speaker=f"spk-s{i}{e}") for i in range(4) for e in ("sad", "happy")]
    data += [row(f"r{i}", 0, e, split="test", speaker=f"iemo:s{i}{e}", source="real") for i in range(3) for e in ("sad", "happy")]
    out = make_corpus(tmp_path, data, [])
    done = run_cli("eval-set", str(out), "--to", str(tmp_path / "eval"), "--per-emotion", "6")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(x) for x in (tmp_path / "eval" / "test.jsonl").read_text().splitlines()]
    for emotion in ("sad", "happy"):
        sources = sorted(x["source"] for x in lines if x["emotion"] == emotion)
        assert sources == ["real", "real"] + ["synthetic"] * 4  # round(6 / 3) real, the rest synthetic
    assert json.loads((tmp_path / "eval" / "eval.json").read_text())["real"] == 4
    # without enough synthetic items, real ones fill in (and the other way round)
    done = run_cli("eval-set", str(out), "--to", str(tmp_path / "all"), "--per-emotion", "7")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(x) for x in (tmp_path / "all" / "test.jsonl").read_text().splitlines()]
    assert sum(x["source"] == "real" for x in lines) == 6 and len(lines) == 14
