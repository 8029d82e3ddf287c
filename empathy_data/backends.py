"""Build backends from config, once per worker process.

Tasks on a cluster receive only config (as JSON) and rebuild backends on the worker; the cache keeps
one instance per distinct setting, so a model loads once per process, not once per chunk. Each
backend module imports its heavy library lazily and names the extra to install when it is missing.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import TypeAdapter

from empathy_data.config import FilterConfig, ScriptConfig, SynthesizeConfig

F = TypeVar("F", bound=Callable[..., Any])


def once_per_process(factory: F) -> F:
    """Cache a factory by its arguments; concurrent first calls build one instance, not one each
    (two threads on a cold cache must never load two engines onto one GPU)."""
    built: dict[tuple, Any] = {}
    locks: dict[tuple, threading.Lock] = {}
    guard = threading.Lock()

    @functools.wraps(factory)
    def cached(*args):
        if args in built:
            return built[args]
        with guard:
            lock = locks.setdefault(args, threading.Lock())
        with lock:
            if args not in built:
                built[args] = factory(*args)
            return built[args]

    cached.cache_clear = built.clear  # type: ignore[attr-defined]
    return cached  # type: ignore[return-value]


@once_per_process
def chat_backend(script_json: str, base_url: str):
    config = TypeAdapter(ScriptConfig).validate_python(json.loads(script_json))
    if config.backend == "vllm":
        from empathy_data.script.vllm_offline import VLLMChat

        return VLLMChat(config)
    from empathy_data.script.openai_chat import OpenAIChat

    return OpenAIChat(config, base_url)


@once_per_process
def tts_backend(synth_json: str):
    tts = SynthesizeConfig.model_validate(json.loads(synth_json)).tts
    if tts.backend == "cosyvoice2":
        from empathy_data.synthesize.cosyvoice import CosyVoice2TTS

        return CosyVoice2TTS(tts)
    if tts.backend == "xtts":
        from empathy_data.synthesize.xtts import XTTS

        return XTTS(tts)
    from empathy_data.synthesize.espeak import EspeakTTS

    return EspeakTTS()


@once_per_process
def asr_backend(filter_json: str):
    asr = FilterConfig.model_validate(json.loads(filter_json)).asr
    if asr.backend == "transformers":
        from empathy_data.filter.asr_transformers import TransformersASRBackend

        return TransformersASRBackend(asr)
    from empathy_data.filter.asr import FasterWhisper

    return FasterWhisper(asr)


@once_per_process
def emotion_backend(filter_json: str):
    config = FilterConfig.model_validate(json.loads(filter_json))
    if not config.thresholds.check_emotion:
        return None
    emotion = config.emotion
    if emotion.backend == "prosody":
        from empathy_data.filter.prosody import ProsodyEmotionCheck

        return ProsodyEmotionCheck(emotion)
    from empathy_data.filter.emotion_classifier import classifier_check

    return classifier_check(emotion)
