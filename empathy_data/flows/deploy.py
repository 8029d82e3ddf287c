"""The build as a Prefect deployment: `prefect.yaml` at the repository root points a work pool here.

A Prefect worker runs `build_deployment` in a fresh process. It checks what `empathy-data build` checks
before anything starts (config, prompts, speaker pool, output directory, preflight), then runs the build
flow on the task runner the config's `runner:` names, exactly as the command line does (`run_build`).
The task runner is known only once the config is read, so the build flow runs as a subflow of this one;
its chunk task runs are named by stage, chunk and round (empathy_data/flows/build.py). See docs/scale-out.md.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from prefect import flow

from empathy_data.flows.build import run_build
from empathy_data.runtime.build import BuildContext
from empathy_data.runtime.preflight import check_before_build


@flow(name="empathy-data", log_prints=False)
def build_deployment(
    config_path: str, overrides: dict[str, Any] | None = None, allow_shrink: bool = False
) -> dict[str, Any]:
    """Build (or resume) the corpus a config describes; returns its manifest (as JSON: the flow run's result).

    config_path: the build config YAML, absolute or relative to the deployment's working directory (the
    relative paths in it, `output:` too, resolve against its own directory; a relative `output` in
    overrides against the working directory). overrides: top-level config keys to replace, e.g.
    {"output": "/shared/corpora/run1", "num_dialogues": 1000}. allow_shrink: let a smaller num_dialogues
    replace a larger corpus already exported in the output directory.
    """
    ours = logging.getLogger("empathy_data")
    if ours.level == logging.NOTSET:
        # Chunk progress lines; Prefect sends them to the API with PREFECT_LOGGING_EXTRA_LOGGERS=empathy_data.
        ours.setLevel(logging.INFO)
    config_path = str(Path(config_path).resolve())
    check_before_build(BuildContext.load(config_path, overrides), allow_shrink)
    return run_build(config_path, overrides).to_json()
