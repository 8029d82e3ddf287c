"""One Dask worker per GPU, each with its own device index in CUDA_VISIBLE_DEVICES."""

import subprocess
import sys

import pytest

from empathy_data.core.errors import ConfigError
from empathy_data.runtime.gpu_workers import GPUWorker, gpu_workers


def test_every_listed_gpu_gets_a_worker_that_sees_only_it():
    workers = gpu_workers(None, listed=2)
    assert [w.environment({})["CUDA_VISIBLE_DEVICES"] for w in workers] == ["0", "1"]
    assert all(w.environment({})["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID" for w in workers)
    command = workers[1].command("tcp://head:8786", nthreads=2, python="py")
    assert command == ["py", "-m", "distributed.cli.dask_worker", "tcp://head:8786", "--name", "gpu-1",
                       "--nthreads", "2", "--nworkers", "1", "--resources", "GPU=1"]  # fmt: skip


def test_cuda_visible_devices_limits_and_names_the_devices():
    assert [w.device for w in gpu_workers("2, 3", listed=4)] == ["2", "3"]
    assert [w.device for w in gpu_workers("GPU-8f3a,GPU-11c2", listed=8)] == ["GPU-8f3a", "GPU-11c2"]


@pytest.mark.parametrize(("visible", "listed", "where"), [("", 4, "CUDA_VISIBLE_DEVICES"), (None, 0, "nvidia-smi")])
def test_no_gpu_to_give_is_one_line(visible, listed, where):
    with pytest.raises(ConfigError, match=f"^{where}: "):
        gpu_workers(visible, listed)


def test_a_worker_process_sees_its_own_device_only():
    worker = GPUWorker("1")
    probe = "import os; print(os.environ['CUDA_VISIBLE_DEVICES'])"
    seen = subprocess.run([sys.executable, "-c", probe], env=worker.environment({"PATH": "/usr/bin"}),
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    assert seen == "1"


def test_the_command_refuses_a_machine_without_gpus(monkeypatch):
    from typer.testing import CliRunner

    from empathy_data.cli import app

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    result = CliRunner().invoke(app, ["dask-gpu-workers", "tcp://127.0.0.1:8786"])
    assert result.exit_code == 2 and "CUDA_VISIBLE_DEVICES: is empty" in result.output
