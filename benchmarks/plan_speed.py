"""Planning speed and memory: spec(i) for N dialogues, one config per mix kind, each in a fresh process.

Run on demand, not in CI:  python benchmarks/plan_speed.py [--dialogues 1000000]

Prints, per config, µs per spec, the wall time for N specs and the process's peak RSS (specs are made and
dropped one at a time, as chunks make them; RSS is the interpreter, the models of the plan and the
allocation blocks). The issue's target for 1,000,000 specs: <= 20 s and <= 200 MB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIGS = {
    "smoke mixes": {"distributions": {"user_emotion": {"neutral": 0.2, "happy": 0.2, "sad": 0.2, "angry": 0.2,
                                                        "fearful": 0.2}, "exchanges": {1: 0.5, 2: 0.5}}},
    "joint gender x age": {"distributions": {"gender_age": {"male": {"elderly": 0.5, "adult": 0.2},
                                                            "female": {"adult": 0.3}}}},
    "fitted scenarios": {"distributions": {"user_emotion": {"sad": 0.5, "angry": 0.3, "happy": 0.2},
                                           "scenarios": {"lost_job": 0.3, "broken_phone": 0.3, "new_pet": 0.2,
                                                         "birthday_forgotten": 0.2}}},
    "two languages, arcs": {"languages": {"en": 0.7, "zh": 0.3},
                            "distributions": {"emotion_arc": "de-escalating", "exchanges": {3: 1.0}}},
}  # fmt: skip


def measure(config: dict, n: int) -> dict:
    from empathy_data.runtime.build import BuildContext

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.yaml"
        path.write_text(json.dumps({"num_dialogues": n, "output": f"{tmp}/out", **config}))
        ctx = BuildContext.load(path)
        start = time.perf_counter()
        for i in range(n):
            ctx.planner.spec(i)
        seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"us_per_spec": seconds / n * 1e6, "seconds": seconds, "peak_rss_mb": peak_mb}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dialogues", type=int, default=1_000_000)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one config in this process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(CONFIGS[args.one], args.dialogues)))
        return
    print(f"{'config':<22} {'µs/spec':>8} {'s for N':>8} {'peak RSS MB':>12}   (N = {args.dialogues:,})")
    for name in CONFIGS:
        out = subprocess.run([sys.executable, __file__, "--dialogues", str(args.dialogues), "--one", name],
                             capture_output=True, text=True, check=True)  # fmt: skip
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{name:<22} {r['us_per_spec']:>8.1f} {r['seconds']:>8.1f} {r['peak_rss_mb']:>12.0f}")


if __name__ == "__main__":
    main()
