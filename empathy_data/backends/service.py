"""The build's backends for model services: the TTS and ASR protocols, answered over HTTP.

Each chunk task keeps `max_in_flight` requests open; the service gathers requests from every chunk
task into batches. A request names its caller (process and chunk thread), so a service can count how
many batches mixed work from several chunks.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from empathy_data.backends.service_client import ITEM_STATUSES, ServiceClient, bounded_map, item_error
from empathy_data.backends.wire import (
    decode_audio,
    emotion_item_to_json,
    emotion_result_from_json,
    encode_audio,
    tts_request_to_json,
    wav_bytes,
)
from empathy_data.config.model import ServiceASR, ServiceEndpoint, ServiceSynth
from empathy_data.stages.filter.base import EmotionItem, EmotionResult
from empathy_data.stages.filter.mos import MOSResult
from empathy_data.stages.synthesize.base import TTSRequest

CALLER_HEADER = "X-Empathy-Caller"
ASR_RATE = 16000


def caller() -> str:
    return f"{os.getpid()}-{threading.get_ident()}"


class ServiceTTS:
    """`POST {url}/v1/tts` with one dialogue's turns per request (a dialogue renders as one unit, as
    in-process: espeak's output depends on what it rendered before in the same call)."""

    def __init__(self, config: ServiceSynth):
        self.config = config
        self.client = ServiceClient(config.url, config.timeout_s, config.request_retries, "synthesize.tts.url")
        self.sample_rate = int(self.client.identity().get("sample_rate") or 0)
        if self.sample_rate <= 0:
            raise self.client.fault("its /info identity has no sample_rate: is this a TTS service?")

    @property
    def identity(self) -> dict[str, Any]:
        return self.client.identity()

    def synthesize(self, requests: list[TTSRequest]) -> list[np.ndarray | Exception]:
        return next(self.synthesize_many([requests]))

    def synthesize_many(self, dialogues: Iterable[list[TTSRequest]]) -> Iterator[list[np.ndarray | Exception]]:
        """Each dialogue's audio, in order, with up to max_in_flight dialogues at the service at once."""
        tag = caller()
        return bounded_map(lambda requests: self._render(requests, tag), dialogues, self.config.max_in_flight)

    def _render(self, requests: list[TTSRequest], tag: str) -> list[np.ndarray | Exception]:
        body = {"requests": [tts_request_to_json(r) for r in requests]}
        response = self.client.request("POST", "/v1/tts", json=body, headers={CALLER_HEADER: tag})
        if response.status_code in ITEM_STATUSES:
            error = item_error(response, self.client)
            return [error] * len(requests)
        items = response.json()["items"]
        if len(items) != len(requests):
            raise self.client.fault(f"answered {len(items)} items for {len(requests)} requests")
        rendered: list[np.ndarray | Exception] = []
        for item in items:
            if "audio" in item:
                rendered.append(decode_audio(item["audio"]))
            else:
                rendered.append(RuntimeError(str(item.get("error", "no audio"))))
        return rendered

    def close(self) -> None:
        self.client.close()


class ServiceTranscriber:
    """OpenAI's transcription API, one clip per request (`/v1/audio/transcriptions`, float32 WAV)."""

    def __init__(self, config: ServiceASR):
        self.config = config
        self.client = ServiceClient(config.url, config.timeout_s, config.request_retries, "filter.asr.url")
        self._identity: dict[str, Any] | None = None

    @property
    def identity(self) -> dict[str, Any]:
        if self._identity is None:
            self._identity = self.client.identity_or(self._openai_server_identity)
        return self._identity

    def _openai_server_identity(self) -> dict[str, Any]:
        """A server without /info (vLLM): the served models (id and the weights' path) and its version."""
        models = self.client.get_json("/v1/models")
        served = [{"id": m.get("id"), "root": m.get("root")} for m in models.get("data", [])]
        if not any(m["id"] == self.config.model for m in served):
            names = ", ".join(str(m["id"]) for m in served) or "none"
            raise self.client.fault(f"serves no model {self.config.model!r} (it serves: {names})")
        version = self.client.get_json("/version", optional=True) or {}
        return {"backend": "openai-transcriptions", "models": served, "version": version.get("version")}

    def transcribe(self, audios: list[np.ndarray], languages: list[str]) -> list[str | Exception]:
        tag = caller()
        pairs = list(zip(audios, languages, strict=True))
        return list(bounded_map(lambda pair: self._one(*pair, tag), pairs, self.config.max_in_flight))

    def _one(self, audio: np.ndarray, language: str, tag: str) -> str | Exception:
        files = {"file": ("audio.wav", wav_bytes(audio, ASR_RATE), "audio/wav")}
        form = {"model": self.config.model, "language": language, "temperature": "0", "response_format": "json"}
        response = self.client.request(
            "POST", "/v1/audio/transcriptions", files=files, data=form, headers={CALLER_HEADER: tag}
        )
        if response.status_code in ITEM_STATUSES:
            return item_error(response, self.client)
        return str(response.json().get("text", "")).strip()

    def close(self) -> None:
        self.client.close()


class _ItemJudge:
    """One item per request to `route`: `body(item)` is the request's JSON, `read(answer)` the result."""

    route = ""
    field = ""

    def __init__(self, config: ServiceEndpoint):
        self.config = config
        self.client = ServiceClient(config.url, config.timeout_s, config.request_retries, self.field)

    @property
    def identity(self) -> dict[str, Any]:
        return self.client.identity()

    def _each(self, items: list[Any]) -> list[Any]:
        tag = caller()
        return list(bounded_map(lambda item: self._one(item, tag), items, self.config.max_in_flight))

    def _one(self, item: Any, tag: str) -> Any:
        response = self.client.request("POST", self.route, json=self.body(item), headers={CALLER_HEADER: tag})
        if response.status_code in ITEM_STATUSES:
            return item_error(response, self.client)
        return self.read(response.json())

    def body(self, item: Any) -> dict[str, Any]:
        return {"audio": encode_audio(item[0]), "sample_rate": int(item[1])}  # an (audio, sample_rate) clip

    def read(self, answer: dict[str, Any]) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        self.client.close()


class ServiceEmotionCheck(_ItemJudge):
    """`POST {url}/v1/emotion`, one clip (and its neutral reference, if any) per request."""

    route = "/v1/emotion"
    field = "filter.emotion.url"

    def check_batch(self, items: list[EmotionItem]) -> list[EmotionResult | Exception]:
        return self._each(items)

    def body(self, item: EmotionItem) -> dict[str, Any]:
        return emotion_item_to_json(item)

    def read(self, answer: dict[str, Any]) -> EmotionResult:
        return emotion_result_from_json(answer)


class ServiceSpeakerEncoder(_ItemJudge):
    """The speaker judge's encoder at `POST {url}/v1/speaker/embed`."""

    route = "/v1/speaker/embed"
    field = "filter.speaker.service.url"

    def embed_batch(self, clips: list[tuple[np.ndarray, int]]) -> list[np.ndarray | Exception]:
        return self._each(clips)

    def read(self, answer: dict[str, Any]) -> np.ndarray:
        return decode_audio(answer["embedding"])  # float32 vector, same encoding as audio


class ServiceMOS(_ItemJudge):
    """DNSMOS at `POST {url}/v1/mos`."""

    route = "/v1/mos"
    field = "filter.mos.service.url"

    def score_batch(self, clips: list[tuple[np.ndarray, int]]) -> list[MOSResult | Exception]:
        return self._each(clips)

    def read(self, answer: dict[str, Any]) -> MOSResult:
        return MOSResult(ovrl=float(answer["ovrl"]), sig=float(answer["sig"]), bak=float(answer["bak"]))
