"""One Dask worker per GPU, each seeing only its own device (`empathy-data dask-gpu-workers SCHEDULER`).

A Dask resource `GPU=1` is only a scheduling token: a worker process that sees every GPU puts every model
on cuda:0. Each worker started here gets `CUDA_VISIBLE_DEVICES` set to one device (so `cuda` means its own
GPU) and declares `--resources GPU=1`. The devices are the ones this process may use: the entries of
CUDA_VISIBLE_DEVICES when it is set (indices or GPU-UUIDs, kept as written), else every GPU
`nvidia-smi -L` lists.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass

from empathy_data.core.errors import ConfigError


@dataclass(frozen=True)
class GPUWorker:
    device: str  # what the worker's CUDA_VISIBLE_DEVICES holds: an index or a GPU-UUID

    @property
    def name(self) -> str:
        return f"gpu-{self.device}"

    def command(self, scheduler: str, nthreads: int, python: str = sys.executable) -> list[str]:
        return [python, "-m", "distributed.cli.dask_worker", scheduler, "--name", self.name,
                "--nthreads", str(nthreads), "--nworkers", "1", "--resources", "GPU=1"]  # fmt: skip

    def environment(self, base: dict[str, str]) -> dict[str, str]:
        return {**base, "CUDA_VISIBLE_DEVICES": self.device, "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}


def listed_gpus() -> int:
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(line.startswith("GPU ") for line in listed.splitlines())


def gpu_workers(visible: str | None, listed: int) -> list[GPUWorker]:
    """The workers to start: one per device this process may use (`visible`: its CUDA_VISIBLE_DEVICES)."""
    if visible is not None:
        devices = [d.strip() for d in visible.split(",") if d.strip()]
        if not devices:
            raise ConfigError("CUDA_VISIBLE_DEVICES", "is empty: this process may use no GPU")
        return [GPUWorker(d) for d in devices]
    if listed < 1:
        raise ConfigError("nvidia-smi", "lists no GPU on this machine")
    return [GPUWorker(str(i)) for i in range(listed)]


def run_gpu_workers(scheduler: str, nthreads: int = 1) -> int:
    """Start the workers, wait for them, and pass SIGINT/SIGTERM on; the exit code of the first to fail."""
    workers = gpu_workers(os.environ.get("CUDA_VISIBLE_DEVICES"), listed_gpus())
    processes = [subprocess.Popen(w.command(scheduler, nthreads), env=w.environment(dict(os.environ))) for w in workers]

    def stop(signum, _frame) -> None:
        for process in processes:
            process.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    codes = [process.wait() for process in processes]
    return next((code for code in codes if code), 0)
