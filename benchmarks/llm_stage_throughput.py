"""The script stage against the LLM server's own best throughput, on the same requests.

1. The script stage writes N smoke-config dialogues against the embedded llama.cpp server (a fresh
   output: no journal), through the build's own chunk function; every request it sends is recorded.
2. The same requests (messages, schema, seed) are sent straight to the same server through the backend's
   bare `complete()`, at concurrency 1 and 2, with nothing else around them: the server's best.

The server evaluates every request from an empty KV cache with the request's seed, so the replies, and
the tokens counted (the model's tokenizer over each reply), are the same in every run.

Run on demand, not in CI:  python benchmarks/llm_stage_throughput.py [--dialogues 6] [--max-in-flight 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


class Recording:
    """Wraps a chat backend: every request and reply the stage makes, in order."""

    def __init__(self, chat):
        self.chat = chat
        self.identity = chat.identity
        self.requests: list[tuple] = []

    def complete(self, messages, schema, seed):
        reply = self.chat.complete(messages, schema, seed)
        self.requests.append((messages, schema, seed, reply))
        return reply

    def __getattr__(self, name):
        return getattr(self.chat, name)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dialogues", type=int, default=6)
    parser.add_argument("--max-in-flight", type=int, default=1, help="the stage's script.max_in_flight")
    args = parser.parse_args()

    from empathy_data.flows.build import llm_endpoint
    from llama_cpp import Llama

    from empathy_data import backends
    from empathy_data.build import BuildContext, run_script_chunk
    from empathy_data.embedded_models import embedded_llm

    root = Path(tempfile.mkdtemp(prefix="llm-stage-"))
    overrides = {"output": str(root / "out"), "num_dialogues": args.dialogues}
    ctx = BuildContext.load(REPO / "configs" / "smoke.yaml", overrides)
    script = ctx.config.script.model_copy(update={"max_in_flight": args.max_in_flight})
    ctx.config = ctx.config.model_copy(update={"script": script})
    vocab = Llama(model_path=str(embedded_llm()), vocab_only=True, verbose=False)

    def tokens(replies) -> int:
        return sum(len(vocab.tokenize(r.encode(), add_bos=False)) for r in replies if r)

    with llm_endpoint(ctx) as base_url:
        chat = backends.chat_backend(ctx.config.script, base_url)
        recording = Recording(chat)
        ctx.claim_output_dir()
        start = time.perf_counter()
        for c in ctx.chunk_ranges():
            for r in ctx.rounds:
                if r == 0:  # regeneration rounds need the audio filter: round 0 is the LLM's workload
                    run_script_chunk(ctx, c, lambda: recording, r)
        stage_s = time.perf_counter() - start
        replies = [reply for *_, reply in recording.requests]
        stage_tokens = tokens(replies)
        print(f"stage: {len(replies)} requests, {stage_tokens} tokens, {stage_s:.1f} s, "
              f"{stage_tokens / stage_s:.1f} tok/s (max_in_flight {args.max_in_flight})")  # fmt: skip

        best = 0.0
        for concurrency in (1, 2):
            start = time.perf_counter()
            with ThreadPoolExecutor(concurrency) as pool:
                again = list(pool.map(lambda req: chat.complete(*req[:3]), recording.requests))
            seconds = time.perf_counter() - start
            n = tokens(again)
            same = sum(a == b for a, b in zip(again, replies, strict=True))
            rate = n / seconds
            best = max(best, rate)
            print(f"server, concurrency {concurrency}: {n} tokens, {seconds:.1f} s, {rate:.1f} tok/s "
                  f"({same}/{len(replies)} replies identical to the stage's)")  # fmt: skip
        print(f"stage vs the server's best: {stage_tokens / stage_s / best:.2f}x")


if __name__ == "__main__":
    main()
