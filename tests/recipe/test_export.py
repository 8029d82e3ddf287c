import json
import sys

import pytest
from empathy_recipe import corpus as corpus_mod
from empathy_recipe.cli import main
from empathy_recipe.corpus import Corpus
from empathy_recipe.exporters import Options
from empathy_recipe.exporters.run import export
from empathy_recipe.textlen import TextCounter

from tests.recipe.corpus_builder import build, row, simple
from tests.recipe.loader_checks import (
    check_blsp_line,
    check_opens2s_line,
    check_osum_line,
    load_like_recipe,
    osum_chat_seq_tokens,
    osum_dynamic_batches,
    read_jsonl,
)


def run_cli(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["empathy-recipe", *args])
    code = 0
    try:
        main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def corpus(tmp_path):
    rows = [row(i) for i in range(10)] + [row(50, exchange=1), row(51, exchange=2)]
    return Corpus.open(build(tmp_path / "corpus", {"train": rows, "test": [row(100 + i, "test") for i in range(4)]}))


def test_opens2s_text_only_every_line_passes_the_loader(corpus, tmp_path):
    result = export(corpus, "opens2s", tmp_path / "o", Options(no_units=True, reasoning=True))
    assert result["rows_written"] == 16 and result["rows_skipped"] == 0
    assert result["units"] == {"tokenizer": None, "text_only": True}
    for split, n in (("train", 12), ("test", 4)):
        lines = read_jsonl(tmp_path / "o" / f"{split}.jsonl")
        assert len(lines) == n
        for line in lines:
            check_opens2s_line(line, units=False)
            assert line["messages"][-1]["reasoning_content"].startswith("the user sounds")
        assert len(load_like_recipe(tmp_path / "o" / f"{split}.jsonl")) == n
    by_turns = {len(line["messages"]) for line in read_jsonl(tmp_path / "o" / "train.jsonl")}
    assert by_turns == {2, 4, 6}  # history of exchange 1 and 2 as earlier messages
    deep = [x for x in read_jsonl(tmp_path / "o" / "train.jsonl") if len(x["messages"]) == 6][0]
    assert [m["role"] for m in deep["messages"]] == ["user", "assistant"] * 3
    assert deep["messages"][0]["content"][0]["text"] == "hello there"


def test_osum_text_only_all_tasks(corpus, tmp_path):
    tasks = ("chat", "transcribe", "emotion", "gender", "age")
    result = export(corpus, "osum-echat", tmp_path / "s", Options(no_units=True, tasks=tasks))
    lines = read_jsonl(tmp_path / "s" / "train" / "data.list")
    assert len(lines) == 12 * 5 and result["rows_written"] == 16
    for line in lines:
        check_osum_line(line, units=False)
    assert len({line["key"] for line in lines}) == len(lines)
    emo = [x for x in lines if x["task"] == "<TRANSCRIBE> <EMOTION>"]
    assert len(emo) == 12 and all(x["txt"].endswith(f"<{x['extra']['q_emotion']}>") for x in emo)
    first = [x for x in lines if x["key"] == "d0000-00"][0]
    assert first["task"] == "<S2TCHAT> <THINKER>" and first["extra"]["think_str"] == "the user sounds neutral so answer gently"
    # row 0: neutral, female, child; canonical values in extra, the "<TAG>" form in the understanding targets
    assert {k: first["extra"][k] for k in ("age", "gender", "q_emotion")} == {"age": "CHILD", "gender": "FEMALE", "q_emotion": "NEUTRAL"}
    chat = {x["key"]: x["extra"]["source"] for x in lines if x["task"].startswith("<S2TCHAT>")}
    assert chat["d0003-00"] == "real" and chat["d0000-00"] == "synthetic"  # the row's source, kept
    groups = {x["key"]: x["extra"].get("group_id") for x in lines if x["task"].startswith("<S2TCHAT>")}
    assert groups["d0001-00"] == groups["d0002-00"] == "grp-0" and groups["d0008-00"] is None  # and its contrast group
    by_key = {x["key"]: x for x in lines}
    user_text = by_key["d0000-00-transcribe"]["txt"]
    assert by_key["d0000-00-age"]["txt"] == user_text + "<CHILD>" and by_key["d0000-00-age"]["task"] == "<TRANSCRIBE> <AGE>"
    assert by_key["d0000-00-gender"]["txt"] == user_text + "<FEMALE>"
    assert by_key["d0000-00-emotion"]["txt"] == user_text + "<NEUTRAL>"


def test_osum_understanding_lines_with_angle_brackets_in_the_text_are_skipped(tmp_path):
    rows = [row(0, user_text="i said <hello> to them"), row(1)]
    c = Corpus.open(build(tmp_path / "c", {"train": rows}))
    r = export(c, "osum-echat", tmp_path / "s", Options(no_units=True, tasks=("transcribe", "emotion")))
    assert r["tasks_skipped"] == {"emotion: txt.angle_bracket": 1}
    assert r["rows_written"] == 2 and r["lines"] == {"train/data.list <TRANSCRIBE>": 2, "train/data.list <TRANSCRIBE> <EMOTION>": 1}
    r = export(c, "osum-echat", tmp_path / "s", Options(no_units=True, tasks=("emotion",)))
    assert r["skipped_by_reason"] == {"txt.angle_bracket": 1} and r["rows_written"] == 1


def test_blsp_emo_length_filter_counts_process_dataset_tokens(tmp_path):
    from empathy_recipe.exporters.blsp_emo import SYSTEM, instruction, sequence_tokens

    def words(text):
        return len(text.split())

    # 8 fixed ids around system/user + 8 around the assistant reply (im_end, "\n", im_start, "assistant", "\n",
    # reply, im_end, "\n", endoftext), counted by hand from blsp-emo src/instruction_dataset.py process_dataset
    assert sequence_tokens(words, "sad", "a b c", "d e") == 16 + words(SYSTEM) + words(instruction("sad")) + 3 + 2
    r = row(3, user_emotion="sad", user_text="a b c", assistant_text="d e")
    c = Corpus.open(build(tmp_path / "c", {"train": [r]}))
    exact = sequence_tokens(TextCounter().count, "sad", "a b c", "d e")
    assert export(c, "blsp-emo", tmp_path / "b", Options(max_length=exact))["rows_written"] == 1
    assert export(c, "blsp-emo", tmp_path / "b", Options(max_length=exact - 1))["skipped_by_reason"] == {"tokens.too_long": 1}


def test_blsp_emo_maps_five_emotions_and_skips_the_rest(corpus, tmp_path):
    result = export(corpus, "blsp-emo", tmp_path / "b")
    lines = read_jsonl(tmp_path / "b" / "train.jsonl") + read_jsonl(tmp_path / "b" / "test.jsonl")
    for line in lines:
        check_blsp_line(line)
    emotions = [r["user_emotion"] for _, rows in corpus.iter_row_groups(["user_emotion"]) for r in rows]
    unmapped = sum(e in ("fearful", "disgusted") for e in emotions)
    assert unmapped > 0
    assert result["skipped_by_reason"] == {"emotion.unmapped": unmapped}
    assert len(lines) == result["rows_written"] == len(emotions) - unmapped
    assert len(load_like_recipe(tmp_path / "b" / "train.jsonl")) == len(read_jsonl(tmp_path / "b" / "train.jsonl"))
    assert {line["source"] for line in lines} == {"real", "synthetic"}  # continuations of recordings marked


def test_skip_reasons_per_format(tmp_path):
    rows = [
        row(0, user_seconds=0.3),  # < 0.5 s OpenS2S, < 1 s BLSP, fine for OSUM (>= 0.2 s)
        row(1, user_seconds=0.1),  # too short everywhere
        row(2, user_seconds=31.0),  # > 30 s OpenS2S and BLSP
        row(3, user_audio=None),
        row(7, assistant_text="I'm sorry, but I cannot help with that."),  # i=7: neutral
        row(8, assistant_text="As ChatGPT I think you should rest."),  # i=8: happy
        row(14, user_emotion="fearful"),
    ]
    c = Corpus.open(build(tmp_path / "c", {"train": rows}))
    o = export(c, "opens2s", tmp_path / "o", Options(no_units=True))
    assert o["skipped_by_reason"] == {"user_audio.missing": 1, "user_audio.too_long": 1, "user_audio.too_short": 2}
    b = export(c, "blsp-emo", tmp_path / "b")
    assert b["skipped_by_reason"] == {
        "emotion.unmapped": 1, "output.refusal": 1, "user_audio.missing": 1, "user_audio.too_long": 1,
        "user_audio.too_short": 2,
    }  # fmt: skip
    s = export(c, "osum-echat", tmp_path / "s", Options(no_units=True))
    assert s["skipped_by_reason"] == {"txt.names_other_assistant": 1, "user_audio.missing": 1, "user_audio.too_short": 1}
    for r in (o, b, s):
        assert r["rows_written"] + r["rows_skipped"] == r["corpus_rows"] == 7


def test_export_streams_one_row_group_at_a_time(corpus, tmp_path, monkeypatch):
    sizes = []
    real = corpus_mod.read_group

    def spy(group, columns=None):
        rows = real(group, columns)
        sizes.append(len(rows))
        return rows

    monkeypatch.setattr(corpus_mod, "read_group", spy)
    export(corpus, "blsp-emo", tmp_path / "b")
    assert len(sizes) == len(corpus.row_groups()) > 2 and max(sizes) <= 4


def test_rerun_replaces_cleanly_and_a_failed_run_keeps_the_old_export(corpus, tmp_path, monkeypatch):
    to = tmp_path / "o"
    export(corpus, "opens2s", to, Options(no_units=True))
    (to / "stray.txt").write_text("old")
    first = (to / "train.jsonl").read_text()
    export(corpus, "opens2s", to, Options(no_units=True))
    assert not (to / "stray.txt").exists() and (to / "train.jsonl").read_text() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "o"]

    def boom(*a, **k):
        raise RuntimeError("killed")

    monkeypatch.setattr("empathy_recipe.exporters.opens2s.OpenS2SExporter.lines", boom)
    with pytest.raises(RuntimeError):
        export(corpus, "opens2s", to, Options(no_units=True))
    assert (to / "train.jsonl").read_text() == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "o"]


def test_cli_export_and_one_line_errors(tmp_path, monkeypatch, capsys):
    simple(tmp_path / "c")
    code, out, _ = run_cli(monkeypatch, capsys, "export", str(tmp_path / "c"), "--format", "blsp-emo", "--to", str(tmp_path / "b"))
    assert code == 0 and "rows written" in out
    assert json.loads((tmp_path / "b" / "export.json").read_text())["corpus_rows"] == 16

    cases = [
        ([str(tmp_path / "nope")], f"corpus not found: {tmp_path / 'nope'}"),
        ([str(tmp_path)], f"missing manifest: {tmp_path / 'manifest.json'}"),
        ([str(tmp_path / "c"), "--split", "dev"], "split 'dev' not in"),
    ]
    for corpus_args, message in cases:
        code, _, err = run_cli(monkeypatch, capsys, "export", *corpus_args, "--format", "blsp-emo", "--to", str(tmp_path / "x"))
        assert code == 1 and err.count("\n") == 1 and message in err, err
    code, _, err = run_cli(monkeypatch, capsys, "export", str(tmp_path / "c"), "--format", "opens2s", "--to", str(tmp_path / "x"))
    assert code == 1 and "needs speech units" in err and "--no-units" in err and err.count("\n") == 1
    code, _, err = run_cli(monkeypatch, capsys, "export", str(tmp_path / "c"), "--format", "osum-echat", "--to", str(tmp_path / "x"),
                           "--tokenizer", str(tmp_path / "missing.onnx"))  # fmt: skip
    assert code == 1 and f"speech tokenizer path not found: {tmp_path / 'missing.onnx'}" in err
    code, _, err = run_cli(monkeypatch, capsys, "export", str(tmp_path / "c"), "--format", "blsp-emo", "--to", str(tmp_path / "a:0:1"))
    assert code == 1 and "path:start:frames" in err and err.count("\n") == 1
    (tmp_path / "c" / "data" / "train-00000-of-00002.parquet").unlink()
    code, _, err = run_cli(monkeypatch, capsys, "export", str(tmp_path / "c"), "--format", "blsp-emo", "--to", str(tmp_path / "x"))
    assert code == 1 and "missing shard:" in err and "train-00000-of-00002.parquet" in err
    assert not (tmp_path / "x").exists()


def test_a_datasets_name_that_cannot_be_fetched_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(corpus_mod.RecipeError, match=r"^cannot fetch corpus 'someone/empathy-corpus': "):
        Corpus.open("someone/empathy-corpus")


def test_osum_fill_last_batch_keeps_every_chat_line_in_a_batch_the_loader_yields(corpus, tmp_path):
    counter = TextCounter()
    seq = lambda line: osum_chat_seq_tokens(line, counter.count)  # noqa: E731
    plain = export(corpus, "osum-echat", tmp_path / "plain", Options(no_units=True, tasks=("chat", "transcribe")))
    lines = read_jsonl(tmp_path / "plain" / "train" / "data.list")
    chat = {x["key"] for x in lines if not x["task"].startswith("<TRANSCRIBE>")}
    assert len(chat) == 12 and "lines_filled" not in plain
    yielded = {x["key"] for batch in osum_dynamic_batches(lines, seq) for x in batch}
    assert not chat & yielded  # the small export's chat lines never make a batch: all dropped at the end

    filled = export(corpus, "osum-echat", tmp_path / "filled", Options(no_units=True, tasks=("chat", "transcribe"), fill_last_batch=3700))
    lines = read_jsonl(tmp_path / "filled" / "train" / "data.list")
    repeats = [x for x in lines if "-fill" in x["key"]]
    assert repeats and all(x["task"] == "<S2TCHAT> <THINKER>" for x in repeats)  # chat only, never understanding
    assert [x["key"] for x in lines[: len(lines) - len(repeats)] if "-fill" in x["key"]] == []  # after the originals
    assert sum(seq(x) for x in repeats) >= 3700
    assert filled["lines_filled"]["train/data.list <S2TCHAT> <THINKER>"] == len(repeats)
    assert set(filled["lines_filled"]) == {f"{split}/data.list <S2TCHAT> <THINKER>" for split in ("train", "test")}
    assert filled["options"]["fill_last_batch"] == 3700
    for line in lines:
        check_osum_line(line, units=False)
    assert len({x["key"] for x in lines}) == len(lines)
    yielded = {x["key"] for batch in osum_dynamic_batches(lines, seq) for x in batch}
    assert chat <= yielded  # every original chat line is in a yielded batch; what is dropped is repeats
