"""Structured output on the embedded LLM: generation speed with the grammar applied to every candidate
(llama-cpp-python's default), with the grammar checking the drawn token first (the embedded server's
GrammarAfterSampler), and without any grammar (the model's raw speed), on the same smoke-config prompts.

Run on demand, not in CI:  python benchmarks/llm_sampling.py [--requests 4] [--threads 2]

Each mode runs in a fresh process (the patch is process-wide); tokens/s counts generated tokens over the
whole request, prompt evaluation included.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(mode: str, requests: int, threads: int) -> dict:
    from llama_cpp import Llama

    from empathy_data.runtime.build import BuildContext
    from empathy_data.stages.script.prompting import build_messages, response_schema
    from empathy_data.weights.embedded_models import embedded_llm

    if mode == "grammar-after":
        from empathy_data.stages.script.llama_serve import check_grammar_after_sampling

        check_grammar_after_sampling()
    ctx = BuildContext.load(REPO / "configs" / "smoke.yaml")
    llm = Llama(model_path=str(embedded_llm()), n_ctx=4096, n_threads=threads, verbose=False)
    tokens, seconds, valid = 0, 0.0, 0
    for i in range(requests):
        spec = ctx.planner.spec(i)
        schema = None if mode == "no-grammar" else {"type": "json_object", "schema": response_schema(spec)}
        llm.reset()
        start = time.perf_counter()
        out = llm.create_chat_completion(
            messages=build_messages(spec, ctx.prompts), response_format=schema, temperature=0.8, seed=7 + i,
            frequency_penalty=0.5, presence_penalty=0.5, max_tokens=300,
        )  # fmt: skip
        seconds += time.perf_counter() - start
        tokens += out["usage"]["completion_tokens"]
        try:
            json.loads(out["choices"][0]["message"]["content"])
            valid += 1
        except ValueError:
            pass
    return {"tokens": tokens, "seconds": seconds, "valid_json": valid}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(run(args.mode, args.requests, args.threads)))
        return
    results = {}
    for mode in ("grammar-first", "grammar-after", "no-grammar"):
        cmd = [sys.executable, __file__, "--mode", mode, "--requests", str(args.requests), "--threads", str(args.threads)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    raw = results["no-grammar"]["tokens"] / results["no-grammar"]["seconds"]
    print(f"{'mode':<14} {'tokens':>6} {'s':>6} {'tok/s':>6} {'vs raw':>7} {'valid JSON':>10}")
    for mode, r in results.items():
        speed = r["tokens"] / r["seconds"]
        print(f"{mode:<14} {r['tokens']:>6} {r['seconds']:>6.1f} {speed:>6.1f} {speed / raw:>6.2f}x {r['valid_json']:>6}/{args.requests}")


if __name__ == "__main__":
    main()
