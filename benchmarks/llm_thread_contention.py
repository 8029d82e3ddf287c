"""The embedded LLM beside another CPU-heavy process: prompt and generation tok/s of the embedded model
alone and beside a second copy of itself, with OpenMP's default spin-wait and with the spin count the
embedded server sets (GOMP_SPINCOUNT, stages/script/llama_server.py).

Run on demand, not in CI:  python benchmarks/llm_thread_contention.py [--threads 2] [--tokens 100]

Each measurement is a fresh process (OpenMP reads its settings at start); the pair runs at once.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from empathy_data.stages.script.llama_server import SPIN_BEFORE_SLEEP

TEXT = "I feel so sad about losing my job today, and I do not know what I should do next. " * 30


def measure(threads: int, tokens: int) -> dict:
    from llama_cpp import Llama

    from empathy_data.weights.embedded_models import embedded_llm

    llm = Llama(str(embedded_llm()), n_threads=threads, n_ctx=2048, verbose=False)
    prompt = llm.tokenize(TEXT.encode())[:390]
    llm.reset()
    started = time.perf_counter()
    llm.eval(prompt)
    prompt_rate = len(prompt) / (time.perf_counter() - started)
    started, made = time.perf_counter(), 0
    for _ in llm.generate(prompt[:50], temp=0.0, reset=True):
        made += 1
        if made == tokens:
            break
    return {"prompt_tok_s": round(prompt_rate, 1), "generate_tok_s": round(made / (time.perf_counter() - started), 1)}


def run(copies: int, spin: str | None, threads: int, tokens: int) -> list[dict]:
    env = dict(os.environ)
    env.pop("GOMP_SPINCOUNT", None)
    if spin is not None:
        env["GOMP_SPINCOUNT"] = spin
    command = [sys.executable, __file__, "--child", "--threads", str(threads), "--tokens", str(tokens)]
    children = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) for _ in range(copies)]
    return [json.loads(child.communicate()[0]) for child in children]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=100)
    parser.add_argument("--child", action="store_true")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.threads, args.tokens)))
        return
    print(f"embedded 0.5B, {args.threads} threads per process, {os.cpu_count()} cores")
    for spin, label in ((None, "OpenMP default spin"), (SPIN_BEFORE_SLEEP, f"GOMP_SPINCOUNT={SPIN_BEFORE_SLEEP}")):
        for copies in (1, 2):
            results = run(copies, spin, args.threads, args.tokens)
            where = "alone" if copies == 1 else "beside a second copy"
            print(f"{label:28s} {where:22s} " + "; ".join(
                f"prompt {r['prompt_tok_s']} tok/s, generation {r['generate_tok_s']} tok/s" for r in results))


if __name__ == "__main__":
    main()
