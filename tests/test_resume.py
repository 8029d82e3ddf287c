"""Kill a real build with SIGKILL at several points, resume it, and compare with an uninterrupted build."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from empathy_data.hashing import file_sha256
from empathy_data.verify import verify_corpus
from tests.conftest import run_build, tiny_config

pytestmark = pytest.mark.e2e

KILL_POINTS = {
    "script": "work/script/*.jsonl",  # first script chunk written, the second still being written
    "synthesize": "work/synthesize/c*/records.jsonl",
    "filter": "work/filter/*.jsonl",
}


def kill_when(path: Path, root: Path, pattern: str, timeout: float = 300) -> bool:
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
            return True
        time.sleep(0.05)
    process.wait()
    return False


def shard_digests(out: Path) -> dict[str, str]:
    return {p.name: file_sha256(p) for p in sorted((out / "data").glob("*.parquet"))}


@pytest.mark.parametrize("stage", list(KILL_POINTS))
def test_killed_build_resumes_to_the_same_dataset(tiny_build, tmp_path, stage):
    reference_root, _, _ = tiny_build
    path = tiny_config(tmp_path, out="killed")
    assert kill_when(path, tmp_path, KILL_POINTS[stage]), f"build finished before the {stage} kill point"
    assert not (tmp_path / "killed" / "manifest.json").exists()
    result = run_build(path, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "killed"
    assert not list(out.rglob("*.tmp"))
    manifest = json.loads((out / "manifest.json").read_text())
    reference = json.loads((reference_root / "out" / "manifest.json").read_text())
    assert manifest["counts"] == reference["counts"]
    assert shard_digests(out) == shard_digests(reference_root / "out")
    verify_corpus(out)
