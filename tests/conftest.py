import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent


def tiny_config(root: Path, out: str = "out") -> Path:
    config = yaml.safe_load((REPO / "configs" / "smoke.yaml").read_text())
    config.update({"num_dialogues": 3, "chunk_size": 2, "output": str(root / out), "seed": 12})
    config.pop("rebalance", None)  # top-up is tested with fakes (test_topup.py); the tiny build stays three dialogues
    path = root / f"{out}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def build_command(path: Path) -> list[str]:
    return [sys.executable, "-m", "empathy_data.cli", "build", str(path)]


def run_build(path: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(build_command(path), capture_output=True, text=True, cwd=cwd)


@pytest.fixture(scope="session")
def tiny_build(tmp_path_factory):
    """One uninterrupted build of a tiny corpus with the real embedded models, shared by the e2e tests.
    While it runs, a second build of the same config is started on the same output: it must be refused
    at once (kept as `tiny_build_rival` for test_trust), and the first must finish intact."""
    root = tmp_path_factory.mktemp("e2e")
    path = tiny_config(root)
    first = subprocess.Popen(build_command(path), cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (root / "out" / ".build.owner").exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    started = time.monotonic()
    rival = run_build(path, root)
    rival_seconds = time.monotonic() - started
    stdout, stderr = first.communicate(timeout=900)
    result = subprocess.CompletedProcess(first.args, first.returncode, stdout, stderr)
    assert result.returncode == 0, result.stderr[-3000:]
    TINY_RIVAL.update(result=rival, seconds=rival_seconds, holder_pid=first.pid)
    return root, path, result


TINY_RIVAL: dict = {}


@pytest.fixture(scope="session")
def tiny_build_rival(tiny_build):
    return TINY_RIVAL
