"""A simulated accelerator: does the build keep its busiest model service busy?

One null service per stage, each on 127.0.0.1 and each speaking the real wire protocol (OpenAI chat for
the LLM, /v1/tts, /v1/audio/transcriptions), serving ONE batch at a time with latency a + b*n for a batch
of n requests: a GPU's fixed per-step cost plus its per-item cost. The services answer with
null_backends' canned text and tones; only their timing is modelled. The costs (LATENCY) are in the
ratios of the throughput model in docs/scale-out.md ("One H100, on paper"): with full batches TTS is the
busiest service (~3x the LLM's GPU time per dialogue, ~2x ASR's), while at batch 1 the LLM's fixed
cost dominates. Times are scaled so a run takes minutes.

The same corpus is built through the real CLI (Prefect flow, thread runner) in each mode, on the same
services, side by side in one run:
  - today:   runner.max_workers 1 and one request in flight per stage (the flow before services);
  - overlap: --workers chunk tasks at once (default 8), requests in flight per chunk task (16 dialogues, 32 clips, 16 chats).
Figures: span = first request to last answer at any service (Prefect's start-up and export excluded),
each service's busy time, span / busiest busy time (target <= 1.15) and the busiest service's
utilisation = busy / span (target >= 0.85).

Run on demand, not in CI:  python benchmarks/simulated_accelerator.py [--dialogues 288] [--chunk-size 8] [--judge]
"""

from __future__ import annotations

import argparse
import json
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import null_backends  # noqa: E402

from empathy_data.backends.wire import encode_audio  # noqa: E402

# seconds: (a per batch, b per item, max batch, max wait for company)
LATENCY = {
    "llm": (0.50, 0.040, 32, 0.02),  # per chat request (one dialogue or exchange)
    "tts": (0.10, 0.300, 16, 0.02),  # per dialogue (its turns and neutral references)
    "asr": (0.10, 0.040, 32, 0.02),  # per clip
}


class BatchingNullService:
    """Requests queue up; one worker takes up to `max_batch` of them (waiting at most `max_wait` for
    company after the first), sleeps a + b*n, answers them all, and only then takes the next batch."""

    def __init__(self, name: str):
        self.name = name
        self.a, self.b, self.max_batch, self.max_wait = LATENCY[name]
        self.queue: queue.Queue = queue.Queue()
        self.reset()
        threading.Thread(target=self._serve, daemon=True).start()

    def reset(self) -> None:
        self.busy = 0.0
        self.batches = 0
        self.items = 0
        self.first: float | None = None
        self.last = 0.0

    def call(self, answer) -> Any:
        done = threading.Event()
        box: dict[str, Any] = {}
        now = time.monotonic()
        self.first = now if self.first is None else min(self.first, now)
        self.queue.put((answer, box, done))
        done.wait()
        return box["result"]

    def _serve(self) -> None:
        while True:
            batch = [self.queue.get()]
            deadline = time.monotonic() + self.max_wait
            while len(batch) < self.max_batch:
                try:
                    batch.append(self.queue.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            cost = self.a + self.b * len(batch)
            time.sleep(cost)
            self.busy += cost
            self.batches += 1
            self.items += len(batch)
            for answer, box, done in batch:
                box["result"] = answer()
                done.set()
            self.last = time.monotonic()

    def report(self) -> dict[str, Any]:
        return {"busy_s": round(self.busy, 2), "batches": self.batches, "items": self.items,
                "mean_batch": round(self.items / max(self.batches, 1), 2)}  # fmt: skip


JUDGEMENT = json.dumps({c: 5 for c in ("emotion", "style", "topic", "reasoning", "naturalness")} | {"why": "null judge"})


def chat_answer(body: dict) -> dict:
    schema = body["response_format"]["json_schema"]["schema"]
    if "exchanges" in schema.get("properties", {}):
        content = null_backends.NullChat().complete(body["messages"], schema, int(body.get("seed", 0)))
    else:  # the script judge's request (--judge)
        content = JUDGEMENT
    return {
        "id": "null", "object": "chat.completion", "created": 0, "model": body.get("model", "null"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }  # fmt: skip


def tts_answer(body: dict) -> dict:
    tone = (0.1 * np.sin(2 * np.pi * 220 * np.arange(16000) / 16000)).astype(np.float32)
    noise = np.random.default_rng(len(body["requests"])).standard_normal(16000).astype(np.float32) * 0.02
    return {"items": [{"audio": encode_audio(tone + noise)} for _ in body["requests"]]}


def start_services() -> tuple[dict[str, BatchingNullService], ThreadingHTTPServer]:
    services = {name: BatchingNullService(name) for name in LATENCY}
    identities = {
        "tts": {"service": "tts", "backend": "null-tts", "sample_rate": 16000},
        "asr": {"service": "asr", "backend": "null-asr"},
    }

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _json(self, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path.endswith("/v1/models"):
                self._json({"object": "list", "data": [{"id": "null", "object": "model"}]})
            else:
                service = self.path.strip("/").split("/")[0]
                self._json({"identity": identities[service]})

        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path == "/llm/v1/chat/completions":
                body = json.loads(raw)
                self._json(services["llm"].call(lambda: chat_answer(body)))
            elif self.path == "/tts/v1/tts":
                body = json.loads(raw)
                self._json(services["tts"].call(lambda: tts_answer(body)))
            elif self.path == "/asr/v1/audio/transcriptions":
                self._json(services["asr"].call(lambda: {"text": ""}))
            else:
                self.send_error(404)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return services, server


def config(mode: str, url: str, out: str, dialogues: int, chunk_size: int, workers: int, judge: bool = False) -> dict[str, Any]:
    overlap = mode == "overlap"
    data = null_backends.null_config(dialogues, out, chunk_size=chunk_size, max_workers=workers if overlap else 1)
    data["script"].update(base_url=f"{url}/llm/v1", structured_output="json_schema", max_in_flight=16 if overlap else 1)
    if judge:  # every script that passes validation is judged by the same LLM service
        data["script"]["judge"] = {"enabled": True}
    data["synthesize"]["tts"] = {"backend": "service", "url": f"{url}/tts", "max_in_flight": 16 if overlap else 1}
    data["filter"]["asr"] = {"backend": "service", "url": f"{url}/asr", "max_in_flight": 32 if overlap else 1}
    if overlap:
        data["runner"]["max_chunks_in_flight"] = 2 * workers
    return data


def run(mode: str, services, url: str, root: Path, dialogues: int, chunk_size: int, workers: int, judge: bool) -> dict[str, Any]:
    for service in services.values():
        service.reset()
    path = root / f"{mode}.yaml"
    path.write_text(yaml.safe_dump(config(mode, url, str(root / mode), dialogues, chunk_size, workers, judge)))
    t0 = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "empathy_data.cli", "build", str(path)], capture_output=True, text=True)
    wall = time.monotonic() - t0
    if done.returncode != 0:
        raise SystemExit(f"{mode} build failed: {done.stderr[-2000:]}")
    span = max(s.last for s in services.values()) - min(s.first for s in services.values() if s.first is not None)
    busiest = max(services.values(), key=lambda s: s.busy)
    return {
        "mode": mode,
        "wall_s": round(wall, 1),
        "span_s": round(span, 2),
        "busiest": busiest.name,
        "span_over_busiest": round(span / busiest.busy, 3),
        "busiest_utilisation": round(busiest.busy / span, 3),
        "services": {name: s.report() for name, s in services.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dialogues", type=int, default=288)
    parser.add_argument("--chunk-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=8, help="overlap mode: chunk tasks at once (they only wait on services)")
    parser.add_argument("--modes", default="today,overlap")
    parser.add_argument("--judge", action="store_true", help="the script judge on: one more LLM request per script")
    args = parser.parse_args()
    services, server = start_services()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    root = Path(tempfile.mkdtemp(prefix="simulated-accelerator-"))
    try:
        modes = args.modes.split(",")
        results = [run(mode, services, url, root, args.dialogues, args.chunk_size, args.workers, args.judge) for mode in modes]
    finally:
        server.shutdown()
        shutil.rmtree(root, ignore_errors=True)
    for result in results:
        print(json.dumps(result))
    if len(results) < 2:
        return
    today, overlap = results
    print(f"span: today {today['span_s']} s, overlap {overlap['span_s']} s ({today['span_s'] / overlap['span_s']:.2f}x faster)")
    print(f"overlap: span / busiest ({overlap['busiest']}) busy = {overlap['span_over_busiest']} (target <= 1.15), "
          f"utilisation {overlap['busiest_utilisation']} (target >= 0.85)")  # fmt: skip


if __name__ == "__main__":
    main()
