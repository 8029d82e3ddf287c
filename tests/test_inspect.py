"""`empathy-data inspect`: sample exchanges of a small synthetic build, their text and their audio."""

import os
import stat
import subprocess
import sys

import pytest
import soundfile as sf

from empathy_data.tools import inspect_corpus
from empathy_data.tools.inspect_corpus import GAP_S, play_exchange, select_exchanges
from empathy_data.tools.report import ReportError
from tests.cli_helpers import run_cli
from tests.corpus_builder import RATE, default_rows, make_corpus
from tests.helpers import REPO


def ids(found):
    return [(r["dialogue_id"], r["exchange_index"]) for _, r in found]


def test_selection_by_emotion_split_and_count(tmp_path):
    out = make_corpus(tmp_path)
    assert ids(select_exchanges(out)) == [("d0", 0), ("d0", 1), ("d2", 0), ("d1", 0)]  # train shard, then test
    assert ids(select_exchanges(out, n=2)) == [("d0", 0), ("d0", 1)]
    assert ids(select_exchanges(out, emotion="angry")) == [("d0", 1)]
    assert ids(select_exchanges(out, split="test")) == [("d1", 0)]
    assert ids(select_exchanges(out, emotion="sad", rejects=True)) == [("d2", 1)]
    found = select_exchanges(out, n=1)
    assert "user_audio" not in found[0][1]  # audio is read only to play it
    with pytest.raises(ReportError, match="--split dev: not a split"):
        select_exchanges(out, split="dev")


def test_inspect_prints_text_labels_and_scores_with_markup_escaped(tmp_path):
    data, rejects = default_rows()
    data[0]["user_text"] = "I am [bold]not[/bold] markup [red]"
    out = make_corpus(tmp_path, data=data, rejects=rejects)
    result = run_cli("inspect", str(out), "--emotion", "sad", "--n", "1")
    assert result.returncode == 0, result.stderr
    shown = " ".join(result.stdout.split())
    assert "d0 · exchange 0" in shown
    assert "I am [bold]not[/bold] markup [red]" in shown
    for text in ("assistant text d0 0", "reasoning d0 0", "spk-a (female, adult)", "comforting", "user_wer 0.1"):
        assert text in shown


def test_inspect_rejects_shows_verdict_and_reasons(tmp_path):
    out = make_corpus(tmp_path)
    result = run_cli("inspect", str(out), "--rejects", "--n", "2")
    assert result.returncode == 0, result.stderr
    shown = " ".join(result.stdout.split())
    assert "rejected (filter)" in shown and "user.wer: 0.9 > 0.25" in shown
    assert "failed (script)" in shown and "llm: malformed" in shown


def test_inspect_errors_are_one_line(tmp_path):
    out = make_corpus(tmp_path)
    for args in (["--split", "dev"], []):
        target = str(out) if args else str(tmp_path / "nowhere")
        result = run_cli("inspect", target, *args)
        assert result.returncode == 1
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    nothing = run_cli("inspect", str(out), "--emotion", "surprised")
    assert nothing.returncode == 0 and "no exchanges match" in nothing.stderr


def test_play_without_a_player_leaves_the_pair_as_one_wav(tmp_path):
    out = make_corpus(tmp_path)
    env = os.environ | {"PATH": str(tmp_path / "no-players")}
    result = subprocess.run(
        [sys.executable, "-m", "empathy_data.cli", "inspect", str(out), "--n", "1", "--play"],
        capture_output=True, text=True, cwd=REPO, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if x.startswith("audio: "))
    wav = line.removeprefix("audio: ").split(" (")[0]
    try:
        audio, rate = sf.read(wav)
        assert rate == RATE and len(audio) == RATE * 1 + int(GAP_S * RATE) + int(RATE * 1.5)  # user, gap, reply
    finally:
        os.unlink(wav)


def test_play_runs_the_first_player_found_and_removes_the_wav(tmp_path, monkeypatch):
    out = make_corpus(tmp_path)
    log = tmp_path / "played.txt"
    player = tmp_path / "ffplay"
    player.write_text(
        f'#!/bin/sh\nfor a in "$@"; do last="$a"; done\ncp "$last" {tmp_path}/copy.wav\necho "$@" > {log}\n'
    )
    player.chmod(player.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(inspect_corpus.shutil, "which", lambda name: str(player) if name == "ffplay" else None)
    location, _ = select_exchanges(out, n=1)[0]
    assert play_exchange(location) == "played with ffplay"
    args = log.read_text().split()
    assert args[:2] == ["-nodisp", "-autoexit"] and not os.path.exists(args[-1])
    assert sf.info(str(tmp_path / "copy.wav")).duration == pytest.approx(2.5 + GAP_S, abs=0.01)


def test_play_a_reject_without_audio_says_so(tmp_path):
    out = make_corpus(tmp_path)
    location, _ = select_exchanges(out, rejects=True, n=1)[0]
    assert play_exchange(location).startswith("no audio for this exchange")
