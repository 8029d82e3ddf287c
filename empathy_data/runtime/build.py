"""A corpus build without any orchestrator: its validated inputs (BuildContext, one per build per process)
and one function per stage and chunk.

The driver (runtime/driver.py) calls these; each chunk function reads its upstream chunk through the
work layout (store/work_layout.py), writes its own output atomically under <out>/work/<stage>/ and returns
a small ChunkRef, never audio.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property, partial
from pathlib import Path
from typing import Any

from empathy_data.backends import registry as backends
from empathy_data.config.model import BuildConfig, load_config
from empathy_data.core.atomic import write_jsonl
from empathy_data.core.errors import ConfigError
from empathy_data.core.hashing import digest
from empathy_data.core.resources import prompts_dir, speaker_pool_path
from empathy_data.planning.plan import Cell, Planner
from empathy_data.planning.prompt_library import PromptLibrary, load_prompts
from empathy_data.planning.real_queries import load_real_corpora
from empathy_data.planning.regenerate import Regeneration
from empathy_data.planning.speakers import load_pool
from empathy_data.planning.topup import TopUpPasses, add_dialogue
from empathy_data.records.chunk_records import ChunkRecords, Exchange, to_row
from empathy_data.records.schema import Outcome, Script, Utterance
from empathy_data.store.chunk_store import MARKER, ChunkStore, LocalStore, open_store
from empathy_data.store.work_layout import WorkLayout

log = logging.getLogger("empathy_data")


def worker_id() -> str:
    """host:pid of this process, as chunk refs and the driver's log name it."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class ChunkRef:
    stage: str
    chunk_index: int
    key: str
    path: str  # where the chunk output lives, as the store names it
    counts: dict[str, int]
    seconds: float = 0.0
    cached: bool = False
    round: int = 0
    replayed: int = 0  # script stage: LLM replies read back from the journal
    sent: int = 0  # script stage: requests sent to the LLM
    worker: str = field(default_factory=lambda: worker_id())  # who made this ref


@dataclass
class BuildContext:
    """A build's inputs, validated: the config, prompts, speaker pool and plan, and the store its outputs
    go to. Where each output lives is the layout's (store/work_layout.py); which dialogues each round
    writes is the regeneration's, which extras each pass adds the top-up's (planning/)."""

    config: BuildConfig
    config_dir: Path
    store: ChunkStore
    prompts: PromptLibrary
    planner: Planner
    layout: WorkLayout
    regeneration: Regeneration
    topup: TopUpPasses

    @classmethod
    def load(cls, config_path: str | Path, overrides: dict[str, Any] | None = None) -> BuildContext:
        config, config_dir = load_config(config_path, overrides)
        return cls.from_config(config, config_dir)

    @classmethod
    def from_config(cls, config: BuildConfig, config_dir: Path) -> BuildContext:
        """Validate every input (prompts, speaker pool, labels) before any model loads."""
        prompts = load_prompts(prompts_dir(config.prompts_dir, config_dir), list(config.languages))
        if config.script.judge.enabled:
            kinds = ["judge_labels" if m == "labels" else "judge" for m in config.script.judge.modes()]
            for kind, language in ((k, lang) for k in kinds for lang in config.languages):
                if f"{kind}.{language}" not in prompts.templates:
                    where = prompts.root / "templates" / f"{kind}.{language}.j2"
                    raise ConfigError(str(where), f"missing: script.judge needs a {kind} template per language (mode {config.script.judge.mode})")
        if config.script.judge.calibrated and not prompts.judge_cases_hash:
            raise ConfigError(str(prompts.root / "judge_cases.yaml"), "missing: script.judge.min_agreement measures the "
                              "judge on these hand-labelled cases (or set it to null)")  # fmt: skip
        needed = ([("reply", "ingest")] if config.ingest is not None else []) + (
            [("reply", "contrast"), ("contrast", "contrast")] if config.contrast is not None else [])
        for (kind, block), language in ((n, lang) for n in needed for lang in config.languages):
            if f"{kind}.{language}" not in prompts.templates:
                where = prompts.root / "templates" / f"{kind}.{language}.j2"
                raise ConfigError(str(where), f"missing: a build with `{block}:` writes its prompts with it")
        pool = load_pool(speaker_pool_path(config.speaker_pool, config_dir, config.synthesize.tts.backend))
        real = load_real_corpora([Path(p) for p in config.ingest.path]) if config.ingest is not None else None
        planner = Planner(config, prompts, pool, real)
        store = open_store(config.output, config.storage.options, config.storage.scratch_dir)
        layout = WorkLayout(store, planner, backends.stage_settings(config, prompts), range(config.regenerate.rounds + 1))
        ctx = cls(
            config=config, config_dir=config_dir, store=store, prompts=prompts, planner=planner, layout=layout,
            regeneration=Regeneration(layout, planner), topup=TopUpPasses(config, planner, layout, lambda: accepted_so_far(ctx)),
        )  # fmt: skip
        ctx.topup.load()
        return ctx

    @property
    def out(self) -> Path:
        """The output directory of a local build (an object store has none: use `store`)."""
        if not isinstance(self.store, LocalStore):
            raise TypeError(f"{self.store.url} is not a local directory")
        return self.store.root

    @property
    def rounds(self) -> range:
        """Round 0 writes every planned dialogue; rounds 1.. write again the ones still rejected."""
        return self.layout.rounds

    def chunk_ranges(self) -> list[int]:
        return self.layout.chunks()


def accepted_so_far(ctx: BuildContext) -> dict[str, Counter]:
    """Accepted dialogue equivalents per label value (planning/topup.py), counted from the rows export
    would write to data/: its history rule and its near-duplicate check apply."""
    from empathy_data.stages.export.exporter import corpus_pass

    rows = corpus_pass(ctx).rows_by_dialogue
    achieved: dict[str, Counter] = defaultdict(Counter)
    for c in ctx.chunk_ranges():
        for spec in ctx.planner.chunk(c):
            if spec.dialogue_id in rows:
                add_dialogue(achieved, Cell.of(spec), rows[spec.dialogue_id], spec.num_exchanges)
    return achieved


# Each run_*_chunk takes a factory for its backend and calls it only when the chunk holds work, so a
# finished or empty chunk (a regeneration round with nothing to redo) loads no model.
def run_script_chunk(ctx: BuildContext, chunk_index: int, make_chat: Callable, round_: int = 0) -> ChunkRef:
    from empathy_data.stages.script.journal import ReplyJournal

    if ctx.layout.is_done("script", chunk_index, round_):
        return _ref(ctx, "script", chunk_index, round_, cached=True)
    t0 = time.perf_counter()
    specs = ctx.regeneration.round_specs(chunk_index, round_)
    # The request hash covers messages, seed and sampling settings; the salt adds the model weights.
    identity = ctx.layout.settings["script"]["script"]
    salt = {k: identity.get(k) for k in ("embedded_llm_sha256", "model", "library")}
    if "sampler" in identity:  # the embedded server's (absent elsewhere: older journals keep replaying)
        salt["sampler"] = identity["sampler"]
    journal = ReplyJournal(ctx.layout.journal_path(chunk_index, round_), salt=salt)
    try:
        scripts, outcomes = _write_scripts(ctx, chunk_index, round_, specs, make_chat, journal)
    finally:  # replies received before a fault are kept for the retry, wherever it runs
        ctx.store.push(ctx.layout.journal_key(chunk_index, round_))
    by_index = {s.spec.index: s for s in scripts} | {o.index: o for o in outcomes}
    rows = [to_row(by_index[i]) for i in sorted(by_index)]
    ctx.store.write_rows(ctx.layout.chunk_key("script", chunk_index, round_), rows)
    written = ChunkRecords(tuple(by_index[i] for i in sorted(by_index)))
    ref = _ref(ctx, "script", chunk_index, round_, written, seconds=time.perf_counter() - t0)
    return replace(ref, replayed=journal.replayed, sent=journal.sent)


def _write_scripts(ctx: BuildContext, chunk_index: int, round_: int, specs, make_chat: Callable, journal):
    from empathy_data.stages.script.stage import ScriptRun, write_scripts

    cfg = ctx.config.script
    chat = make_chat() if specs else None
    run = ScriptRun(
        chat, ctx.prompts, cfg.validation, cfg.max_attempts, cfg.max_in_flight, cfg.request_tag, cfg.write_by,
        cfg.exchange_mode_from,
        first_attempt=round_ * cfg.max_attempts,  # each round asks with new seeds
        keep_stalled=cfg.keep_stalled_exchanges and round_ == ctx.rounds[-1],
        journal=journal,
        judges=script_judges(ctx, chat) if specs else None,
    )  # fmt: skip
    return write_scripts(specs, run, drafts=ctx.regeneration.drafts(chunk_index, round_) if specs else None)


def script_judges(ctx: BuildContext, chat):
    """The topic check and LLM judge the config asks for, built on this worker (models once per process)."""
    from empathy_data.stages.script.judge import ScriptJudges

    cfg = ctx.config.script
    if not cfg.judge.enabled and not cfg.topic.enabled:
        return None
    from empathy_data.runtime.judge_calibration import judge_gate

    embedder = backends.text_embedder(cfg.topic) if cfg.topic.enabled else None
    judge_chat = backends.judge_chat(cfg, chat) if cfg.judge.enabled else None
    if judge_chat is None:
        return ScriptJudges(ctx.prompts, cfg.judge, cfg.topic, None, {}, embedder, cfg.request_tag)
    gate = judge_gate(ctx, judge_chat)
    judge = cfg.judge.model_copy(update={"mode": gate.mode})
    return ScriptJudges(ctx.prompts, judge, cfg.topic, judge_chat, gate.min_scores, embedder, cfg.request_tag, gate.match,
                        gate.gates)  # fmt: skip


def run_synthesize_chunk(ctx: BuildContext, chunk_index: int, make_tts: Callable, round_: int = 0) -> ChunkRef:
    from empathy_data.stages.synthesize.stage import synthesize_scripts

    if ctx.layout.is_done("synthesize", chunk_index, round_):
        return _ref(ctx, "synthesize", chunk_index, round_, cached=True)
    t0 = time.perf_counter()
    written = ctx.layout.read_chunk("script", chunk_index, round_)
    scripts, outcomes = written.scripts, written.outcomes
    cfg = ctx.config.synthesize
    with ctx.store.publish_dir(ctx.layout.chunk_key("synthesize", chunk_index, round_)) as tmp:
        tts = make_tts() if scripts else None
        utterances, failures = synthesize_scripts(
            scripts, tts, cfg, tmp, cfg.tts.neutral_reference, resolve=ctx.planner.pool.resolve,
            recording=ctx.planner.real.audio_path if ctx.planner.real is not None else None,
        )
        for f in failures:
            s = f.script
            outcomes.append(
                Outcome(
                    dialogue_id=s.spec.dialogue_id,
                    index=s.spec.index,
                    stage="synthesize",
                    verdict="failed",
                    reasons=[f.error],
                    spec=s.spec,
                    script=s,
                )  # fmt: skip
            )
        failed_ids = {f.script.spec.dialogue_id for f in failures}
        records = [s for s in scripts if s.spec.dialogue_id not in failed_ids] + utterances + outcomes
        write_jsonl(tmp / MARKER, map(to_row, records))
    return _ref(ctx, "synthesize", chunk_index, round_, ChunkRecords(tuple(records)), time.perf_counter() - t0)


def run_filter_chunk(ctx: BuildContext, chunk_index: int, make_judges: Callable, round_: int = 0) -> ChunkRef:
    """`make_judges()` returns the (ASR, emotion check) pair."""
    from empathy_data.runtime.calibration import gated_emotions
    from empathy_data.stages.filter.stage import exchange_verdict, score_utterances

    if ctx.layout.is_done("filter", chunk_index, round_):
        return _ref(ctx, "filter", chunk_index, round_, cached=True)
    t0 = time.perf_counter()
    synthesized = ctx.layout.read_chunk("synthesize", chunk_index, round_)
    scripts = {s.spec.dialogue_id: s for s in synthesized.scripts}
    utterances = synthesized.utterances
    languages = {d: s.spec.language for d, s in scripts.items()}
    thresholds = ctx.config.filter.thresholds
    scores = []
    if utterances:
        with ctx.store.local_dir(ctx.layout.chunk_key("synthesize", chunk_index, round_)) as synth_dir:
            clip_of = reference_clips(ctx, scripts)
            scores = score_utterances(
                utterances, languages, synth_dir, *make_judges(), thresholds, audio_judges(ctx), clip_of,
                gated_emotions(ctx),
            )
    by_turn = {(s.dialogue_id, s.turn_index): s for s in scores}
    judged: list[Exchange | Outcome] = []
    for dialogue_id, script in scripts.items():
        for k in range(script.num_written):  # a script that stopped short: export counts the rest
            user, assistant = by_turn[(dialogue_id, 2 * k)], by_turn[(dialogue_id, 2 * k + 1)]
            verdict, reasons = exchange_verdict(user, assistant)
            judged.append(Exchange(
                index=script.spec.index, dialogue_id=dialogue_id, exchange_index=k, verdict=verdict,
                reasons=reasons, user_scores=user, assistant_scores=assistant,
            ))  # fmt: skip
    judged += synthesized.outcomes
    judged.sort(key=lambda r: (r.index, r.exchange_index if isinstance(r, Exchange) else -1))
    ctx.store.write_rows(ctx.layout.chunk_key("filter", chunk_index, round_), map(to_row, judged))
    return _ref(ctx, "filter", chunk_index, round_, ChunkRecords(tuple(judged)), time.perf_counter() - t0)


def audio_judges(ctx: BuildContext):
    """The speaker and MOS judges the config asks for, built on this worker (once per process)."""
    from empathy_data.stages.filter.audio_judges import AudioJudges

    cfg = ctx.config.filter
    speaker = backends.speaker_encoder(cfg.speaker) if cfg.speaker.enabled else None
    mos = backends.mos_backend(cfg.mos) if cfg.mos is not None else None
    return AudioJudges(cfg, speaker, mos) if speaker or mos else None


def reference_clips(ctx: BuildContext, scripts: dict[str, Script]) -> Callable[[Utterance], Path | None]:
    """utterance -> the pool clip a cloning TTS rendered it from (None for a parametric TTS such as espeak)."""
    from empathy_data.stages.synthesize.base import TTSRequest
    from empathy_data.stages.synthesize.clips import pick_clip

    if not backends.declared("tts", ctx.config.synthesize.tts).clones_voice:
        return lambda utt: None
    pool = ctx.planner.pool

    def clip_of(utt: Utterance) -> Path | None:
        spec = scripts[utt.dialogue_id].spec
        speaker = pool.resolve(spec.user if utt.role == "user" else spec.assistant_voice)
        if not speaker.clips:
            return None
        request = TTSRequest(utt.text, spec.language, speaker, utt.emotion, utt.response_style)
        return Path(pick_clip(request).path)

    return clip_of


def _ref(
    ctx: BuildContext, stage: str, chunk_index: int, round_: int, records: ChunkRecords | None = None,
    seconds: float = 0.0, cached: bool = False,
) -> ChunkRef:
    """What a chunk task returns. `records`: what it just wrote (None: read the finished output back)."""
    if records is None:
        records = ctx.layout.read_chunk(stage, chunk_index, round_)
    counts = records.counts()
    key = ctx.layout.keys[stage][chunk_index][round_]
    where = ctx.store.where(ctx.layout.chunk_key(stage, chunk_index, round_))
    return ChunkRef(stage, chunk_index, key, where, counts, round(seconds, 3), cached, round_)


# The stage protocol: each stage is its name, `run(ctx, chunk, make_backends, round) -> ChunkRef` and the
# factory of its backends, which `run` calls on the worker only when the chunk holds work. What its cache
# key hashes is ctx.layout.settings[name] (backends/registry.py stage_settings). The Prefect tasks
# (flows/build.py) and the tests' and benchmarks' inline runner all run stages through this table.


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[BuildContext, int, Callable[[], Any], int], ChunkRef]
    backends: Callable[[BuildContext, str | None], Callable[[], Any]]  # (ctx, LLM base URL) -> make_backends


def _script_backends(ctx: BuildContext, base_url: str | None) -> Callable[[], Any]:
    return partial(backends.chat_backend, ctx.config.script, base_url)


def _synthesize_backends(ctx: BuildContext, base_url: str | None) -> Callable[[], Any]:
    return partial(backends.tts_backend, ctx.config.synthesize)


def _filter_backends(ctx: BuildContext, base_url: str | None) -> Callable[[], Any]:
    judged = ctx.config.filter
    return lambda: (backends.asr_backend(judged), backends.emotion_backend(judged))


PIPELINE = {
    "script": Stage("script", run_script_chunk, _script_backends),
    "synthesize": Stage("synthesize", run_synthesize_chunk, _synthesize_backends),
    "filter": Stage("filter", run_filter_chunk, _filter_backends),
}


def run_stage(ctx: BuildContext, name: str, chunk_index: int, round_: int = 0, base_url: str | None = None) -> ChunkRef:
    """One stage of one chunk and round, with the backends its config names (built once per process)."""
    stage = PIPELINE[name]
    return stage.run(ctx, chunk_index, stage.backends(ctx, base_url), round_)


# The config a build runs with, read once: the CLI validates it, and every task and worker gets it as it is.


@dataclass(frozen=True)
class BuildInputs:
    """What every task gets: the validated config (its output absolute, or a URL) and the directory its
    relative paths resolve from. Pickled to Ray and Dask workers as it is; never re-read from a file."""

    config: BuildConfig
    config_dir: str

    @cached_property
    def key(self) -> str:
        return digest({"config": self.config.model_dump(mode="json"), "config_dir": self.config_dir})


_contexts: dict[str, BuildContext] = {}  # per process: the builds its tasks belong to (at most two)
_contexts_lock = threading.Lock()
_reload = threading.Lock()


def build_inputs(config_path: str | Path, overrides: dict[str, Any] | None = None) -> BuildInputs:
    """The config file read and validated once, its paths absolute (config/paths.py), as workers elsewhere
    need them."""
    config, config_dir = load_config(config_path, overrides)
    return BuildInputs(config, str(config_dir))


def forget_contexts() -> None:
    with _contexts_lock:
        _contexts.clear()


def context(inputs: BuildInputs, chunk_index: int = 0) -> BuildContext:
    with _contexts_lock:  # the first task in a process plans the build; the others wait for it
        ctx = _contexts.get(inputs.key)
        if ctx is None:
            ctx = BuildContext.from_config(inputs.config, Path(inputs.config_dir))
            while len(_contexts) >= 2:
                _contexts.pop(next(iter(_contexts)))
            _contexts[inputs.key] = ctx
    if chunk_index >= ctx.planner.num_chunks:  # a top-up chunk planned since this process loaded the build
        with _reload:
            if chunk_index >= ctx.planner.num_chunks:
                ctx.topup.load()
    return ctx
