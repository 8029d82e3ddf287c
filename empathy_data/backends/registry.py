"""The backend registry: every backend a build uses is looked up here by its role and its config, and
built, keyed, preflighted and released through its one declaration (backends/builtin.py, or `register`).

Tasks on a cluster receive the validated config and rebuild backends on the worker; the cache keeps
one instance per distinct setting, so a model loads once per process, not once per chunk. Each
backend module imports its heavy library lazily; preflight names what to install when it is missing.
"""

from __future__ import annotations

import functools
import gc
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from pydantic import BaseModel

from empathy_data.backends.builtin import BUILTIN
from empathy_data.backends.spec import ROLES, Backend, MissingWeights, needs
from empathy_data.config.model import (
    BuildConfig,
    FilterConfig,
    MOSCheck,
    OpenAIScript,
    ScriptConfig,
    SpeakerCheck,
    SynthesizeConfig,
    TopicCheck,
)
from empathy_data.core.errors import BackendUnavailable, ConfigError
from empathy_data.planning.prompt_library import PromptLibrary
from empathy_data.weights.fingerprint import library_versions

F = TypeVar("F", bound=Callable[..., Any])


def _cache_key(args: tuple) -> tuple:
    """A config's settings, not its identity: equal configs from two tasks share one backend."""
    return tuple(a.model_dump_json() if isinstance(a, BaseModel) else a for a in args)


def once_per_process(factory: F) -> F:
    """Cache a factory by its arguments; concurrent first calls build one instance, not one each
    (two threads on a cold cache must never load two engines onto one GPU)."""
    built: dict[tuple, Any] = {}
    locks: dict[tuple, threading.Lock] = {}
    guard = threading.Lock()

    @functools.wraps(factory)
    def cached(*args):
        key = _cache_key(args)
        found = built.get(key)  # one lookup: release() may clear the cache between two
        if found is not None:
            return found
        with guard:
            lock = locks.setdefault(key, threading.Lock())
        with lock:
            found = built.get(key)
            if found is None:
                found = built[key] = factory(*args)
            return found

    def clear() -> int:
        with guard:
            dropped = list(built.values())
            built.clear()
        for backend in dropped:
            close = getattr(backend, "close", None)
            if callable(close):
                close()
        return len(dropped)

    cached.cache_clear = clear  # type: ignore[attr-defined]
    return cached  # type: ignore[return-value]


REGISTRY: dict[tuple[str, str], Backend] = {}


def register(backend: Backend) -> Backend:
    """Declare a backend (docs/add-a-backend.md). A role and kind are declared once."""
    if backend.role not in ROLES:
        raise ValueError(f"unknown role {backend.role!r} (known: {', '.join(ROLES)})")
    if (backend.role, backend.kind) in REGISTRY:
        raise ValueError(f"{backend.role} backend {backend.kind!r} is declared twice")
    REGISTRY[(backend.role, backend.kind)] = backend
    return backend


for _backend in BUILTIN:
    register(_backend)


def kind_of(role: str, config: Any) -> str:
    """Which declared backend a config names: its `backend:`, or the variant its settings pick."""
    if role == "llm":
        return "vllm" if config.backend == "vllm" else "embedded" if config.base_url is None else "openai"
    if role == "topic":
        return "sentence-transformers"
    if role in ("speaker", "mos") and config.service is not None:
        return "service"
    return config.backend


def declared(role: str, config: Any) -> Backend:
    kind = kind_of(role, config)
    try:
        return REGISTRY[(role, kind)]
    except KeyError:
        known = ", ".join(sorted(k for r, k in REGISTRY if r == role))
        raise ConfigError(ROLES[role], f"no {role} backend {kind!r} is declared (known: {known})") from None


def judge_server(config: ScriptConfig) -> OpenAIScript | None:
    """The script judge's own server, when `script.judge.base_url` names one."""
    judge = config.judge
    if not judge.enabled or judge.base_url is None:
        return None
    model = judge.model or (config.model if config.backend == "openai" else "default")
    return OpenAIScript(base_url=judge.base_url, model=model, api_key_env=judge.api_key_env, **judge_sampling(config))


def in_use(config: BuildConfig) -> list[tuple[str, str, Any]]:
    """(role, config field, settings) of every backend a build uses, judges included, in stage order."""
    script, filter_ = config.script, config.filter
    used: list[tuple[str, str, Any]] = [("llm", "script", script)]
    if (judge := judge_server(script)) is not None:
        used.append(("llm", "script.judge", judge))
    if script.topic.enabled:
        used.append(("topic", "script.topic", script.topic))
    used += [("tts", "synthesize.tts", config.synthesize.tts), ("asr", "filter.asr", filter_.asr)]
    if filter_.thresholds.check_emotion:
        used.append(("emotion", "filter.emotion", filter_.emotion))
    if filter_.speaker.enabled:
        used.append(("speaker", "filter.speaker", filter_.speaker))
    if filter_.mos is not None:
        used.append(("mos", "filter.mos", filter_.mos))
    return used


def preflight(config: BuildConfig) -> None:
    """Every backend the build uses: its declared checks (model paths, licences) and its modules import.
    One line naming the config field; nothing loads."""
    for role, where, settings in in_use(config):
        backend = declared(role, settings)
        backend.check(settings, where)
        needs(where, backend.requires, backend.install)


def check_servers(config: BuildConfig) -> None:
    """The servers the build's backends talk to answer (the LLM's and the judge's)."""
    for role, where, settings in in_use(config):
        declared(role, settings).reachable(settings, where)


def gpu_fields(config: BuildConfig) -> dict[str, str]:
    """stage -> the config field that puts one of its models on a GPU in this build's own processes (a
    model service places its models itself)."""
    found: dict[str, str] = {}
    for role, _, settings in in_use(config):
        field = declared(role, settings).gpu(settings)
        if field is not None:
            found.setdefault(ROLES[role].split(".")[0], field)  # the stage: script, synthesize, filter
    return found


# Stage keys: what each stage's backends contribute (declared with them), inside the stage's settings.


def key_of(role: str, config: Any) -> tuple[Any, tuple[str, ...]]:
    """A backend's part of its stage key and the libraries whose versions join it. Weights that are not
    there are one line naming their field, never the fingerprint of nothing."""
    backend = declared(role, config)
    try:
        return backend.key(config), backend.libraries
    except MissingWeights as exc:
        raise BackendUnavailable(f"{ROLES[role]}.{exc}") from None


# Left out of the script key on purpose: server address, API key variable, timeouts, concurrency and
# retry counts (they change speed, not output); the LLM's own part comes from its declaration.
SCRIPT_SPEED_ONLY = {"base_url", "api_key_env", "max_in_flight", "timeout_s", "request_retries", "embedded"}


def script_identity(script: ScriptConfig) -> dict[str, Any]:
    """The script settings that decide the LLM's replies and the verdicts on them."""
    from empathy_data.stages.script.embeddings import embedder_identity

    s = script.model_dump(mode="json", exclude=SCRIPT_SPEED_ONLY | {"judge", "topic"})
    if script.judge.enabled:
        s["judge"] = script.judge.model_dump(mode="json", exclude={"api_key_env", "base_url"})
        s["judge"]["mode"] = script.judge.mode if script.judge.calibrated else script.judge.modes()[0]
        s["judge"]["min_scores"] = script.judge.thresholds()
        s["judge"]["match"] = list(script.judge.label_gate())
    if script.topic.enabled:  # the scripts keep their embeddings (export's semantic duplicates read them)
        s["topic"] = script.topic.model_dump(mode="json", exclude={"device", "batch_size", "model"})
        s["topic"]["identity"] = embedder_identity(script.topic)
    return s | declared("llm", script).key(script)


def stage_settings(config: BuildConfig, prompts: PromptLibrary) -> dict[str, dict[str, Any]]:
    """What each stage's cache key hashes besides its upstream key (store/work_layout.py): exactly what
    changes its output, weights by their content fingerprint, never where they are mounted."""
    script = {"script": script_identity(config.script), "prompts": prompts.content_hash}
    judge = config.script.judge
    if judge.enabled and "labels" in judge.modes():
        script["judge_labels_prompts"] = prompts.judge_labels_hash
    if judge.calibrated:  # the cases decide whether the judge gates, and in which mode
        script["judge_cases"] = prompts.judge_cases_hash
    if config.ingest is not None or config.contrast is not None:
        script["reply_prompts"] = prompts.reply_hash
    if config.contrast is not None:
        script["contrast_prompts"] = prompts.contrast_hash
    return {"script": script, "synthesize": synthesize_identity(config.synthesize), "filter": filter_identity(config.filter)}


def synthesize_identity(config: SynthesizeConfig) -> dict[str, Any]:
    settings = config.model_dump(mode="json")
    settings["tts"], libraries = key_of("tts", config.tts)
    return {"settings": settings, "library": library_versions(*libraries)}


def filter_identity(config: FilterConfig) -> dict[str, Any]:
    settings = config.model_dump(mode="json")
    settings["asr"], asr_libraries = key_of("asr", config.asr)
    try:
        settings["emotion"], emotion_libraries = key_of("emotion", config.emotion)
    except BackendUnavailable:
        if config.thresholds.check_emotion:
            raise
        emotion_libraries = declared("emotion", config.emotion).libraries  # unused: weights never read
    libraries = [*asr_libraries, *emotion_libraries]
    if config.thresholds.check_emotion and config.emotion.calibrated:
        from empathy_data.stages.filter.calibration import PROBE_VERSION

        settings["emotion_gate"] = {**config.emotion.gate_settings(), "probe": PROBE_VERSION}
    if not config.speaker.enabled:
        settings["speaker"] = {"enabled": False}
    else:
        settings["speaker"], speaker_libraries = key_of("speaker", config.speaker)
        libraries += speaker_libraries
    if config.mos is not None:
        settings["mos"], mos_libraries = key_of("mos", config.mos)
        libraries += mos_libraries
    return {"settings": settings, "library": library_versions(*libraries)}


# Builders: one instance per distinct setting per process (a model loads once per worker).


@once_per_process
def chat_backend(config: ScriptConfig, base_url: str):
    return declared("llm", config).build(config, base_url)


def judge_sampling(config: ScriptConfig) -> dict[str, Any]:
    judge = config.judge
    return {"temperature": judge.temperature, "top_p": 1.0, "frequency_penalty": 0.0, "presence_penalty": 0.0,
            "max_tokens": judge.max_tokens, "max_tokens_per_exchange": 0}  # fmt: skip


def judge_chat_at(config: ScriptConfig, base_url: str):
    """The script judge's client where the script stage's server answers at `base_url` (unused when the judge
    has its own server)."""
    return judge_chat(config, chat_backend(config, base_url) if judge_server(config) is None else None)


def judge_chat(config: ScriptConfig, chat):
    """The script judge's client: the script stage's own server and model (`chat`) with the judge's
    sampling, or the server at `script.judge.base_url`."""
    served = judge_server(config)
    if served is None:
        return chat.with_sampling(**judge_sampling(config))
    return chat_backend(served, served.base_url)


@once_per_process
def text_embedder(config: TopicCheck):
    return declared("topic", config).build(config)


@once_per_process
def tts_backend(config: SynthesizeConfig):
    return declared("tts", config.tts).build(config.tts)


@once_per_process
def asr_backend(config: FilterConfig):
    return declared("asr", config.asr).build(config.asr)


@once_per_process
def emotion_backend(config: FilterConfig):
    if not config.thresholds.check_emotion:
        return None
    return declared("emotion", config.emotion).build(config.emotion)


@once_per_process
def speaker_encoder(config: SpeakerCheck):
    return declared("speaker", config).build(config)


@once_per_process
def mos_backend(config: MOSCheck):
    return declared("mos", config).build(config)


STAGE_BACKENDS = {"script": (chat_backend, text_embedder), "synthesize": (tts_backend,), "filter": (asr_backend, emotion_backend, speaker_encoder, mos_backend)}


def release(stages: Iterable[str]) -> list[str]:
    """Drop this process's models of `stages` (the build has no more work for them), so their memory,
    GPU memory included, goes to the stages still running. Returns the stages that held a model."""
    released = [stage for stage in stages if sum(f.cache_clear() for f in STAGE_BACKENDS[stage])]  # type: ignore[attr-defined]
    if released:
        gc.collect()
        torch = sys.modules.get("torch")  # only if a backend brought it in
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()
    return released
