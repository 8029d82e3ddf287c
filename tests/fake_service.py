"""A test double of a model service on 127.0.0.1: the wire protocol of empathy_data.serving.apps with
canned answers, and faults on demand (HTTP 5xx, a dropped connection, a missing CUDA library, an item
error). It counts the requests it answered.

`FakeService.speaking_service()` stands in for every audio model of a build at once (TTS, ASR, emotion): it
renders each text as a tone whose length encodes the text, and its ASR hears that text back from the
length, so the slow tier's kill, fault and storage builds run the whole pipeline, verdicts included,
with no model to load. Its sample rate is the builds' (16 kHz): no resampling moves the length.
"""

from __future__ import annotations

import json
import struct
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

from empathy_data.backends.wire import encode_audio

RATE = 22050


SPOKEN_RATE = 16000


def spoken_length(text: str) -> int:
    """Samples of the tone that says `text`: 0.25 s to 2.3 s, two samples apart per text hash."""
    return SPOKEN_RATE // 4 + 2 * (zlib.crc32(text.encode()) % 16384)


def wav_frames(body: bytes) -> int:
    """Samples of the WAV file inside a multipart body (float32 mono, as the ASR client sends it)."""
    start = body.index(b"RIFF")
    data = body.index(b"data", start + 12)
    (size,) = struct.unpack("<I", body[data + 4 : data + 8])
    return size // 4


class FakeService:
    def __init__(self, identity: dict[str, Any] | None = None, speaking: bool = False):
        self.identity: dict[str, Any] | None = identity or {
            "service": "tts",
            "backend": "fake-tts",
            "model": {"weights": "a" * 32},
            "sample_rate": SPOKEN_RATE if speaking else RATE,
        }
        self.speaking = speaking
        self.delay_s = 0.0
        self.heard: dict[int, str] = {}  # speaking: tone length -> the text it says
        self.served = ["whisper-large-v3"]  # /v1/models, for a server without /info (identity None)
        self.fault: str | None = None  # "500", "drop", "cuda-library", "item"
        self.requests: list[str] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                service.requests.append(f"GET {self.path}")
                if self.path == "/info" and service.identity is not None:
                    self._answer(200, {"identity": service.identity, "replica": {"loads": 1}})
                elif self.path == "/v1/models":  # what vLLM answers (it has no /info)
                    self._answer(200, {"data": [{"id": m, "root": f"/models/{m}"} for m in service.served]})
                elif self.path == "/version":
                    self._answer(200, {"version": "0.33.0"})
                else:
                    self._answer(404, {"error": "not found"})

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                service.requests.append(f"POST {self.path}")
                fault = service.fault
                if fault == "drop":
                    self.connection.close()  # no answer at all: the client sees the connection go
                    return
                if fault == "500":
                    self._answer(500, {"error": "RuntimeError: engine crashed"})
                    return
                if fault == "cuda-library":
                    self._answer(
                        422, {"error": "RuntimeError: Library libcublas.so.12 is not found or cannot be loaded"}
                    )
                    return
                if fault == "item":
                    self._answer(422, {"error": "ValueError: text has no speakable characters"})
                    return
                if self.path == "/v1/tts" and service.speaking:
                    self._answer(200, {"items": [{"audio": encode_audio(service.say(r["text"]))} for r in json.loads(body)["requests"]]})
                elif self.path == "/v1/tts":
                    requests = json.loads(body)["requests"]
                    tone = np.sin(np.arange(RATE // 2) / 10.0).astype(np.float32) * 0.3
                    self._answer(200, {"items": [{"audio": encode_audio(tone)} for _ in requests]})
                elif self.path == "/v1/emotion":
                    emotion = json.loads(body)["emotion"]
                    self._answer(
                        200, {"passed": emotion != "angry", "score": 0.25, "arousal_shift": 0.125, "predicted": "sad"}
                    )
                elif self.path == "/v1/speaker/embed":
                    self._answer(200, {"embedding": encode_audio(np.array([0.6, 0.8, 0.0], dtype=np.float32))})
                elif self.path == "/v1/mos":
                    self._answer(200, {"ovrl": 3.25, "sig": 3.5, "bak": 4.0})
                elif self.path == "/v1/audio/transcriptions" and service.speaking:
                    self._answer(200, {"text": service.heard.get(wav_frames(body), "")})
                elif self.path == "/v1/audio/transcriptions":
                    self._answer(200, {"text": "hello there"})
                else:
                    self._answer(404, {"error": "not found"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @classmethod
    def speaking_service(cls, delay_s: float = 0.0) -> FakeService:
        """`delay_s`: how long each TTS request takes (a kill test's window); the output is the same."""
        service = cls({"service": "fake-audio", "backend": "fake-speech", "model": {"weights": "s" * 32},
                       "sample_rate": SPOKEN_RATE}, speaking=True)  # fmt: skip
        service.delay_s = delay_s
        return service

    def say(self, text: str) -> np.ndarray:
        time.sleep(self.delay_s)
        n = spoken_length(text)
        self.heard.setdefault(n, text)
        return (0.3 * np.sin(np.arange(n) / 6.0)).astype(np.float32)

    def __enter__(self) -> FakeService:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
