"""A test double of a model service on 127.0.0.1: the wire protocol of empathy_data.serving.apps with
canned answers, and faults on demand (HTTP 5xx, a dropped connection, a missing CUDA library, an item
error). It counts the requests it answered."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

from empathy_data.backends.wire import encode_audio

RATE = 22050


class FakeService:
    def __init__(self, identity: dict[str, Any] | None = None):
        self.identity: dict[str, Any] | None = identity or {
            "service": "tts",
            "backend": "fake-tts",
            "model": {"weights": "a" * 32},
            "sample_rate": RATE,
        }
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
                if self.path == "/v1/tts":
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
                elif self.path == "/v1/audio/transcriptions":
                    self._answer(200, {"text": "hello there"})
                else:
                    self._answer(404, {"error": "not found"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeService:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
