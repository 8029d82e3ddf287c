"""Entry point of the embedded LLM server process: `python -m empathy_data.script.llama_serve ARGS`.

Runs llama-cpp-python's OpenAI-compatible server with two changes made inside the child, so the
parent never needs `preexec_fn` (unsafe in a process that runs threads):
- it asks the kernel for SIGTERM when the build process dies (PR_SET_PDEATHSIG), even by SIGKILL;
- every request is evaluated from an empty KV cache. llama.cpp otherwise reuses the longest prompt
  prefix it still holds from the previous request, and how much it reuses changes the numerics, so
  the same request (same seed) could come back as different text after another request or after a
  restart. From scratch, a request gets the same reply whatever the server served before.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PARENT_ENV = "EMPATHY_DATA_PARENT_PID"


def die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        return
    parent = int(os.environ.get(PARENT_ENV, "0") or 0)
    if parent and os.getppid() != parent:  # the parent died before prctl took effect
        sys.exit(1)


def evaluate_every_request_from_scratch() -> None:
    from llama_cpp import Llama

    generate = Llama.generate

    def generate_from_scratch(self, tokens, *args, **kwargs):
        self.reset()  # n_tokens = 0: no prefix of the previous prompt is reused
        return generate(self, tokens, *args, **kwargs)

    Llama.generate = generate_from_scratch


def main() -> None:
    die_with_parent()
    evaluate_every_request_from_scratch()
    from llama_cpp.server.__main__ import main as serve

    sys.argv = ["llama_cpp.server", *sys.argv[1:]]
    serve()


if __name__ == "__main__":
    main()
