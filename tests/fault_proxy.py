"""A fault-injecting HTTP proxy on 127.0.0.1 for OpenAI-compatible servers (test helper).

Each chat-completion request takes the next fault from a list: "ok" forwards it, "500" answers an
HTTP 500, "reset" closes the connection without answering, "timeout" holds it past the client's
timeout, "malformed" forwards it but cuts the reply's JSON content in half.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FaultProxy:
    def __init__(self, upstream: str, faults: list[str], hold_s: float = 0.0):
        self.upstream = upstream.rstrip("/")
        self.faults = list(faults)
        self.hold_s = hold_s
        self.seen: list[str] = []
        self.auth: list[str | None] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _forward(self, method: str, body: bytes | None) -> tuple[int, bytes]:
                request = urllib.request.Request(
                    proxy.upstream + self.path.removeprefix("/v1"), data=body, method=method,
                    headers={"Content-Type": "application/json"},
                )  # fmt: skip
                with urllib.request.urlopen(request, timeout=600) as response:
                    return response.status, response.read()

            def do_GET(self):  # noqa: N802
                self._reply(*self._forward("GET", None))

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with proxy.lock:
                    fault = proxy.faults.pop(0) if proxy.faults else "ok"
                    proxy.seen.append(fault)
                    proxy.auth.append(self.headers.get("Authorization"))
                if fault == "500":
                    return self._reply(500, b'{"error": {"message": "injected fault"}}')
                if fault == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    return None
                if fault == "timeout":
                    time.sleep(proxy.hold_s)
                    return self._reply(504, b'{"error": {"message": "too late"}}')
                status, data = self._forward("POST", body)
                if fault == "malformed":
                    reply = json.loads(data)
                    content = reply["choices"][0]["message"]["content"]
                    reply["choices"][0]["message"]["content"] = content[: len(content) // 2]
                    data = json.dumps(reply).encode()
                return self._reply(status, data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
