"""Build backends from config, once per worker process.

Tasks on a cluster receive only config (as JSON) and rebuild backends on the worker; the cache keeps
one instance per distinct setting, so a model loads once per process, not once per chunk.
"""

from __future__ import annotations

import json
from functools import lru_cache

from empathy_data.config import FilterConfig, OpenAIScript, SynthesizeConfig


@lru_cache(maxsize=4)
def chat_backend(script_json: str, base_url: str):
    from empathy_data.script.openai_chat import OpenAIChat

    return OpenAIChat(OpenAIScript.model_validate(json.loads(script_json)), base_url)


@lru_cache(maxsize=4)
def tts_backend(synth_json: str):
    config = SynthesizeConfig.model_validate(json.loads(synth_json))
    if config.tts.backend == "espeak":
        from empathy_data.synthesize.espeak import EspeakTTS

        return EspeakTTS()
    raise ValueError(f"unknown TTS backend {config.tts.backend!r}")


@lru_cache(maxsize=4)
def asr_backend(filter_json: str):
    config = FilterConfig.model_validate(json.loads(filter_json))
    if config.asr.backend == "faster-whisper":
        from empathy_data.filter.asr import FasterWhisper

        return FasterWhisper(config.asr)
    raise ValueError(f"unknown ASR backend {config.asr.backend!r}")


@lru_cache(maxsize=4)
def emotion_backend(filter_json: str):
    config = FilterConfig.model_validate(json.loads(filter_json))
    if not config.thresholds.check_emotion:
        return None
    if config.emotion.backend == "prosody":
        from empathy_data.filter.prosody import ProsodyEmotionCheck

        return ProsodyEmotionCheck(config.emotion)
    raise ValueError(f"unknown emotion backend {config.emotion.backend!r}")
