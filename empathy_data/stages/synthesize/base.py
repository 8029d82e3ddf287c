"""The TTS backend protocol: one method over a batch of requests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from empathy_data.core.errors import each_or_error
from empathy_data.core.scoped import seeded_generators
from empathy_data.records.schema import Speaker


@dataclass(frozen=True)
class TTSRequest:
    text: str
    language: str
    speaker: Speaker
    emotion: str | None
    response_style: str | None
    # For sampling TTS models: the same request renders the same audio on any worker, in any order,
    # and a rewritten script (new LLM seed) gets new samples.
    seed: int = 0


class TTSBackend(Protocol):
    sample_rate: int

    @property
    def identity(self) -> dict[str, Any]:
        """What determines the audio: part of the stage cache key."""
        ...

    def synthesize(self, requests: list[TTSRequest]) -> list[np.ndarray | Exception]:
        """Audio (float32 mono at `sample_rate`) per request, or the exception that request raised."""
        ...


def render_each(requests: list[TTSRequest], render: Callable[[TTSRequest], np.ndarray]) -> list[np.ndarray | Exception]:
    """Render requests one by one; an item's exception fails that request only, an infrastructure
    fault (out of memory, a missing file or library) raises and fails the chunk."""
    return each_or_error(requests, render, "tts")


seeded = seeded_generators  # TTS backends whose libraries draw from the global generators
