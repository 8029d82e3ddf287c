"""1 vs 2 workers on a local Ray and a local Dask cluster, for the CPU-bound stages (espeak TTS, Whisper
ASR, prosody check) of the same corpus.

The scripts are written once, in this process, by the null chat backend (benchmarks/null_backends.py),
so no LLM is involved; each build then starts from those script chunks (as tests/test_cluster_runners.py
does) and runs synthesize + filter on the cluster with the real embedded models, one BLAS/CTranslate2
thread per worker. The figure is the ratio of pipeline wall times (cluster start and export excluded,
both reported). Target: 2 workers >= 1.8x one.

Run on demand, not in CI:  python benchmarks/scale_workers.py [--dialogues 24] [--chunk-size 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from null_backends import install, null_config  # noqa: E402

from empathy_data.store.output_guard import claim_output_dir  # noqa: E402


def config(num_dialogues: int, chunk_size: int, out: Path) -> dict:
    c = null_config(num_dialogues, str(out), chunk_size=chunk_size)
    c["synthesize"]["tts"] = {"backend": "espeak", "neutral_reference": True}
    c["filter"] = {
        "asr": {"backend": "faster-whisper", "model": "embedded", "cpu_threads": 1},
        "emotion": {"backend": "prosody"},
        "thresholds": {"max_wer": 1.0},  # null scripts are word salad: judge them, keep them all
    }
    return c


def write_scripts(path: Path) -> None:
    from empathy_data.backends import registry as backends
    from empathy_data.runtime.build import BuildContext, run_script_chunk

    install()
    ctx = BuildContext.load(str(path), {})
    claim_output_dir(ctx.store, ctx.planner.key, ctx.config.name)
    for c in ctx.chunk_ranges():
        run_script_chunk(ctx, c, lambda: backends.chat_backend(ctx.config.script, ""))


def timed_build(root: Path, scripted: Path, base: dict, kind: str, workers: int) -> dict:
    out = root / f"{kind}-{workers}"
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(scripted / "work" / "script", out / "work" / "script")
    shutil.copy(scripted / "build.json", out / "build.json")
    cfg = {**base, "output": str(out), "runner": {"kind": kind, "max_workers": workers}}
    path = root / f"{kind}-{workers}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "empathy_data.cli", "build", str(path)], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode:
        raise SystemExit(f"{kind} x{workers} failed:\n{done.stderr[-3000:]}")
    manifest = json.loads((out / "manifest.json").read_text())
    return {"wall_s": wall, "pipeline_s": manifest["timings_s"]["pipeline_wall"], "export_s": manifest["timings_s"]["export"],
            "accepted": manifest["counts"]["exchanges"]["accepted"]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dialogues", type=int, default=24)
    parser.add_argument("--chunk-size", type=int, default=3)
    parser.add_argument("--kinds", nargs="+", default=["dask", "ray"])
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="empathy-scale-"))
    try:
        scripted = root / "scripted"
        base = config(args.dialogues, args.chunk_size, scripted)
        path = root / "scripted.yaml"
        path.write_text(yaml.safe_dump(base))
        write_scripts(path)
        print(f"machine: {os.cpu_count()} cores; {args.dialogues} dialogues in chunks of {args.chunk_size}; "
              "espeak + Whisper base int8 (1 thread) + prosody per worker")  # fmt: skip
        for kind in args.kinds:
            one = timed_build(root, scripted, base, kind, 1)
            two = timed_build(root, scripted, base, kind, 2)
            assert one["accepted"] == two["accepted"]
            print(f"{kind}: 1 worker pipeline {one['pipeline_s']:.1f} s (whole run {one['wall_s']:.1f} s), "
                  f"2 workers {two['pipeline_s']:.1f} s ({two['wall_s']:.1f} s) -> "
                  f"{one['pipeline_s'] / two['pipeline_s']:.2f}x pipeline, {one['wall_s'] / two['wall_s']:.2f}x whole run")  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
