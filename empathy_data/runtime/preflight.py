"""Preflight: before any model loads or the output directory is claimed, every configured backend's
library imports, every local model path exists, licences are accepted, and a configured LLM or judge
server answers (each backend's checks are declared with it: backends/builtin.py); GPUs asked for are
there. Each problem is one line naming the config field; nothing is written."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from empathy_data.backends import registry
from empathy_data.backends.spec import needs
from empathy_data.config.model import BuildConfig
from empathy_data.core.errors import ConfigError
from empathy_data.store.output_guard import check_no_shrink, check_output_dir

if TYPE_CHECKING:
    from empathy_data.runtime.build import BuildContext


def check_libraries_and_models(config: BuildConfig) -> None:
    """Every backend the build uses, judges included, through its declaration; then the task runner."""
    registry.preflight(config)
    runner = config.runner
    if runner.kind == "ray":
        needs("runner.kind", ["prefect_ray", "ray"], "pip install 'empathy-data[ray]'")
    elif runner.kind == "dask":
        needs("runner.kind", ["prefect_dask", "distributed"], "pip install 'empathy-data[dask]'")


def visible_gpus() -> int:
    """GPUs a local Ray cluster would find: what the NVIDIA driver lists, limited by CUDA_VISIBLE_DEVICES."""
    from empathy_data.runtime.gpu_workers import listed_gpus

    count = listed_gpus()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return count if visible is None else min(count, len([d for d in visible.split(",") if d.strip()]))


def check_gpu_requests(config: BuildConfig) -> None:
    """A stage that asks for GPUs on a cluster started here must be able to get them, or its tasks would
    wait forever. (A cluster given by address declares its own GPUs.)"""
    runner = config.runner
    asks = {stage: r.gpus for stage, r in config.resources if r.gpus > 0}
    if not asks or runner.kind == "thread" or runner.address:
        return
    stage, gpus = max(asks.items(), key=lambda item: item[1])
    field = f"resources.{stage}.gpus"
    if runner.kind == "dask":
        raise ConfigError(field, "a local Dask cluster does not split GPUs between its workers: give runner.address of "
                                 "a cluster whose workers declare `--resources GPU=n`, or use runner.kind ray")  # fmt: skip
    if gpus > (visible := visible_gpus()):
        raise ConfigError(field, f"asks for {gpus:g} GPU(s) per task, but this machine has {visible} for a local Ray cluster")


def check_gpu_stages(config: BuildConfig, visible: int | None = None) -> None:
    """A stage whose model runs on CUDA must see a GPU: Ray gives a task that asks for no GPU
    CUDA_VISIBLE_DEVICES="" (vLLM and faster-whisper then fail, CosyVoice and FunASR quietly run on the
    CPU), and a machine without one fails the same way. `visible`: GPUs seen here (default: nvidia-smi)."""
    runner = config.runner
    for stage, field in registry.gpu_fields(config).items():
        if runner.kind != "thread" and getattr(config.resources, stage).gpus <= 0:
            raise ConfigError(f"resources.{stage}.gpus", f"is 0, but {field} runs a model on CUDA: {runner.kind} would "
                              "hide every GPU from its tasks; ask for gpus > 0 (0.5 shares one), or run it on the CPU")  # fmt: skip
        if runner.kind == "thread" or not runner.address:
            seen = visible_gpus() if visible is None else visible
            if seen < 1:
                where = os.environ.get("CUDA_VISIBLE_DEVICES")
                why = f"CUDA_VISIBLE_DEVICES={where!r}" if where is not None else "nvidia-smi lists none"
                raise ConfigError(field, f"runs a model on CUDA, but no GPU is visible here ({why})")


LOOPBACK = {"localhost", "127.0.0.1", "::1", "auto", ""}


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    return (urlsplit(url if "://" in url else f"tcp://{url}").hostname or "").lower()


def check_llm_reachable_from_workers(config: BuildConfig) -> None:
    """Script tasks run on the cluster's workers. The embedded LLM server (and any base_url on loopback)
    listens only on this machine, which workers of a cluster elsewhere cannot reach: every script task
    would fail on connection, retry and stop the build."""
    runner, script = config.runner, config.script
    if runner.kind == "thread" or not runner.address or _host(runner.address) in LOOPBACK:
        return
    if script.backend != "openai":
        return
    if script.base_url is None:
        raise ConfigError("script.base_url", f"the embedded LLM server listens on this machine's 127.0.0.1, which "
                          f"the workers of the cluster at {runner.address} cannot reach: give the base_url of a server "
                          "(llama.cpp, vLLM) they can reach")  # fmt: skip
    if _host(script.base_url) in LOOPBACK - {"auto", ""}:
        raise ConfigError("script.base_url", f"{script.base_url} is on loopback, which the workers of the cluster at "
                          f"{runner.address} cannot reach: give an address they can")  # fmt: skip


def preflight(config: BuildConfig, check_servers: bool = True) -> None:
    check_libraries_and_models(config)
    check_gpu_requests(config)
    check_gpu_stages(config)
    check_llm_reachable_from_workers(config)
    if check_servers:
        registry.check_servers(config)


def check_before_build(ctx: BuildContext, allow_shrink: bool = False) -> None:
    """What `empathy-data build` and the deployment flow check before Prefect or any model starts: the
    output directory, a shrink, backend libraries, model paths and a configured LLM server."""
    ctx.store.check_reachable()
    check_output_dir(ctx.store, ctx.planner.key)
    if not allow_shrink:
        check_no_shrink(ctx.store, ctx.config.num_dialogues)
    preflight(ctx.config, check_servers=ctx.regeneration.pending_script_work())
