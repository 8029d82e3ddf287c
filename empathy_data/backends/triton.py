"""CosyVoice2/3 on Triton Inference Server (upstream's runtime/triton_trtllm, TensorRT-LLM inside).

Triton's HTTP/REST protocol (KServe v2): `POST {url}/v2/models/{model}/infer` with the inputs
`reference_wav` (float32 at 16 kHz), `reference_wav_len`, `reference_text` and `target_text`, and the
output `waveform` (float32 at 24 kHz). Audio travels in Triton's binary tensor extension, not as JSON
numbers. Triton's dynamic batcher gathers the requests of every chunk task.

The key takes what Triton reports: server name and version, the model's metadata (name, versions,
platform, inputs, outputs) and its configured parameters (upstream's model repository names its model
and tokenizer directories there). The runtime takes no seed: a re-render may differ, and resume stays
exact through the chunk cache.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from empathy_data.backends.service_client import ITEM_STATUSES, ServiceClient, bounded_map, first_line, item_error
from empathy_data.config.model import TritonSynth
from empathy_data.core.audio import read_audio, resample
from empathy_data.stages.synthesize.base import TTSRequest
from empathy_data.stages.synthesize.clips import pick_clip

HEADER_LENGTH = "Inference-Header-Content-Length"
# Triton answers 500 when the model's own code raised on a request (CosyVoice's text frontend on odd text,
# or CUDA out of memory): the text tells which. Anything else at 5xx is the server's.
MODEL_RAISED = "Failed to process the request(s) for model"
VOLATILE_PARAMETERS = {"workspace-path"}  # PyTriton's scratch directory, new on every start


RAISED_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception)\w*: .+")


def raised_line(text: str, limit: int = 300) -> str:
    """The last "SomeError: message" line of the traceback Triton's Python backend sends, else its first line."""
    found = [line.strip() for line in text.splitlines() if RAISED_LINE.match(line.strip())]
    return (found[-1] if found else first_line(text))[:limit]


def infer_body(reference: np.ndarray, reference_text: str, target_text: str, pad_to: int = 0) -> tuple[bytes, dict[str, str]]:
    """One request in Triton's binary tensor form: the JSON header, then the reference audio's bytes,
    zero-padded to a multiple of `pad_to` samples."""
    length = len(reference)
    padded = -(-length // pad_to) * pad_to if pad_to else length
    wav = np.zeros((1, padded), dtype="<f4")
    wav[0, :length] = reference
    header = {
        "inputs": [
            {"name": "reference_wav", "shape": list(wav.shape), "datatype": "FP32", "parameters": {"binary_data_size": wav.nbytes}},
            {"name": "reference_wav_len", "shape": [1, 1], "datatype": "INT32", "data": [[length]]},
            {"name": "reference_text", "shape": [1, 1], "datatype": "BYTES", "data": [reference_text]},
            {"name": "target_text", "shape": [1, 1], "datatype": "BYTES", "data": [target_text]},
        ],
        "outputs": [{"name": "waveform", "parameters": {"binary_data": True}}],
    }
    head = json.dumps(header).encode("utf-8")
    headers = {HEADER_LENGTH: str(len(head)), "Content-Type": "application/octet-stream"}
    return head + wav.tobytes(), headers


def waveform_of(response: httpx.Response) -> np.ndarray:
    """The `waveform` output of an infer response, binary or JSON."""
    body = response.content
    length = response.headers.get(HEADER_LENGTH)
    head = json.loads(body[: int(length)] if length else body)
    offset = int(length) if length else 0
    for output in head.get("outputs", []):
        size = (output.get("parameters") or {}).get("binary_data_size")
        if output.get("name") == "waveform":
            if size is not None:
                return np.frombuffer(body[offset : offset + int(size)], dtype="<f4").astype(np.float32)
            return np.asarray(output["data"], dtype=np.float32).reshape(-1)
        offset += int(size or 0)
    raise ValueError("the answer has no `waveform` output")


class TritonTTS:
    """The TTS protocol over a Triton server; each turn is one infer request, `max_in_flight` dialogues
    of one chunk task at the server at once."""

    def __init__(self, config: TritonSynth):
        self.config = config
        self.sample_rate = config.sample_rate
        self.client = ServiceClient(config.url, config.timeout_s, config.request_retries, "synthesize.tts.url")
        self.route = f"/v2/models/{config.model}"
        self._identity: dict[str, Any] | None = None
        self._clips: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    @property
    def identity(self) -> dict[str, Any]:
        if self._identity is None:
            server = self.client.get_json("/v2")
            model = self.client.get_json(self.route, optional=True)
            if model is None:
                raise self.client.fault(f"Triton serves no model {self.config.model!r} (GET {self.route}: 404)")
            model_config = self.client.get_json(f"{self.route}/config", optional=True) or {}
            self._identity = {
                "backend": "triton",
                "server": {k: server.get(k) for k in ("name", "version")},
                "model": {k: model.get(k) for k in ("name", "versions", "platform", "inputs", "outputs")},
                "parameters": {
                    k: v for k, v in (model_config.get("parameters") or {}).items() if k not in VOLATILE_PARAMETERS
                },
                "sample_rate": self.config.sample_rate,
                "reference_sample_rate": self.config.reference_sample_rate,
            }
        return self._identity

    def reference(self, path: str) -> np.ndarray:
        """The clip at the model's reference rate, read once per client."""
        with self._lock:
            if path not in self._clips:
                audio, rate = read_audio(Path(path))
                self._clips[path] = resample(audio, rate, self.config.reference_sample_rate)
            return self._clips[path]

    def render(self, request: TTSRequest) -> np.ndarray | Exception:
        try:
            clip = pick_clip(request)
            reference = self.reference(clip.path)
        except (ValueError, OSError) as exc:  # no clip, or one that cannot be read: this item's fault
            return RuntimeError(f"reference clip: {exc}")
        pad_to = int(self.config.reference_pad_s * self.config.reference_sample_rate)
        body, headers = infer_body(reference, clip.transcript, request.text, pad_to)
        response = self.client.request("POST", f"{self.route}/infer", allow=(500,), content=body, headers=headers)
        if response.status_code == 500 and MODEL_RAISED not in response.text:
            raise self.client.fault(f"HTTP 500: {first_line(response.text)}")
        if response.status_code in (*ITEM_STATUSES, 500):  # Triton sends the model's whole traceback
            return item_error(response, self.client, raised_line)
        try:
            audio = waveform_of(response)
        except (ValueError, KeyError) as exc:
            raise self.client.fault(f"unreadable infer answer: {exc}") from None
        if audio.size == 0:
            return RuntimeError("Triton returned no audio")
        return audio

    def synthesize(self, requests: list[TTSRequest]) -> list[np.ndarray | Exception]:
        return [self.render(r) for r in requests]

    def synthesize_many(self, dialogues: Iterable[list[TTSRequest]]) -> Iterator[list[np.ndarray | Exception]]:
        return bounded_map(self.synthesize, dialogues, self.config.max_in_flight)

    def close(self) -> None:
        self.client.close()
