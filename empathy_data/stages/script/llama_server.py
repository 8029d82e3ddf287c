"""The embedded LLM: a llama.cpp OpenAI-compatible server on a free 127.0.0.1 port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from importlib.util import find_spec
from pathlib import Path

from empathy_data.core.errors import BackendUnavailable
from empathy_data.stages.script.llama_serve import PARENT_ENV, PROMPT_BLOCK

SPIN_BEFORE_SLEEP = "1000"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """Start with `with LlamaServer(...) as base_url:`; the process is stopped on exit, error or not."""

    host = "127.0.0.1"  # never bind beyond loopback

    def __init__(
        self, model: Path, n_threads: int, n_ctx: int, log_path: Path, startup_timeout_s: float = 120,
        python: str = sys.executable,
    ):  # fmt: skip
        self.model = model
        self.python = python  # the interpreter that runs the server: another environment's, for a service
        self.n_threads = n_threads
        self.n_ctx = n_ctx
        self.log_path = log_path
        self.startup_timeout_s = startup_timeout_s
        self.port = 0
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def command(self) -> list[str]:
        return [
            self.python, "-m", "empathy_data.stages.script.llama_serve",
            "--model", str(self.model),
            "--model_alias", "embedded",
            "--host", self.host,
            "--port", str(self.port),
            # both phases: llama-cpp-python's server decodes prompts on every core of the machine by default
            "--n_threads", str(self.n_threads), "--n_threads_batch", str(self.n_threads),
            "--n_ctx", str(self.n_ctx),
            "--n_batch", str(PROMPT_BLOCK), "--n_ubatch", str(PROMPT_BLOCK),
        ]  # fmt: skip

    def environment(self, parent: Mapping[str, str]) -> dict[str, str]:
        """The server process's environment: the parent's, plus what only the child may change."""
        env = {**parent, "PYTHONUNBUFFERED": "1", PARENT_ENV: str(os.getpid())}
        # llama.cpp's OpenMP threads spin while they wait for each other; when another process (Whisper,
        # a second server) holds one of the cores, a spinning thread burns the slice its partner needs.
        # Measured on 2 cores, 0.5B model, 2 threads: generation 21 tok/s alone either way; beside another
        # 2-thread server 3 tok/s with the default spin and 9 tok/s with this one (docs/benchmarks.md).
        env.setdefault("GOMP_SPINCOUNT", SPIN_BEFORE_SLEEP)
        return env

    def start(self) -> str:
        if find_spec("llama_cpp") is None:
            raise BackendUnavailable("the embedded LLM needs llama-cpp-python: pip install 'llama-cpp-python[server]'")
        self.port = free_port()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        env = self.environment(os.environ)
        # The child arranges to die with this process itself (llama_serve): no preexec_fn in a threaded parent.
        self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BackendUnavailable(
                    f"embedded LLM server exited with code {self.process.returncode}; see {self.log_path}"
                )
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as response:
                    if response.status == 200:
                        return self.base_url
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.25)
        self.stop()
        raise BackendUnavailable(
            f"embedded LLM server not healthy after {self.startup_timeout_s:g}s; see {self.log_path}"
        )

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
