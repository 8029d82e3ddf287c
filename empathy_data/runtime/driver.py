"""The one driver loop: every chunk's rounds of script -> synthesize -> filter, chunks pipelined, then the
top-up passes. The Prefect flow drives it with chunk tasks on threads, Ray or Dask (flows/build.py); the
benchmarks and the tests drive it with the stages run inline in this process (`InlineRunner`).

A stage is submitted only when the one before it has finished: Prefect's thread runner would otherwise
park the waiting task in a worker thread, and `max_workers` would count waiting tasks instead of working
ones. At most `runner.max_chunks_in_flight` chunks are in flight and each stage's `max_concurrent` holds.
After a chunk fails (its retries spent) no new chunk starts; the chunks in flight finish and stay cached;
the first cause is raised.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol

from empathy_data.core.errors import EmpathyDataError
from empathy_data.runtime.build import BuildContext, ChunkRef
from empathy_data.store.work_layout import STAGES

log = logging.getLogger("empathy_data")


class Runner(Protocol):
    """Where the stages run: `submit` starts one stage of one chunk and returns its future;
    `next_done` waits for the first of the given futures to finish and returns it."""

    def submit(self, stage: str, chunk: int, round_: int, release: tuple[str, ...]) -> Any: ...

    def next_done(self, futures: list[Any]) -> Any: ...


def describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, EmpathyDataError) else f"{type(exc).__name__}: {exc}"


def run_chunks(
    ctx: BuildContext, runner: Runner, chunks: list[int], on_done: Callable[[ChunkRef], ChunkRef] = lambda ref: ref
) -> list[ChunkRef]:
    """Each of `chunks` through every round of every stage; `on_done` sees each finished stage's ref."""
    steps = [(r, stage) for r in ctx.rounds for stage in STAGES]
    resources = ctx.config.resources
    limit = {stage: getattr(resources, stage).max_concurrent for stage in STAGES}
    more_passes = ctx.topup.passes_left
    advancing: list[tuple[int, int]] = []  # a chunk whose next stage is about to be started

    def finished_stages(c: int, step: int) -> tuple[str, ...]:
        """Stages no chunk of this run needs any more once (c, step) is submitted: the worker that runs
        it lets their models go (each worker learns it from the next task it gets). None while chunks
        are pending or a top-up pass may still need every stage."""
        if pending or more_passes:
            return ()
        in_flight = [*running.values(), *held, *advancing, (c, step)]
        upcoming = {steps[i][1] for _, s in in_flight for i in range(s, len(steps))}
        return tuple(s for s in STAGES if s not in upcoming)

    pending = deque(chunks)
    running: dict[Any, tuple[int, int]] = {}
    held: deque[tuple[int, int]] = deque()  # ready, but their stage is at its max_concurrent
    active: Counter[str] = Counter()
    refs: list[ChunkRef] = []
    failure: str | None = None
    window = ctx.config.runner.chunks_in_flight

    def start(c: int, step: int) -> None:
        r, stage = steps[step]
        if limit[stage] is not None and active[stage] >= limit[stage]:
            held.append((c, step))
            return
        active[stage] += 1
        running[runner.submit(stage, c, r, finished_stages(c, step))] = (c, step)

    while running or (pending and failure is None):  # after a failure, pending chunks never start
        while pending and failure is None and len(running) + len(held) < window:
            start(pending.popleft(), 0)
        done = runner.next_done(list(running))
        c, step = running.pop(done)
        active[steps[step][1]] -= 1
        try:
            refs.append(on_done(done.result()))
            finished = True
        except Exception as exc:
            failure = failure or f"chunk {c + 1}: {describe(exc)}"
            finished = False
        if finished and step + 1 < len(steps):
            advancing.append((c, step + 1))
        for _ in range(len(held)):  # in order of arrival; after a failure, a chunk not yet begun never starts
            held_chunk, held_step = held.popleft()
            if held_step > 0 or failure is None:
                start(held_chunk, held_step)
        if advancing:
            start(*advancing.pop())
    if failure is not None:
        raise EmpathyDataError(f"{failure}; re-run the same command to resume")
    return refs


def run_all_chunks(
    ctx: BuildContext, runner: Runner, on_done: Callable[[ChunkRef], ChunkRef] = lambda ref: ref
) -> list[ChunkRef]:
    """The plan's chunks, then each top-up pass's extra chunks (rebalance), through `run_chunks`."""
    refs = run_chunks(ctx, runner, ctx.chunk_ranges(), on_done)
    while new_chunks := ctx.topup.add_pass():
        extras = sum(len(ctx.planner.chunk_indices(c)) for c in new_chunks)
        log.info("top-up pass %d: %d extra dialogue(s) into the labels the filter thinned", ctx.planner.extra_passes, extras)
        refs += run_chunks(ctx, runner, new_chunks, on_done)
    return refs


class InlineRunner:
    """Runs a stage in this process the moment it is submitted: the benchmarks' and the tests' runner.
    `stages` maps a stage name to a function (chunk, round) -> ChunkRef, e.g. run_script_chunk bound to
    a build context and a backend."""

    def __init__(self, stages: dict[str, Callable[[int, int], ChunkRef]]):
        self.stages = stages

    def submit(self, stage: str, chunk: int, round_: int, release: tuple[str, ...]) -> Future:
        future: Future = Future()
        try:
            future.set_result(self.stages[stage](chunk, round_))
        except Exception as exc:
            future.set_exception(exc)
        return future

    def next_done(self, futures: list[Future]) -> Future:
        return futures[0]  # every one is done: the earliest submitted first
