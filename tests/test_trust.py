"""An outage is never recorded as a result: server deaths, interrupts, a second build, the runner."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from empathy_data.runtime.interrupts import descendants
from empathy_data.store.output_lock import OutputLock
from empathy_data.tools.verify import verify_corpus
from tests.canned_llm import CannedLLM
from tests.conftest import build_command, run_build, standin_config
from tests.test_resume import shard_digests


def start(path: Path, root: Path, own_prefect_server: bool = False) -> subprocess.Popen:
    """`own_prefect_server`: without the session's shared server, so the build starts its temporary one."""
    env = {k: v for k, v in os.environ.items() if not (own_prefect_server and k == "PREFECT_API_URL")}
    return subprocess.Popen(
        build_command(path), cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True, env=env,
    )  # fmt: skip


def wait_for(pattern: str, out: Path, process: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not list(out.glob(pattern)):
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, f"{pattern} never appeared"
        time.sleep(0.05)


def alive_in_group(pgid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def script_failures(out: Path) -> list[dict]:
    rows = [json.loads(line) for p in (out / "work" / "script").glob("*.jsonl") for line in p.read_text().splitlines()]
    return [r for r in rows if r.get("verdict") == "failed"]


def seed_journal(out: Path, reference: Path) -> None:
    """Give a stopped build the reference build's LLM replies, so its rerun replays them instead of
    asking again. What these tests check is the stop; test_resume reruns against the real server."""
    for source in (reference / "work" / "journal").glob("*.jsonl"):
        target = out / "work" / "journal" / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "a", encoding="utf-8") as sink:
            sink.write("\n" + source.read_text(encoding="utf-8"))  # after a line a kill may have cut short


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.mark.integration
def test_second_build_on_the_same_output_is_refused_and_the_first_finishes(tiny_build, tiny_build_rival):
    root, _, _ = tiny_build
    rival = tiny_build_rival["result"]
    assert rival.returncode == 1
    assert f"is being built by pid {tiny_build_rival['holder_pid']}" in rival.stderr
    assert len(rival.stderr.strip().splitlines()) == 1
    verify_corpus(root / "out")  # the first build finished intact


@pytest.mark.slow
def test_server_killed_mid_script_fails_the_build_and_the_rerun_completes(standin_build, speaking_service, tmp_path):
    """The LLM server dies while the build is writing: the build fails with one line, records no failure,
    and a rerun against the server, back at the same address, finishes the corpus it would have been."""
    reference = standin_build[0] / "out"
    # One reply, then nothing: however fast the build sends the rest, they meet a dead server (stopping a
    # server takes long enough for requests already on their way to be answered).
    server = CannedLLM(delay_s=0.5, answer_only=1)
    url = server.__enter__()
    path = standin_config(tmp_path, url, speaking_service, out="srv")
    out = tmp_path / "srv"
    build = start(path, tmp_path)
    wait_for("work/journal/*.jsonl", out, build)
    server.__exit__(None, None, None)  # the server only: the build survives it
    _, stderr = build.communicate(timeout=300)
    assert build.returncode == 1, stderr[-3000:]
    [line] = error_lines(stderr)
    assert "llm: APIConnectionError" in line and line.endswith("re-run the same command to resume")
    assert "Traceback" not in stderr
    assert not script_failures(out)  # no chunk holds server-caused failures
    assert not (out / "manifest.json").exists()
    with CannedLLM(port=server.port):
        result = run_build(path, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["llm_requests"]["sent"] > 0  # the replies the first run never got
    assert manifest["counts"]["dialogues"]["failed"] == 0 and manifest["counts"]["exchanges"]["failed"] == 0
    assert shard_digests(out) == shard_digests(reference)
    verify_corpus(out)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["group", "main"])
def test_ctrl_c_stops_the_build_at_once_and_a_rerun_completes(standin_build, canned_llm, speaking_service, tmp_path, target):
    reference = standin_build[0] / "out"
    path = standin_config(tmp_path, canned_llm, speaking_service, out=f"int-{target}")
    out = tmp_path / f"int-{target}"
    build = start(path, tmp_path, own_prefect_server=True)
    wait_for("work/journal/*.jsonl", out, build)
    helpers = descendants(build.pid)
    assert helpers  # Prefect's temporary API server
    sent = time.monotonic()
    if target == "group":  # what a terminal does on Ctrl-C
        os.killpg(build.pid, signal.SIGINT)
    else:
        os.kill(build.pid, signal.SIGINT)
    _, stderr = build.communicate(timeout=60)
    stopped_after = time.monotonic() - sent
    assert build.returncode == 130, stderr[-3000:]
    assert stopped_after < 15, f"stopped after {stopped_after:.1f}s; stderr:\n{stderr[-3000:]}"
    assert stderr.strip().splitlines()[-1] == "interrupted (SIGINT): stopped; re-run the same command to resume"
    assert "Traceback" not in stderr
    time.sleep(1)
    assert not alive_in_group(build.pid)  # Prefect's server stopped with it
    assert not script_failures(out)
    if target == "main":  # the same handler stopped the same work: the group case's rerun covers what it left
        with OutputLock(out):  # and the lock is free for that rerun
            return
    seed_journal(out, reference)
    result = run_build(path, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert shard_digests(out) == shard_digests(reference)
    verify_corpus(out)
