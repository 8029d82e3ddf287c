"""What each audio and text judge costs on a finished build's own material, beside the build's wall time.

Reads a built corpus's chunk store (scripts and rendered turns of round 0), then times, each from a cold
process-local start (model load included, as a build worker pays it once):
- topic: loading the sentence-embedding model and embedding every script (scenario, user turns, whole);
- speaker: loading Resemblyzer and embedding every turn in one batch;
- mos: loading DNSMOS (speechmos's copy) and scoring every turn (off in the smoke config: what it would add).
The LLM judge's cost is read from the build's own server log (requests whose reply is a judgement).

    python benchmarks/judge_costs.py /tmp/smoke        # a build of configs/smoke.yaml
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", help="a finished build's output directory")
    parser.add_argument("--config", default=str(REPO / "configs" / "smoke.yaml"))
    args = parser.parse_args()

    from empathy_data.config.model import MOSCheck
    from empathy_data.core.audio import read_audio
    from empathy_data.runtime.build import BuildContext
    from empathy_data.stages.filter.mos import DNSMOS
    from empathy_data.stages.filter.speaker import ResemblyzerEncoder
    from empathy_data.stages.script.embeddings import SentenceEmbedder

    out = Path(args.out)
    ctx = BuildContext.load(args.config, {"output": str(out)})
    manifest = json.loads((out / "manifest.json").read_text())
    wall = manifest["timings_s"]["pipeline_wall"]
    scripts, clips = [], []
    for chunk in ctx.chunk_ranges():
        synthesized = ctx.layout.read_chunk("synthesize", chunk, 0)
        scripts += synthesized.scripts
        folder = ctx.store.root / ctx.layout.chunk_key("synthesize", chunk, 0)
        clips += [read_audio(folder / u.audio_path) for u in synthesized.utterances]
    seconds: dict[str, float] = {}

    t0 = time.perf_counter()
    embedder = SentenceEmbedder(ctx.config.script.topic)
    texts = [s.spec.scenario_text for s in scripts] + [" ".join(t.text for t in s.turns) for s in scripts] * 2
    embedder.encode(texts)
    seconds["topic"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    ResemblyzerEncoder().embed_batch(clips)
    seconds["speaker"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    mos = MOSCheck()
    DNSMOS(mos.model, batch_size=mos.batch_size).score_batch(clips)
    seconds["mos (off by default)"] = time.perf_counter() - t0

    log = (out / "work" / "logs" / "llm-server.log").read_text()
    runs = [int(r) for r in re.findall(r"       eval time =\s+[\d.]+ ms /\s+(\d+) runs", log)]
    totals = [float(t) / 1000 for t in re.findall(r"total time =\s+([\d.]+) ms", log)]
    judged = sum(c.get("judge_reply", {}).get("pass", 0) + c.get("judge_reply", {}).get("fail", 0)
                 for c in [manifest.get("script_checks", {})])  # fmt: skip
    # a judgement is ~65 generated tokens, a script 95-250: the shortest replies are the judge's
    judge_times = [t for _, t in sorted(zip(runs, totals, strict=True))[:judged]]
    seconds["script judge (LLM, from the server log)"] = sum(judge_times)

    print(f"{out}: {len(scripts)} scripts, {len(clips)} turns, build wall {wall:.1f} s")
    for name, s in seconds.items():
        print(f"{name:<40} {s:7.1f} s  {s / wall:6.1%} of the build")


if __name__ == "__main__":
    main()
