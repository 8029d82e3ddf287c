"""Kill a real build with SIGKILL at several points, resume it, and compare with an uninterrupted build."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from empathy_data.hashing import file_sha256
from empathy_data.verify import verify_corpus
from tests.conftest import run_build, tiny_config

pytestmark = pytest.mark.e2e

KILL_POINTS = {
    "script": "work/script/*.jsonl",  # first script chunk written, the second still being written
    "synthesize": "work/synthesize/c*/records.jsonl",
    "filter": "work/filter/*.jsonl",
    "regenerate": "work/filter/c*-r1-*.jsonl",  # a chunk's regeneration round finished (smoke.yaml: 1 round)
}


def kill_when(path: Path, root: Path, pattern: str, timeout: float = 300) -> dict[str, str] | None:
    """Start a build, SIGKILL its whole process group once `pattern` exists; return the finished work files."""
    process = subprocess.Popen(
        [sys.executable, "-m", "empathy_data.cli", "build", str(path)],
        cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    out = root / "killed"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if list(out.glob(pattern)):
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return finished_work(out)
        time.sleep(0.05)
    process.wait()
    return None


def finished_work(out: Path) -> dict[str, str]:
    return {
        str(p.relative_to(out)): file_sha256(p)
        for p in (out / "work").rglob("*")
        if p.is_file() and ".tmp" not in str(p) and "logs" not in p.parts
    }


def shard_digests(out: Path) -> dict[str, str]:
    return {p.name: file_sha256(p) for p in sorted((out / "data").glob("*.parquet"))}


def accounted_ids(out: Path) -> list[tuple[str, int]]:
    """(dialogue, exchange) of every final row: data/ and rejects/, less versions a regeneration replaced."""
    keys = []
    for folder in ("data", "rejects"):
        for shard in sorted((out / folder).glob("*.parquet")):
            rows = pq.read_table(shard).select(
                ["dialogue_id", "exchange_index", *(["verdict"] if folder == "rejects" else [])]
            )
            keys += [
                (r["dialogue_id"], r["exchange_index"]) for r in rows.to_pylist() if r.get("verdict") != "replaced"
            ]
    return keys


@pytest.mark.parametrize("stage", list(KILL_POINTS))
def test_killed_build_resumes_without_loss_or_duplicates(tiny_build, tmp_path, stage):
    reference_root, _, _ = tiny_build
    path = tiny_config(tmp_path, out="killed")
    done_before = kill_when(path, tmp_path, KILL_POINTS[stage])
    assert done_before is not None, f"build finished before the {stage} kill point"
    out = tmp_path / "killed"
    assert not (out / "manifest.json").exists()
    result = run_build(path, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not list(out.rglob("*.tmp"))
    after = finished_work(out)
    assert {k: after.get(k) for k in done_before} == done_before  # finished chunks were not redone
    manifest = json.loads((out / "manifest.json").read_text())
    reference = json.loads((reference_root / "out" / "manifest.json").read_text())
    for unit in ("dialogues", "exchanges"):
        c = manifest["counts"][unit]
        assert c["accepted"] + c["rejected"] + c["failed"] == c["planned"] == reference["counts"][unit]["planned"]
    keys = accounted_ids(out)
    assert len(keys) == len(set(keys)) == manifest["counts"]["exchanges"]["planned"]
    assert {k for k, _ in keys} == {k for k, _ in accounted_ids(reference_root / "out")}
    verify_corpus(out)
    # Scripts finished before the kill are kept (checked above), and everything after the LLM is
    # deterministic (test_same_scripts_give_byte_identical_shards). LLM requests in flight at the kill are
    # regenerated and may read differently: the llama.cpp server reuses the previous prompt's KV cache.


def test_same_scripts_give_byte_identical_shards(tiny_build, tmp_path):
    """Everything after the LLM (TTS, ASR, emotion check, export) is deterministic."""
    reference_root, _, _ = tiny_build
    reference = reference_root / "out"
    path = tiny_config(tmp_path, out="again")
    out = tmp_path / "again"
    shutil.copytree(reference / "work" / "script", out / "work" / "script")
    shutil.copy(reference / "build.json", out / "build.json")
    result = run_build(path, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert shard_digests(out) == shard_digests(reference)
    assert (out / "README.md").read_text() == (reference / "README.md").read_text()


@pytest.mark.parametrize("point", ["shards", "card"])
def test_build_killed_during_export_resumes_to_identical_shards(tiny_build, tmp_path, point):
    reference_root, _, _ = tiny_build
    reference = reference_root / "out"
    path = tiny_config(tmp_path, out="export")
    out = tmp_path / "export"
    shutil.copytree(reference / "work", out / "work", ignore=shutil.ignore_patterns("logs"))
    shutil.copy(reference / "build.json", out / "build.json")
    log = tmp_path / "killed.log"
    with open(log, "wb") as sink:
        # Own process group: Prefect's temporary API server outlives a SIGKILLed parent, so clean it up.
        killed = subprocess.Popen(
            [sys.executable, "-m", "tests.kill_in_export", point, str(path)],
            stdout=sink, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parent.parent, start_new_session=True,
        )  # fmt: skip
        code = killed.wait(timeout=600)
        try:
            os.killpg(killed.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert code == -signal.SIGKILL, log.read_text()[-2000:]
    assert not (out / "manifest.json").exists()
    result = run_build(path, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert shard_digests(out) == shard_digests(reference)
    assert not (out / "work" / "export-staging").exists() and not list(out.rglob("*.tmp"))
    verify_corpus(out)
