"""Null backends for benchmarks only: canned text and audio returned at once, so that what a benchmark
times is the pipeline's own cost (planning, chunk files, FLAC and Parquet, Prefect). Never a default:
`install()` swaps them into `empathy_data.backends.registry` for the current process (thread runner only).
"""

from __future__ import annotations

import json
import random
import zlib
from typing import Any

import numpy as np

from empathy_data.backends import registry as backends

# Words absent from the prompt templates, so a null reply never "copies the prompt" (script validation).
WORDS = (
    "amber basil cobalt dune ember fjord garnet harbor indigo juniper kelp lagoon meadow nectar opal pebble "
    "quartz raven saffron tundra umber velvet willow xenon yarrow zephyr anchor bramble cedar delta "
    "falcon glacier hazel iris jasper kestrel lantern maple nutmeg orchid plume quill ripple sorrel thistle"
).split()


class NullChat:
    """Replies with seeded pseudo-sentences in the schema's shape (English only)."""

    identity = {"backend": "null-chat"}

    def check_reachable(self) -> None:
        pass

    def complete(self, messages: list[dict[str, str]], schema: dict[str, Any], seed: int) -> str:
        rng = random.Random(f"{seed}:{messages[-1]['content']}")
        n = int(schema["properties"]["exchanges"]["minItems"])

        def sentence(k: int) -> str:
            return " ".join(rng.sample(WORDS, k)).capitalize() + "."

        return json.dumps(
            {"exchanges": [{"user": sentence(9), "reasoning": sentence(12), "assistant": sentence(10)} for _ in range(n)]}
        )


class NullTTS:
    """A second of a tone under seeded noise per request, at 16 kHz (noise, so FLAC has real bytes to write)."""

    sample_rate = 16000
    identity = {"backend": "null-tts"}

    def synthesize(self, requests: list) -> list[np.ndarray]:
        t = np.arange(self.sample_rate) / self.sample_rate
        tone = 0.1 * np.sin(2 * np.pi * 220 * t)
        return [
            (tone + 0.02 * np.random.default_rng(zlib.crc32(r.text.encode())).standard_normal(len(t))).astype(np.float32)
            for r in requests
        ]


class NullASR:
    """Hears nothing; run with `filter.thresholds.max_wer: 1.0` so every clip still passes."""

    identity = {"backend": "null-asr"}

    def transcribe(self, audios: list[np.ndarray], languages: list[str]) -> list[str]:
        return ["" for _ in audios]


def install() -> None:
    backends.chat_backend = lambda config, base_url: NullChat()  # type: ignore[assignment]
    backends.tts_backend = lambda config: NullTTS()  # type: ignore[assignment]
    backends.asr_backend = lambda config: NullASR()  # type: ignore[assignment]
    backends.emotion_backend = lambda config: None  # type: ignore[assignment]


def null_config(num_dialogues: int, output: str, chunk_size: int = 64, max_workers: int = 2) -> dict[str, Any]:
    """A build config whose every stage runs on the null backends above."""
    return {
        "name": "null-pipeline",
        "seed": 1,
        "num_dialogues": num_dialogues,
        "chunk_size": chunk_size,
        "output": output,
        "languages": {"en": 1.0},
        "distributions": {
            "user_emotion": {"neutral": 0.2, "happy": 0.2, "sad": 0.2, "angry": 0.2, "fearful": 0.2},
            "exchanges": {1: 0.5, 2: 0.5},
        },
        # the judges are models of their own (judge_costs.py measures them): off, like every other model here
        "script": {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "null", "max_in_flight": 1,
                   "judge": {"enabled": False}, "topic": {"enabled": False}},
        "synthesize": {"sample_rate": 16000, "tts": {"backend": "espeak"}},
        "filter": {"thresholds": {"max_wer": 1.0, "check_emotion": False}, "speaker": {"enabled": False}},
        "export": {"report": False},
        "runner": {"kind": "thread", "max_workers": max_workers},
    }
