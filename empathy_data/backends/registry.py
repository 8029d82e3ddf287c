"""Build backends from config, once per worker process, and release them when their stage is done.

Tasks on a cluster receive the validated config and rebuild backends on the worker; the cache keeps
one instance per distinct setting, so a model loads once per process, not once per chunk. Each
backend module imports its heavy library lazily and names the extra to install when it is missing.
"""

from __future__ import annotations

import functools
import gc
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from pydantic import BaseModel

from empathy_data.config.model import FilterConfig, MOSCheck, ScriptConfig, SpeakerCheck, SynthesizeConfig, TopicCheck

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


@once_per_process
def chat_backend(config: ScriptConfig, base_url: str):
    if config.backend == "vllm":
        from empathy_data.stages.script.vllm_offline import VLLMChat

        return VLLMChat(config)
    from empathy_data.stages.script.openai_chat import OpenAIChat

    return OpenAIChat(config, base_url)


def judge_chat(config: ScriptConfig, chat):
    """The script judge's client: the script stage's own server and model (`chat`) with the judge's
    sampling, or the server at `script.judge.base_url`."""
    judge = config.judge
    sampling = {
        "temperature": judge.temperature,
        "top_p": 1.0,
        "frequency_penalty": 0.0,
        "presence_penalty": 0.0,
        "max_tokens": judge.max_tokens,
        "max_tokens_per_exchange": 0,
    }
    if judge.base_url is None:
        return chat.with_sampling(**sampling)
    from empathy_data.config.model import OpenAIScript

    model = judge.model or (config.model if config.backend == "openai" else "default")
    served = OpenAIScript(base_url=judge.base_url, model=model, api_key_env=judge.api_key_env, **sampling)
    return chat_backend(served, judge.base_url)


@once_per_process
def text_embedder(config: TopicCheck):
    from empathy_data.stages.script.embeddings import SentenceEmbedder

    return SentenceEmbedder(config)


@once_per_process
def tts_backend(config: SynthesizeConfig):
    tts = config.tts
    if tts.backend == "service":
        from empathy_data.backends.service import ServiceTTS

        return ServiceTTS(tts)
    if tts.backend == "triton":
        from empathy_data.backends.triton import TritonTTS

        return TritonTTS(tts)
    if tts.backend == "cosyvoice2":
        from empathy_data.stages.synthesize.cosyvoice import CosyVoice2TTS

        return CosyVoice2TTS(tts)
    if tts.backend == "xtts":
        from empathy_data.stages.synthesize.xtts import XTTS

        return XTTS(tts)
    from empathy_data.stages.synthesize.espeak import EspeakTTS

    return EspeakTTS()


@once_per_process
def asr_backend(config: FilterConfig):
    asr = config.asr
    if asr.backend == "service":
        from empathy_data.backends.service import ServiceTranscriber

        return ServiceTranscriber(asr)
    if asr.backend == "transformers":
        from empathy_data.stages.filter.asr_transformers import TransformersASRBackend

        return TransformersASRBackend(asr)
    from empathy_data.stages.filter.asr import FasterWhisper

    return FasterWhisper(asr)


@once_per_process
def emotion_backend(config: FilterConfig):
    if not config.thresholds.check_emotion:
        return None
    emotion = config.emotion
    if emotion.backend == "service":
        from empathy_data.backends.service import ServiceEmotionCheck

        return ServiceEmotionCheck(emotion)
    if emotion.backend == "prosody":
        from empathy_data.stages.filter.prosody import ProsodyEmotionCheck

        return ProsodyEmotionCheck(emotion)
    from empathy_data.stages.filter.emotion_classifier import classifier_check

    return classifier_check(emotion)


@once_per_process
def speaker_encoder(config: SpeakerCheck):
    if config.service is not None:
        from empathy_data.backends.service import ServiceSpeakerEncoder

        return ServiceSpeakerEncoder(config.service)
    from empathy_data.stages.filter.speaker import ResemblyzerEncoder, XVectorEncoder

    if config.backend == "xvector":
        return XVectorEncoder(config.model, config.device, config.batch_size)
    return ResemblyzerEncoder(config.device, config.batch_size)


@once_per_process
def mos_backend(config: MOSCheck):
    if config.service is not None:
        from empathy_data.backends.service import ServiceMOS

        return ServiceMOS(config.service)
    from empathy_data.stages.filter.mos import DNSMOS

    return DNSMOS(config.model, config.device, config.batch_size, config.personalized)


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
