"""The pipeline's own cost, on null backends (benchmarks/null_backends.py: canned text and a tone, at once).

Three figures, each from fresh processes on this machine, side by side in one run:
  1. orchestration overhead: the Prefect build (thread runner, 1 worker) vs the same stage functions
     called in a plain loop on the same config (target: flow / loop <= 1.05x wall);
  2. driver peak RSS of the Prefect build at --small vs --large dialogues (target: flat within 10%);
  3. export throughput vs a bare pyarrow write of the same rows, shard for shard (target >= 0.8x).

Run on demand, not in CI:  python benchmarks/pipeline_overhead.py [--dialogues 400] [--small 1000 --large 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from empathy_data.store.output_guard import check_output_dir, claim_output_dir, remove_partial_writes

HERE = Path(__file__).resolve().parent


def build(mode: str, config_path: str) -> dict:
    """One build in this process: `flow` through Prefect, `loop` the same calls in a plain loop."""
    sys.path.insert(0, str(HERE))
    import null_backends

    null_backends.install()
    t0 = time.perf_counter()
    if mode == "flow":
        from empathy_data.flows.build import run_build

        manifest = run_build(config_path)
    else:
        manifest = plain_loop(config_path)
    wall = time.perf_counter() - t0
    return {
        "mode": mode,
        "wall_s": round(wall, 2),
        "export_s": manifest.timings_s["export"],
        "pipeline_s": manifest.timings_s["pipeline_wall"],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "dialogues": manifest.counts.dialogues.model_dump(),
    }


def plain_loop(config_path: str) -> dict:
    """What empathy_data/flows/build.py's build_corpus does, minus Prefect: the same BuildContext calls, stage
    functions and driver loop (runtime/driver.py), the stages run inline in this process."""
    from empathy_data.backends import registry as backends
    from empathy_data.runtime.build import BuildContext, run_filter_chunk, run_script_chunk, run_synthesize_chunk
    from empathy_data.runtime.driver import InlineRunner, run_all_chunks
    from empathy_data.stages.export.exporter import export_corpus
    from empathy_data.store.output_lock import OutputLock

    ctx = BuildContext.load(str(Path(config_path).resolve()), {})
    cfg = ctx.config
    with OutputLock(ctx.store):
        check_output_dir(ctx.store, ctx.planner.key)
        ctx.topup.load()
        claim_output_dir(ctx.store, ctx.planner.key, ctx.config.name)
        remove_partial_writes(ctx.store)
        t0 = time.perf_counter()
        judges = (backends.asr_backend(cfg.filter), backends.emotion_backend(cfg.filter))
        stages = InlineRunner({
            "script": lambda c, r: run_script_chunk(ctx, c, lambda: backends.chat_backend(cfg.script, ""), r),
            "synthesize": lambda c, r: run_synthesize_chunk(ctx, c, lambda: backends.tts_backend(cfg.synthesize), r),
            "filter": lambda c, r: run_filter_chunk(ctx, c, lambda: judges, r),
        })  # fmt: skip
        run_all_chunks(ctx, stages)
        pipeline = time.perf_counter() - t0
        t1 = time.perf_counter()
        manifest = export_corpus(ctx, {"pipeline_wall": round(pipeline, 2)})
        manifest.timings_s["export"] = round(time.perf_counter() - t1, 2)
        ctx.store.write_json("manifest.json", manifest.to_json())
    return manifest


def child(mode: str, num_dialogues: int, root: Path, chunk_size: int) -> dict:
    sys.path.insert(0, str(HERE))
    from null_backends import null_config

    out = root / f"{mode}-{num_dialogues}"
    shutil.rmtree(out, ignore_errors=True)
    config = null_config(num_dialogues, str(out), chunk_size=chunk_size, max_workers=1)
    config["synthesize"]["tts"]["neutral_reference"] = False
    path = root / f"{mode}-{num_dialogues}.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "PREFECT_LOGGING_LEVEL": "WARNING"}
    done = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(path)], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode:
        raise SystemExit(f"{mode} build of {num_dialogues} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["out"] = str(out)
    return result


def bare_pyarrow_seconds(out: Path) -> tuple[float, int, int]:
    """Write every shard the export wrote again with pyarrow alone (rows already in memory)."""
    import pyarrow.parquet as pq

    shards = sorted((out / "data").glob("*.parquet")) + sorted((out / "rejects").glob("*.parquet"))
    tables = [(p, pq.read_table(p)) for p in shards]
    rows = sum(t.num_rows for _, t in tables)
    size = sum(p.stat().st_size for p, _ in tables)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        for p, table in tables:
            pq.write_table(table, Path(tmp) / p.name)
        return time.perf_counter() - t0, rows, size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dialogues", type=int, default=400, help="dialogues for the overhead figure")
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=20000)
    parser.add_argument("--chunk-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(build(*args.child)))
        return
    root = Path(tempfile.mkdtemp(prefix="empathy-null-"))
    try:
        print(f"machine: {os.cpu_count()} cores; null backends; chunk_size {args.chunk_size}")
        runs: dict[str, list[dict]] = {"loop": [], "flow": []}
        for _ in range(args.repeats):  # interleaved, so drift in the machine's load hits both
            for mode in ("loop", "flow"):
                runs[mode].append(child(mode, args.dialogues, root, args.chunk_size))
        best = {mode: min(r["wall_s"] for r in rs) for mode, rs in runs.items()}
        inner = {mode: min(r["pipeline_s"] for r in rs) for mode, rs in runs.items()}
        print(f"1. {args.dialogues} dialogues, best of {args.repeats}: plain loop {best['loop']:.1f} s, Prefect flow "
              f"{best['flow']:.1f} s -> {best['flow'] / best['loop']:.3f}x whole run; chunk stages alone "
              f"{inner['loop']:.1f} s vs {inner['flow']:.1f} s -> {inner['flow'] / inner['loop']:.3f}x")  # fmt: skip
        flow = runs["flow"][-1]
        bare_s, rows, size = bare_pyarrow_seconds(Path(flow["out"]))
        print(f"3. export of {rows} rows ({size / 1e6:.1f} MB): export {flow['export_s']:.2f} s "
              f"({rows / flow['export_s']:.0f} rows/s, {size / 1e6 / flow['export_s']:.1f} MB/s), bare pyarrow "
              f"{bare_s:.2f} s ({rows / bare_s:.0f} rows/s) -> {bare_s / flow['export_s']:.2f}x of pyarrow")  # fmt: skip
        if not args.skip_rss:
            small = child("flow", args.small, root, args.chunk_size)
            large = child("flow", args.large, root, args.chunk_size)
            print(f"2. driver peak RSS: {args.small} dialogues {small['peak_rss_mb']:.0f} MB ({small['wall_s']:.0f} s), "
                  f"{args.large} dialogues {large['peak_rss_mb']:.0f} MB ({large['wall_s']:.0f} s) -> "
                  f"{large['peak_rss_mb'] / small['peak_rss_mb']:.2f}x")  # fmt: skip
        print(json.dumps(runs))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
