"""`python -m empathy_data.serving SERVICES.yaml [--address ADDR] [--num-cpus N]`: run the applications of a
Ray Serve config file (services/*.yaml; the same file works with `serve run` / `serve deploy`) until
SIGTERM or Ctrl-C. Without --address it starts a local Ray instance of its own (no dashboard)."""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
from pathlib import Path

import yaml


def load_builder(import_path: str):
    module, _, name = import_path.partition(":")
    return getattr(importlib.import_module(module), name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m empathy_data.serving", description=__doc__)
    parser.add_argument("config", type=Path)
    parser.add_argument("--address", default=None, help="an existing Ray cluster (default: a local one)")
    parser.add_argument("--num-cpus", type=float, default=None, help="CPUs of the local Ray instance")
    parser.add_argument("--num-gpus", type=float, default=None, help="GPUs of the local Ray instance")
    args = parser.parse_args(argv)
    try:
        spec = yaml.safe_load(args.config.read_text())
        applications = spec["applications"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        print(f"{args.config}: not a Serve config with `applications:` ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 2

    # Ray runs worker processes at niceness 15 (ray_config_def.h, worker_niceness): a service's replicas
    # are the build's work, not background jobs, and would starve beside any busy process.
    os.environ.setdefault("RAY_worker_niceness", "0")
    import ray
    from ray import serve

    init = {"address": args.address} if args.address else {"num_cpus": args.num_cpus, "num_gpus": args.num_gpus}
    ray.init(**init, include_dashboard=False, logging_level="WARNING")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        serve.start(http_options=spec.get("http_options") or {"host": "127.0.0.1", "port": 8000})
        for app in applications:
            target = load_builder(app["import_path"])(app.get("args") or {})
            serve.run(target, name=app["name"], route_prefix=app.get("route_prefix", f"/{app['name']}"))
        print("services ready: " + ", ".join(app["name"] for app in applications), flush=True)
        stop.wait()
    finally:
        serve.shutdown()
        ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
