import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent


def tiny_config(root: Path, out: str = "out") -> Path:
    config = yaml.safe_load((REPO / "configs" / "smoke.yaml").read_text())
    config.update({"num_dialogues": 3, "chunk_size": 2, "output": str(root / out), "seed": 11})
    path = root / f"{out}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_build(path: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "empathy_data.cli", "build", str(path)], capture_output=True, text=True, cwd=cwd
    )


@pytest.fixture(scope="session")
def tiny_build(tmp_path_factory):
    """One uninterrupted build of a tiny corpus with the real embedded models, shared by the e2e tests."""
    root = tmp_path_factory.mktemp("e2e")
    path = tiny_config(root)
    result = run_build(path, root)
    assert result.returncode == 0, result.stderr[-3000:]
    return root, path, result
