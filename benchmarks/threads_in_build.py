"""The embedded LLM's speed inside a build against its speed alone: builds a config once per thread setting
(each run in its own output folder), reads every request's prompt and generation rates from the build's
server log, and measures the same model alone with the same thread count in a fresh process.

Run on demand, not in CI (a few minutes per setting on 2 cores):

    python benchmarks/threads_in_build.py tests-tiny.yaml --setting budget \
        --setting "old:max_workers=2,n_threads=2,cpu_threads=2"

A setting is `name` or `name:key=value,...` with keys max_workers, n_threads (the embedded server's
threads) and cpu_threads (Whisper's); `budget` leaves the thread counts to the runner's share.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

RATE = re.compile(r"llama_perf_context_print: +(prompt eval|eval) time .*?([\d.]+) tokens per second")


def rates(log: Path) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {"prompt": [], "generation": []}
    for phase, rate in RATE.findall(log.read_text()):
        found["prompt" if phase == "prompt eval" else "generation"].append(float(rate))
    return found


def alone(threads: int) -> dict:
    """The model alone with `threads` threads (benchmarks/llm_thread_contention.py's measurement)."""
    here = Path(__file__).parent
    command = [sys.executable, str(here / "llm_thread_contention.py"), "--child", "--threads", str(threads)]
    return json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)


def configured(base: dict, root: Path, name: str, settings: dict[str, int]) -> tuple[Path, dict]:
    config = json.loads(json.dumps(base))
    config["output"] = str(root / name)
    if "max_workers" in settings:
        config.setdefault("runner", {})["max_workers"] = settings["max_workers"]
    if "n_threads" in settings:
        config["script"].setdefault("embedded", {})["n_threads"] = settings["n_threads"]
    if "cpu_threads" in settings:
        config["filter"]["asr"]["cpu_threads"] = settings["cpu_threads"]
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, config


def parse_setting(text: str) -> tuple[str, dict[str, int]]:
    name, _, rest = text.partition(":")
    return name, {k: int(v) for k, v in (item.split("=") for item in rest.split(",") if item)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("config", type=Path)
    parser.add_argument("--setting", action="append", default=[])
    parser.add_argument("--root", type=Path, default=Path("threads-in-build"))
    args = parser.parse_args()
    from empathy_data.config.model import parse_config

    base = yaml.safe_load(args.config.read_text())
    args.root.mkdir(parents=True, exist_ok=True)
    for text in args.setting or ["budget"]:
        name, settings = parse_setting(text)
        path, config = configured(base, args.root.resolve(), name, settings)
        threads = parse_config(config).script.embedded.n_threads
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "empathy_data.cli", "build", str(path)], check=True, capture_output=True)
        took = time.monotonic() - started
        inside = rates(args.root / name / "work" / "logs" / "llm-server.log")
        idle = alone(threads)
        generation = statistics.median(inside["generation"])
        print(
            f"{name}: build {took:.0f} s; LLM {threads} thread(s); in the build: prompt median "
            f"{statistics.median(inside['prompt']):.1f} tok/s, generation median {generation:.1f} tok/s "
            f"(min {min(inside['generation']):.1f}, {len(inside['generation'])} requests); alone: prompt "
            f"{idle['prompt_tok_s']} tok/s, generation {idle['generate_tok_s']} tok/s; "
            f"generation in the build / alone = {generation / idle['generate_tok_s']:.2f}"
        )


if __name__ == "__main__":
    main()
