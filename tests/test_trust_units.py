"""Trust must-holds that need no model: failed items retried, one model per process, honest files."""

import os
import stat
import threading
import time

from empathy_data.backends.registry import once_per_process
from empathy_data.core.atomic import atomic_dir, replace_dir, write_json
from empathy_data.records.reasons import Reason, kinds
from empathy_data.runtime.build import run_script_chunk
from empathy_data.store.output_guard import remove_partial_writes
from tests.helpers import FakeChat, make_context


def script_rows(ctx, chunk=0):
    import json

    return [json.loads(line) for line in ctx.layout.chunk_path("script", chunk).read_text().splitlines()]


def test_rerun_retries_failed_items_of_a_finished_chunk_and_what_came_after(tmp_path):
    # one request at a time, so the first reply (the error) goes to spec 0 however loaded the machine is
    ctx = make_context(tmp_path, num_dialogues=2, chunk_size=2, distributions={"exchanges": {1: 1.0}}, script={"max_in_flight": 1})
    flaky = FakeChat(replies=[ValueError("prompt longer than the context")])  # an item error: spec 0 fails
    run_script_chunk(ctx, 0, lambda: flaky)
    assert [r.get("verdict") for r in script_rows(ctx)] == ["failed", None]
    downstream = ctx.layout.chunk_path("synthesize", 0)
    (downstream / "records.jsonl").parent.mkdir(parents=True)
    (downstream / "records.jsonl").write_text("")
    filtered = ctx.layout.chunk_path("filter", 0)
    filtered.parent.mkdir(parents=True)
    filtered.write_text("")
    assert ctx.regeneration.reopen_failed_chunks() == 1
    assert not ctx.layout.chunk_path("script", 0).exists() and not downstream.exists() and not filtered.exists()
    again = FakeChat()
    ref = run_script_chunk(ctx, 0, lambda: again)
    assert [r["kind"] for r in script_rows(ctx)] == ["script", "script"]
    assert (ref.replayed, ref.sent, len(again.calls)) == (1, 1, 1)  # only the failed item was asked again
    assert ctx.regeneration.reopen_failed_chunks() == 0


def test_changed_corpus_size_reuses_every_reply_already_received(tmp_path):
    small = make_context(tmp_path, num_dialogues=3, chunk_size=4)
    first = FakeChat()
    run_script_chunk(small, 0, lambda: first)
    bigger = make_context(tmp_path, num_dialogues=4, chunk_size=4)
    assert bigger.layout.chunk_path("script", 0) != small.layout.chunk_path("script", 0)  # another range, another key
    second = FakeChat()
    ref = run_script_chunk(bigger, 0, lambda: second)
    assert (len(first.calls), len(second.calls), ref.replayed, ref.sent) == (3, 1, 3, 1)


def test_backend_factory_builds_once_when_threads_race_on_a_cold_cache():
    built = []

    @once_per_process
    def load(name):
        time.sleep(0.2)  # a slow model load: every thread arrives while it runs
        built.append(name)
        return object()

    results = []
    threads = [threading.Thread(target=lambda: results.append(load("engine"))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert built == ["engine"] and len({id(r) for r in results}) == 1


def test_files_land_with_the_permissions_the_umask_gives(tmp_path):
    write_json(tmp_path / "manifest.json", {"a": 1})
    with atomic_dir(tmp_path / "chunk") as tmp:
        (tmp / "x").write_text("x")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "manifest.json").stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE((tmp_path / "chunk").stat().st_mode) == 0o777 & ~umask


def test_directory_replacement_swaps_old_for_new(tmp_path):
    target, new = tmp_path / "data", tmp_path / ".data.new.tmp"
    target.mkdir()
    (target / "old").write_text("old")
    new.mkdir()
    (new / "fresh").write_text("new")
    replace_dir(new, target)
    assert [p.name for p in target.iterdir()] == ["fresh"] and not new.exists()


def test_by_reason_counts_each_kind_once_per_exchange():
    reasons = [Reason(stage="script", check="repetition", detail="turn 2 repeats turn 1"),
               Reason(stage="script", check="copy", detail="turn 1"),
               Reason(stage="script", check="repetition", detail="again", exchange=2)]  # fmt: skip
    assert kinds(reasons, "rejected") == {"script: repetition", "script: copy"}
    filtered = [Reason(stage="filter", check="user.wer"), Reason(stage="filter", check="assistant.wer")]
    assert kinds(filtered, "rejected") == {"user.wer", "assistant.wer"}
    assert kinds([], "failed") == {"failed"}


def test_failed_only_on_malformed_replies_is_not_reopened(tmp_path):
    ctx = make_context(tmp_path, num_dialogues=1, chunk_size=1, distributions={"exchanges": {1: 1.0}})
    run_script_chunk(ctx, 0, lambda: FakeChat(default="not json"), 0)
    assert script_rows(ctx)[0]["verdict"] == "failed"
    assert ctx.regeneration.reopen_failed_chunks() == 0  # the journal would replay the same malformed replies


def test_infrastructure_classification():
    import openai
    import soundfile

    from empathy_data.core.errors import is_infrastructure

    request = __import__("httpx").Request("POST", "http://127.0.0.1/v1/chat/completions")
    response = __import__("httpx").Response(400, request=request)
    infra = [
        ConnectionResetError(), TimeoutError(), MemoryError(), ModuleNotFoundError("TTS"), FileNotFoundError("x"),
        openai.APIConnectionError(request=request), openai.APITimeoutError(request=request),
        RuntimeError("CUDA failed with error out of memory"), RuntimeError("cuDNN error: CUDNN_STATUS_EXECUTION_FAILED"),
        RuntimeError("CUDA error: device-side assert triggered"),
        openai.InternalServerError("boom", response=__import__("httpx").Response(500, request=request), body=None),
        openai.RateLimitError("slow down", response=__import__("httpx").Response(429, request=request), body=None),
    ]  # fmt: skip
    item = [
        ValueError("unknown voice"), openai.BadRequestError("too long", response=response, body=None),
        soundfile.LibsndfileError(1, "Format not recognised"), KeyError("x"), RuntimeError("text has no phonemes"),
    ]  # fmt: skip
    assert [type(e).__name__ for e in infra if not is_infrastructure(e)] == []
    assert [type(e).__name__ for e in item if is_infrastructure(e)] == []


def test_fallback_swap_killed_between_renames_keeps_the_old_version(tmp_path, monkeypatch):
    import empathy_data.core.atomic as atomic

    ctx = make_context(tmp_path)
    data = ctx.out / "data"
    data.mkdir(parents=True)
    (data / "old.parquet").write_text("old")
    new = ctx.out / ".data.new.tmp"
    new.mkdir()
    (new / "fresh.parquet").write_text("new")
    monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)  # a file system without RENAME_EXCHANGE
    calls = []
    real_replace = os.replace

    def killed_after_first_rename(src, dst):
        calls.append(dst)
        real_replace(src, dst)
        if len(calls) == 1:
            raise KeyboardInterrupt  # the kill lands between the two renames

    monkeypatch.setattr(atomic.os, "replace", killed_after_first_rename)
    try:
        replace_dir(new, data)
    except KeyboardInterrupt:
        pass
    monkeypatch.setattr(atomic.os, "replace", real_replace)
    assert not data.exists()  # neither version at the target, for the moment
    remove_partial_writes(ctx.store)  # the next run, under the lock
    assert [p.name for p in data.iterdir()] == ["old.parquet"] and not new.exists()
    again = ctx.out / ".data.again.tmp"
    again.mkdir()
    (again / "fresh.parquet").write_text("new")
    replace_dir(again, data)  # the fallback path, uninterrupted
    assert [p.name for p in data.iterdir()] == ["fresh.parquet"]
    assert not list(ctx.out.glob(".*.tmp"))


def test_missing_audio_of_a_chunk_is_an_infrastructure_fault(tmp_path):
    import pytest

    from empathy_data.config.model import Thresholds
    from empathy_data.core.errors import InfrastructureError
    from empathy_data.records.schema import Utterance
    from empathy_data.stages.filter.stage import score_utterances

    utt = Utterance(dialogue_id="d", turn_index=0, role="user", text="hi there", speaker_id="s", emotion="sad", response_style=None,
                    audio_path="d-0.flac", sample_rate=16000, duration=1.0, tts={})  # fmt: skip
    with pytest.raises(InfrastructureError, match="d-0.flac is missing"):
        score_utterances([utt], {"d": "en"}, tmp_path, None, None, Thresholds())


def test_domain_errors_survive_pickling_between_workers():
    import pickle

    from empathy_data.core.errors import ConfigError, InfrastructureError

    for exc in (ConfigError("cfg.yaml: seed", "not a number"), InfrastructureError("llm: gone")):
        assert str(pickle.loads(pickle.dumps(exc))) == str(exc)


STOP_PROBE = r"""
import os, signal, sys, time
from empathy_data.runtime.interrupts import stop_cleanly_on_signals
from empathy_data.store.output_guard import remove_partial_writes
stop_cleanly_on_signals()
pid = os.fork()
if pid == 0:  # a forked helper (no exec) with a handler of its own, ended by SIGTERM
    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
    time.sleep(5)
    os._exit(0)
time.sleep(0.3)
os.kill(pid, signal.SIGTERM)
os.waitpid(pid, 0)
print("parent still running", flush=True)
time.sleep(60)
"""


def test_a_forked_helpers_signal_does_not_stop_the_build_and_ctrl_c_does():
    import signal
    import subprocess
    import sys

    probe = subprocess.Popen([sys.executable, "-c", STOP_PROBE], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert probe.stdout.readline() == "parent still running\n"
    probe.send_signal(signal.SIGINT)
    _, stderr = probe.communicate(timeout=30)
    assert probe.returncode == 130
    assert stderr.strip() == "interrupted (SIGINT): stopped; re-run the same command to resume"
