"""The script stage against the LLM server's own best throughput, on the same requests.

1. The script stage writes N smoke-config dialogues against the embedded llama.cpp server (a fresh
   output: no journal), through the build's own chunk function; every request it sends is recorded.
2. The same requests (messages, schema, seed) are sent straight to the same server through the backend's
   bare `complete()`, at concurrency 1 and 2, with nothing else around them: the server's best.
3. With `--distilabel` (extra `[bench]`): the same requests through distilabel's `TextGeneration` task
   with its `OpenAILLM`, one request per `process()` call with that request's sampling settings, seed
   and JSON schema (as `extra_body`, since its generation kwargs take neither), i.e. distilabel's own
   generation path without a Pipeline around it (a Pipeline only adds its queues and batching).

The server evaluates every request from an empty KV cache with the request's seed, so the replies, and
the tokens counted (the model's tokenizer over each reply), are the same in every run.

Run on demand, not in CI:
  python benchmarks/llm_stage_throughput.py [--dialogues 6] [--max-in-flight 1] [--distilabel] [--topic]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from empathy_data.store.output_guard import claim_output_dir

REPO = Path(__file__).resolve().parents[1]


class Recording:
    """Wraps a chat backend: every request and reply the stage makes (the judge's too), in order, each with
    the backend view (sampling settings) that sent it."""

    def __init__(self, chat, requests: list | None = None):
        self.chat = chat
        self.identity = chat.identity
        self.requests: list[tuple] = [] if requests is None else requests

    def complete(self, messages, schema, seed):
        reply = self.chat.complete(messages, schema, seed)
        self.requests.append((self.chat, messages, schema, seed, reply))
        return reply

    def with_sampling(self, **settings):
        return Recording(self.chat.with_sampling(**settings), self.requests)

    def __getattr__(self, name):
        return getattr(self.chat, name)


def distilabel_run(base_url: str, requests: list[tuple]) -> tuple[list[str | None], float]:
    """The same requests through distilabel's TextGeneration (one at a time): replies and seconds."""
    from distilabel.models.llms import OpenAILLM
    from distilabel.steps.tasks import TextGeneration

    from empathy_data.stages.script.openai_chat import response_format
    from empathy_data.stages.script.prompting import token_budget

    llm = OpenAILLM(model=requests[0][0].config.model, base_url=base_url, api_key="not-needed", timeout=600,
                    max_retries=0)  # fmt: skip
    task = TextGeneration(llm=llm, add_raw_input=False, add_raw_output=False)
    task.load()
    replies = []
    start = time.perf_counter()
    for chat, messages, schema, seed, _ in requests:
        *system, user = messages  # the writer's requests: a system and a user message; the judge's: a user message
        assert [m["role"] for m in messages] in (["system", "user"], ["user"]), [m["role"] for m in messages]
        c = chat.config
        llm.generation_kwargs = {
            "max_new_tokens": token_budget(c.max_tokens, c.max_tokens_per_exchange, schema),
            "temperature": c.temperature, "top_p": c.top_p,
            "frequency_penalty": c.frequency_penalty, "presence_penalty": c.presence_penalty,
            "extra_body": {"seed": seed, "response_format": response_format(schema, chat.form)},
        }  # fmt: skip
        row = {"instruction": user["content"], **({"system_prompt": system[0]["content"]} if system else {})}
        [row] = next(task.process([row]))
        replies.append(row["generation"])
    return replies, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dialogues", type=int, default=6)
    parser.add_argument("--max-in-flight", type=int, default=1, help="the stage's script.max_in_flight")
    parser.add_argument("--distilabel", action="store_true", help="also distilabel's TextGeneration (extra [bench])")
    parser.add_argument("--topic", action="store_true", help="keep the script stage's topic check on")
    args = parser.parse_args()

    from llama_cpp import Llama

    from empathy_data.backends import registry as backends
    from empathy_data.flows.build import llm_endpoint
    from empathy_data.runtime.build import BuildContext, run_script_chunk
    from empathy_data.weights.embedded_models import embedded_llm

    root = Path(tempfile.mkdtemp(prefix="llm-stage-"))
    overrides = {"output": str(root / "out"), "num_dialogues": args.dialogues}
    ctx = BuildContext.load(REPO / "configs" / "smoke.yaml", overrides)
    # The topic check is a sentence-embedding model on the CPU, not the LLM (judge_costs.py measures it)
    topic = ctx.config.script.topic.model_copy(update={"enabled": args.topic})
    script = ctx.config.script.model_copy(update={"max_in_flight": args.max_in_flight, "topic": topic})
    ctx.config = ctx.config.model_copy(update={"script": script})
    vocab = Llama(model_path=str(embedded_llm()), vocab_only=True, verbose=False)

    def tokens(replies) -> int:
        return sum(len(vocab.tokenize(r.encode(), add_bos=False)) for r in replies if r)

    with llm_endpoint(ctx) as base_url:
        chat = backends.chat_backend(ctx.config.script, base_url)
        # one small request first: no run below pays for the server's first touch of the model's pages
        warm = chat.with_sampling(max_tokens=16, max_tokens_per_exchange=0)
        warm.complete([{"role": "user", "content": "Say hi."}], {"type": "object", "properties": {}}, 0)
        recording = Recording(chat)
        claim_output_dir(ctx.store, ctx.planner.key, ctx.config.name)

        def run_stage(make_chat) -> float:
            start = time.perf_counter()
            for c in ctx.chunk_ranges():  # round 0 only: regeneration rounds need the audio filter first
                run_script_chunk(ctx, c, make_chat, 0)
            return time.perf_counter() - start

        stage_s = run_stage(lambda: recording)
        # The stage's own work: the same chunks again, every reply from the journal the first run wrote
        shutil.rmtree(root / "out" / "work" / "script")
        replay = Recording(chat)
        own_s = run_stage(lambda: replay)
        assert not replay.requests, "a reply was not in the journal"
        replies = [reply for *_, reply in recording.requests]
        stage_tokens = tokens(replies)
        judged = sum(view is not chat for view, *_ in recording.requests)
        print(f"stage: {len(replies)} requests ({judged} of them the judge's), {stage_tokens} tokens, "
              f"{stage_s:.1f} s, {stage_tokens / stage_s:.1f} tok/s (max_in_flight {args.max_in_flight})")  # fmt: skip
        print(f"the stage's own work (the same chunks, every reply from its journal): {own_s:.2f} s")

        best = 0.0
        for concurrency in (1, 2):
            start = time.perf_counter()
            with ThreadPoolExecutor(concurrency) as pool:
                again = list(pool.map(lambda req: req[0].complete(*req[1:4]), recording.requests))
            seconds = time.perf_counter() - start
            n = tokens(again)
            same = sum(a == b for a, b in zip(again, replies, strict=True))
            rate = n / seconds
            best = max(best, rate)
            print(f"server, concurrency {concurrency}: {n} tokens, {seconds:.1f} s, {rate:.1f} tok/s "
                  f"({same}/{len(replies)} replies identical to the stage's)")  # fmt: skip
        print(f"stage vs the server's best: {stage_tokens / stage_s / best:.2f}x")
        if args.distilabel:
            theirs, seconds = distilabel_run(base_url, recording.requests)
            n = tokens(theirs)
            same = sum(a == b for a, b in zip(theirs, replies, strict=True))
            print(f"distilabel TextGeneration, one at a time: {n} tokens, {seconds:.1f} s, {n / seconds:.1f} tok/s "
                  f"({same}/{len(replies)} replies identical to the stage's)")  # fmt: skip
            print(f"stage vs distilabel: {stage_tokens / stage_s / (n / seconds):.2f}x")


if __name__ == "__main__":
    main()
