"""Prompt blocks kept between requests on the embedded LLM (stages/script/llama_serve.reuse_whole_blocks):
the writer's and the judge's prompts of a plan, in the order a build sends them (two writer prompts, then
a judge prompt), decoded from scratch and with whole shared blocks kept, in one process each way.

Run on demand, not in CI:  python benchmarks/prompt_blocks.py [--config configs/smoke.yaml] [--specs 6]

Prints the prompt tokens decoded, the seconds spent, and whether every reply came back the same.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path


def requests(config: Path, specs: int) -> list[tuple[list[dict], dict]]:
    from empathy_data.runtime.build import BuildContext
    from empathy_data.stages.script.judge import judge_messages
    from empathy_data.stages.script.prompting import build_messages, parse_reply, response_schema

    ctx = BuildContext.load(config)
    out = []
    for i in range(specs):
        spec = ctx.planner.spec(i)
        out.append((build_messages(spec, ctx.prompts, 0, tag=False), response_schema(spec)))
        if i % 2 == 1:  # a judge prompt after every second writer prompt, as a build interleaves them
            script = parse_reply(spec, _sample_reply(spec), {})
            out.append((judge_messages(script, ctx.prompts, 0, tag=False), response_schema(spec)))
    return out


def _sample_reply(spec) -> str:
    exchanges = [
        {"user": "I feel awful about what happened today.", "reasoning": "The person sounds upset, so a calm reply fits.",
         "assistant": "I am sorry, that sounds really hard. I am here with you."}
        for _ in range(spec.num_exchanges)
    ]  # fmt: skip
    return json.dumps({"exchanges": exchanges})


def run(mode: str, config: Path, specs: int) -> dict:
    from llama_cpp import Llama

    from empathy_data.stages.script import llama_serve
    from empathy_data.weights.embedded_models import embedded_llm

    if mode == "blocks":
        llama_serve.reuse_whole_blocks()
    else:  # from scratch: what the server did before it kept blocks
        generate = Llama.generate
        Llama.generate = lambda self, tokens, *a, **k: (self.reset(), generate(self, tokens, *a, **k))[1]
    llama_serve.check_grammar_after_sampling()
    block = llama_serve.PROMPT_BLOCK
    llm = Llama(str(embedded_llm()), n_ctx=4096, n_threads=2, n_batch=block, n_ubatch=block, verbose=False)
    replies, seconds, decoded = [], 0.0, 0
    for n, (messages, schema) in enumerate(requests(config, specs)):
        started = time.perf_counter()
        reply = llm.create_chat_completion(
            messages=messages, response_format={"type": "json_object", "schema": schema}, seed=n, max_tokens=8
        )
        seconds += time.perf_counter() - started
        decoded += reply["usage"]["prompt_tokens"]
        replies.append(reply["choices"][0]["message"]["content"])
    return {"mode": mode, "requests": len(replies), "prompt_tokens": decoded, "s": round(seconds, 1), "replies": replies}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", type=Path, default=Path("configs/smoke.yaml"))
    parser.add_argument("--specs", type=int, default=6)
    parser.add_argument("--mode", choices=["scratch", "blocks"])
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(run(args.mode, args.config, args.specs)))
        return
    results = {}
    for mode in ("scratch", "blocks"):  # each in a fresh process: the patch is process-wide
        done = subprocess.run(
            [sys.executable, __file__, "--mode", mode, "--config", str(args.config), "--specs", str(args.specs)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        results[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    for mode, r in results.items():
        print(f"{mode:8} {r['requests']} requests, {r['prompt_tokens']} prompt tokens, {r['s']} s (8 tokens generated each)")
    same = results["scratch"]["replies"] == results["blocks"]["replies"]
    ratio = results["scratch"]["s"] / results["blocks"]["s"]
    print(f"same replies: {same}; from scratch / blocks kept: {ratio:.2f}x")


if __name__ == "__main__":
    main()
