"""Prefect flow: a corpus build as chunk tasks, script -> synthesize -> filter pipelined per chunk, then export.

Tasks receive the config path and small values and return ChunkRefs; backends are rebuilt (once per
process) on whichever worker runs the task, so the same flow runs on threads, Ray or Dask.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from functools import partial
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NONE
from prefect.futures import PrefectFuture, as_completed

from empathy_data.backends import registry as backends
from empathy_data.config.model import RunnerConfig, load_config
from empathy_data.core.errors import BackendUnavailable, EmpathyDataError
from empathy_data.core.hashing import digest
from empathy_data.records.manifest import Manifest, TaskRun
from empathy_data.runtime import driver
from empathy_data.runtime.build import (  # noqa: F401  (forget_contexts: the tests' and benchmarks' handle)
    BuildContext,
    BuildInputs,
    ChunkRef,
    build_inputs,
    context,
    forget_contexts,
    run_stage,
    worker_id,
)
from empathy_data.runtime.calibration import ensure_calibration, gated_emotions
from empathy_data.runtime.calibration import summary as calibration_summary
from empathy_data.runtime.interrupts import keep_stopping_cleanly
from empathy_data.runtime.judge_calibration import judge_gate
from empathy_data.runtime.judge_calibration import summary as judge_summary
from empathy_data.stages.export.exporter import ExportPlan, export_chunk, finish_export, plan_export
from empathy_data.store.output_guard import check_output_dir, claim_output_dir, remove_partial_writes
from empathy_data.store.output_lock import OutputLock
from empathy_data.store.work_layout import STAGES

log = logging.getLogger("empathy_data")


DRIVER = worker_id()


def _release(stages) -> None:
    if released := backends.release(stages):
        log.info("%s: models released on %s (no more work for them in this build)", ", ".join(released), worker_id())


def task_run(ref: ChunkRef) -> TaskRun:
    return TaskRun(stage=ref.stage, chunk=ref.chunk_index, round=ref.round, seconds=ref.seconds, cached=ref.cached,
                   worker=ref.worker, replayed=ref.replayed, sent=ref.sent)  # fmt: skip


def _report(ref: ChunkRef, total: int) -> ChunkRef:
    """Logged by the driver as each chunk task finishes, whichever worker ran it."""
    state = "cached" if ref.cached else f"{ref.seconds:.1f}s"
    if ref.worker != DRIVER:
        state += f" on {ref.worker}"
    counts = ", ".join(f"{k} {v}" for k, v in sorted(ref.counts.items())) or "nothing to do"
    again = f" round {ref.round}" if ref.round else ""
    llm = (
        f"; llm: {ref.replayed} replayed from journal, {ref.sent} sent"
        if ref.stage == "script" and not ref.cached
        else ""
    )
    log.info("%-10s chunk %d/%d%s done (%s): %s%s", ref.stage, ref.chunk_index + 1, total, again, state, counts, llm)
    return ref


# An infrastructure fault raises out of the run_*_chunk function before anything is written, so a retry
# (or a re-run of the build) starts that chunk again from what is on disk and in the reply journal.
# Each run is named by stage, chunk index (from 0) and round as the chunk store and the journal name them
# ("script c00003-r1": work/script/c00003-r1-<key>.jsonl, work/journal/c00003-r1.jsonl), so the Prefect UI
# shows which chunk a task run is.
chunk_task = partial(task, retries=2, retry_delay_seconds=[2, 10], cache_policy=NONE)


@chunk_task(name="script-chunk", task_run_name="script c{chunk_index:05d}-r{round_}")
def script_task(
    inputs: BuildInputs, chunk_index: int, base_url: str, round_: int = 0, release: tuple[str, ...] = ()
) -> ChunkRef:
    return _run(inputs, "script", chunk_index, round_, release, base_url)


@chunk_task(name="synthesize-chunk", task_run_name="synthesize c{chunk_index:05d}-r{round_}")
def synthesize_task(inputs: BuildInputs, chunk_index: int, round_: int = 0, release: tuple[str, ...] = ()) -> ChunkRef:
    return _run(inputs, "synthesize", chunk_index, round_, release)


@chunk_task(name="filter-chunk", task_run_name="filter c{chunk_index:05d}-r{round_}")
def filter_task(inputs: BuildInputs, chunk_index: int, round_: int = 0, release: tuple[str, ...] = ()) -> ChunkRef:
    return _run(inputs, "filter", chunk_index, round_, release)


def _run(inputs: BuildInputs, stage: str, chunk_index: int, round_: int, release: tuple[str, ...],
         base_url: str | None = None) -> ChunkRef:  # fmt: skip
    """A chunk task's body: this process's build context, finished stages' models let go, then the stage."""
    ctx = context(inputs, chunk_index)
    _release(release)
    return run_stage(ctx, stage, chunk_index, round_, base_url)


@chunk_task(name="export-chunk", task_run_name="export c{chunk_index:05d}")
def export_task(inputs: BuildInputs, chunk_index: int, chunk_plan: dict[str, Any]) -> ChunkRef:
    """One chunk's Parquet parts, written where the task runs: its audio never reaches the driver.
    Every stage is done by now: the worker lets its models go first."""
    ctx = context(inputs, chunk_index)
    _release(STAGES)
    info = export_chunk(ctx, chunk_index, chunk_plan)
    counts = {f"exchange:{k}": v for k, v in sorted(info["stats"]["exchanges"].items())}
    return ChunkRef("export", chunk_index, info["key"].rsplit("-", 1)[-1], ctx.store.where(info["key"]), counts,
                    info.get("seconds", 0.0), info["cached"])  # fmt: skip


def export_corpus(ctx: BuildContext, inputs: BuildInputs, timings: dict[str, float]) -> tuple[Manifest, list[ChunkRef]]:
    """Plan in the driver (text only), one export task per chunk, then name the shards in the driver."""
    plan: ExportPlan = plan_export(ctx)
    futures = [
        export_task.submit(inputs, c, plan.for_chunk(ctx, c)) for c in ctx.chunk_ranges()
    ]
    failure = None
    refs = []
    for future in as_completed(futures):
        try:
            refs.append(_report(future.result(), ctx.planner.num_chunks))
        except Exception as exc:
            failure = failure or f"export: {driver.describe(exc)}"
    if failure is not None:
        raise EmpathyDataError(f"{failure}; re-run the same command to resume")
    return finish_export(ctx, plan, timings, calibration_summary(ctx), judge_summary(ctx)), refs


def task_runner(runner: RunnerConfig):
    """The Prefect task runner `runner:` names. Without an address, Ray and Dask start a local cluster of
    `max_workers` single-threaded worker processes on loopback, without a dashboard."""
    if runner.kind == "thread":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=runner.max_workers)
    if runner.kind == "ray":
        try:
            from prefect_ray import RayTaskRunner
        except ImportError:
            raise BackendUnavailable("runner.kind ray needs: pip install 'empathy-data[ray]'") from None
        if runner.address:
            return RayTaskRunner(address=runner.address)
        local = {"num_cpus": runner.max_workers, "include_dashboard": False, "_node_ip_address": "127.0.0.1"}
        return RayTaskRunner(init_kwargs=local)
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError:
        raise BackendUnavailable("runner.kind dask needs: pip install 'empathy-data[dask]'") from None
    if runner.address:
        return DaskTaskRunner(address=runner.address)
    local = {"n_workers": runner.max_workers, "threads_per_worker": 1, "processes": True,
             "host": "127.0.0.1", "dashboard_address": None}  # fmt: skip
    return DaskTaskRunner(cluster_kwargs=local)


def placement(kind: str, gpus: float):
    """What a stage's task asks of the cluster it is submitted to (thread runner: nothing to ask)."""
    if gpus <= 0 or kind == "thread":
        return nullcontext()
    if kind == "ray":
        from prefect_ray.context import remote_options

        # Ray runs a GPU task in a fresh worker process by default (max_calls=1), which would load every
        # model again for every chunk; 0 keeps the worker, and with it the loaded models.
        return remote_options(num_gpus=gpus, max_calls=0)
    import dask

    return dask.annotate(resources={"GPU": gpus})


def llm_endpoint(ctx: BuildContext):
    """The configured server, or the embedded llama.cpp server started for this build."""
    script = ctx.config.script
    if script.backend == "vllm":
        return nullcontext("")  # in-process engine, no server
    if script.base_url is not None:
        return nullcontext(script.base_url)
    from empathy_data.stages.script.llama_server import LlamaServer
    from empathy_data.weights.embedded_models import embedded_llm

    return LlamaServer(
        embedded_llm(script.embedded.model),
        n_threads=script.embedded.n_threads or ctx.config.runner.threads_per_task,
        n_ctx=script.embedded.n_ctx,
        log_path=ctx.store.scratch / "logs" / "llm-server.log",
        startup_timeout_s=script.embedded.startup_timeout_s,
    )


class TaskRunner:
    """The driver's stages as Prefect chunk tasks, each placed by its stage's `resources`."""

    def __init__(self, ctx: BuildContext, inputs: BuildInputs, base_url: str):
        self.ctx, self.inputs, self.base_url = ctx, inputs, base_url

    def submit(self, stage: str, chunk: int, round_: int, release: tuple[str, ...]) -> PrefectFuture:
        with placement(self.ctx.config.runner.kind, getattr(self.ctx.config.resources, stage).gpus):
            if stage == "script":
                return script_task.submit(self.inputs, chunk, self.base_url, round_, release)
            if stage == "synthesize":
                return synthesize_task.submit(self.inputs, chunk, round_, release)
            return filter_task.submit(self.inputs, chunk, round_, release)

    def next_done(self, futures: list[PrefectFuture]) -> PrefectFuture:
        return next(as_completed(futures))


def write_build_report(out: Path) -> None:
    """OUT/report/index.html from the finished export. The corpus is complete by now, so a report that
    cannot be written is a warning, not a failed build; `empathy-data report OUT` writes it again."""
    from empathy_data.tools.report import write_report

    t0 = time.perf_counter()
    try:
        path = write_report(out)
    except Exception as exc:
        log.warning("report: not written (%s); run `empathy-data report %s`", driver.describe(exc), out)
        return
    log.info("report: %s (%.1fs)", path, time.perf_counter() - t0)


# The validated config run_build hands its flow in this process (flow parameters stay the path and the
# overrides, which a deployment's run gets from the API): the config file is read once per build.
_validated: dict[str, BuildInputs] = {}


def _handoff_key(config_path: str, overrides: dict[str, Any] | None) -> str:
    return digest([config_path, overrides or {}])


def _measure_judge(ctx: BuildContext, base_url: str) -> None:
    """The script judge measured before any script task reads it: here wherever it is a server (an in-process
    vLLM judge is measured by the first script tasks, which load the engine; the first stored result wins)."""
    script = ctx.config.script
    if backends.judge_server(script) is not None or script.backend == "openai":
        _log_judge_gate(judge_gate(ctx, backends.judge_chat_at(script, base_url)))


def _log_judge_gate(gate) -> None:
    measured = ", ".join(f"{a['mode']} {a['agree']}/{a['cases']}" for a in gate.agreements)
    verdict = "gates" if gate.gates else "records only (below script.judge.min_agreement)"
    log.info("script judge measured on the labelled cases (%s): it runs in mode %s and %s", measured, gate.mode, verdict)


@flow(name="empathy-data-build", log_prints=False)
def build_corpus(config_path: str, overrides: dict[str, Any] | None = None) -> Manifest:
    keep_stopping_cleanly()
    inputs = _validated.pop(_handoff_key(config_path, overrides), None)  # run_build's, in this process
    if inputs is None:  # a deployment's run: the config is read here
        config, config_dir = load_config(config_path, overrides)
        inputs = BuildInputs(config, str(config_dir))
    ctx = context(inputs)
    with OutputLock(ctx.store):
        check_output_dir(ctx.store, ctx.planner.key)
        ctx.topup.load()  # passes another build may have planned since this process loaded the config
        if reopened := ctx.regeneration.reopen_failed_chunks():
            log.info("retrying failed items of %d chunk(s)", reopened)
        t0 = time.perf_counter()
        needs_llm = ctx.regeneration.pending_script_work() or ctx.topup.pending()
        with llm_endpoint(ctx) if needs_llm else nullcontext("") as base_url:
            if needs_llm and ctx.config.script.backend == "openai":
                backends.chat_backend(ctx.config.script, base_url).check_reachable()
            # Claim the output directory (build.json) only once the LLM answers.
            claim_output_dir(ctx.store, ctx.planner.key, ctx.config.name)
            if removed := remove_partial_writes(ctx.store):
                log.info("removed %d partial write(s) left by an interrupted run", removed)
            if (calibration := ensure_calibration(ctx)) is not None:  # before any filter task reads it
                log.info("emotion check calibrated on %d probe clip(s) per emotion; it gates %s", calibration.clips,
                         ", ".join(sorted(gated_emotions(ctx) or ())) or "none")  # fmt: skip
            if needs_llm and ctx.config.script.judge.calibrated:
                _measure_judge(ctx, base_url)
            report = partial(_report, total=ctx.planner.num_chunks)
            refs = driver.run_all_chunks(ctx, TaskRunner(ctx, inputs, base_url), report)
        stage_seconds = {stage: round(sum(r.seconds for r in refs if r.stage == stage), 2) for stage in STAGES}
        stage_seconds["pipeline_wall"] = round(time.perf_counter() - t0, 2)
        llm_requests = {
            "replayed": sum(r.replayed for r in refs),
            "sent": sum(r.sent for r in refs),
        }
        t1 = time.perf_counter()
        manifest, export_refs = export_corpus(ctx, inputs, stage_seconds)
        manifest.timings_s["export"] = round(time.perf_counter() - t1, 2)
        manifest.llm_requests = llm_requests
        manifest.driver = DRIVER
        manifest.tasks = [task_run(ref) for ref in [*refs, *export_refs]]
        ctx.store.write_json("manifest.json", manifest.to_json())
        if ctx.config.export.report and ctx.store.local:
            write_build_report(ctx.out)
        elif ctx.config.export.report:
            log.info("report: written only for a local output; run `empathy-data report` on a copy of %s",
                     ctx.store.url)  # fmt: skip
        return manifest


def run_build(config_path: str, overrides: dict[str, Any] | None = None, inputs: BuildInputs | None = None) -> Manifest:
    """Run the build flow on the task runner its config names (`runner:`). Workers get the config file
    and the output as an absolute path or a URL: a worker process need not share the driver's directory.
    `inputs`: the config as the caller already validated it (build_inputs), so it is not read again."""
    # A temporary Prefect server started for this run inherits this: no telemetry leaves the machine.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    config_path = str(Path(config_path).resolve())
    inputs = inputs or build_inputs(config_path, overrides)
    overrides = {**(overrides or {}), "output": inputs.config.output}
    ctx = context(inputs)  # the one build_corpus gets from the cache
    if ctx.config.runner.kind == "thread" and any(r.gpus > 0 for _, r in ctx.config.resources):
        log.warning("resources: gpus are asked of a Ray or Dask cluster; on the thread runner every stage "
                    "shares this process's GPUs (max_concurrent still applies)")  # fmt: skip
    with share_temporary_api(ctx.config.runner):
        _validated[_handoff_key(config_path, overrides)] = inputs
        try:
            return build_corpus.with_options(task_runner=task_runner(ctx.config.runner))(config_path, overrides)
        finally:
            _validated.pop(_handoff_key(config_path, overrides), None)


@contextmanager
def share_temporary_api(runner: RunnerConfig) -> Iterator[None]:
    """Without a Prefect API configured, Prefect starts a temporary server in the driver, and every Ray or
    Dask worker process would start one of its own (~10 s each, measured; its task runs recorded where
    nobody looks). For a cluster started here, start the driver's server first (the same instance Prefect
    would start) and hand its URL to the workers, which inherit this environment. A cluster elsewhere
    cannot reach the driver's loopback: give it a Prefect server (PREFECT_API_URL) of your own."""
    from prefect.settings import PREFECT_API_URL

    if runner.kind == "thread" or runner.address or PREFECT_API_URL.value():
        yield
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    server.start()
    before = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = server.api_url
    try:
        yield
    finally:  # the next build in this process must not find a server that has stopped
        if before is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = before
