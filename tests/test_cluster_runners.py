"""The same build on a real local Ray cluster and a real local Dask cluster (2 worker processes each, on
loopback): the chunk tasks run in the workers and the corpus is byte for byte the thread runner's."""

import json
import shutil

import pytest
import yaml

from empathy_data.tools.verify import verify_corpus
from tests.conftest import run_build, tiny_config
from tests.test_resume import shard_digests

pytestmark = pytest.mark.slow


# Each runner builds once with its models in the workers here and once against model services
# (tests/test_service_build.py): Dask here, Ray there, so both kinds stay covered at half the builds.
@pytest.mark.parametrize("kind", ["dask"])
def test_a_cluster_runner_builds_the_thread_runners_corpus(tiny_build, tmp_path, kind):
    reference = tiny_build[0] / "out"
    path = tiny_config(tmp_path, out=kind)
    config = yaml.safe_load(path.read_text())
    config["runner"] = {"kind": kind, "max_workers": 2}
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / kind
    # Scripts come from the thread build (the LLM is tested there); TTS, ASR and export run on the cluster.
    shutil.copytree(reference / "work" / "script", out / "work" / "script")
    shutil.copy(reference / "build.json", out / "build.json")

    result = run_build(path, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    tasks = manifest["tasks"]
    # 2 chunks x 3 stages x 2 rounds, then one export task per chunk: every one ran in a worker, not the
    # driver (the export's audio never passes through the driver either)
    rounds = range(config["regenerate"]["rounds"] + 1)
    assert sorted((t["stage"], t["chunk"], t["round"]) for t in tasks) == sorted(
        [(stage, chunk, r) for stage in ("script", "synthesize", "filter") for chunk in (0, 1) for r in rounds]
        + [("export", chunk, 0) for chunk in (0, 1)]
    )
    assert all(t["worker"] != manifest["driver"] for t in tasks)
    assert all(t["cached"] for t in tasks if t["stage"] == "script")  # copied from the thread build

    assert shard_digests(out) == shard_digests(reference)
    assert (out / "README.md").read_text() == (reference / "README.md").read_text()
    for unit in ("dialogues", "exchanges"):
        c = manifest["counts"][unit]
        assert c["accepted"] + c["rejected"] + c["failed"] == c["planned"] > 0
    verify_corpus(out)


RAY_GPU_TASKS = """
import json, os
from prefect import flow, task
from prefect_ray import RayTaskRunner
from empathy_data.flows.build import placement

@task
def where(i):
    return os.getpid(), os.environ.get("CUDA_VISIBLE_DEVICES")

@flow(task_runner=RayTaskRunner(init_kwargs={"num_cpus": 2, "num_gpus": 1, "include_dashboard": False}))
def chunks():
    seen = []
    for i in range(3):  # one after another, as a stage's chunk tasks on one GPU
        with placement("ray", 1.0):
            seen.append(where.submit(i).result())
    return seen

print("SEEN " + json.dumps(chunks()))
"""


def test_ray_gpu_tasks_keep_their_worker_and_its_models(tmp_path):
    """Ray runs a GPU task in a fresh worker by default (max_calls=1): every chunk would load its models
    again. Three GPU tasks on a local cluster with one (logical) GPU must share one worker process, and
    that worker must see the GPU Ray gave it."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", RAY_GPU_TASKS], capture_output=True, text=True, cwd=tmp_path, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.split("SEEN ", 1)[1])
    assert len({pid for pid, _ in seen}) == 1, seen
    assert {devices for _, devices in seen} == {"0"}
