"""A corpus build without any orchestrator: context, cache keys and one function per stage and chunk.

Flows (Prefect, or a plain loop) call these; each chunk function reads its upstream chunk, writes its
own output atomically under <out>/work/<stage>/ and returns a small ChunkRef, never audio.
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
from functools import cached_property
from pathlib import Path
from typing import Any

from empathy_data.backends import registry as backends
from empathy_data.backends.registry import filter_identity, synthesize_identity
from empathy_data.config.model import (
    BuildConfig,
    ScriptConfig,
    load_config,
)
from empathy_data.core.atomic import write_jsonl
from empathy_data.core.errors import ConfigError
from empathy_data.core.hashing import digest
from empathy_data.core.resources import prompts_dir, speaker_pool_path
from empathy_data.planning.plan import Cell, Planner
from empathy_data.planning.prompt_library import PromptLibrary, load_prompts
from empathy_data.planning.regenerate import Version, merge, needs_another_round, versions_in_round
from empathy_data.planning.speakers import load_pool
from empathy_data.planning.targets import target_shares
from empathy_data.planning.topup import add_dialogue, plan_extras
from empathy_data.records.chunk_records import ChunkRecords, Exchange, to_row
from empathy_data.records.manifest import Manifest, ManifestError
from empathy_data.records.schema import DialogueSpec, Outcome, Script, Utterance
from empathy_data.stages.script.embeddings import embedder_identity
from empathy_data.stages.script.llama_serve import EMBEDDED_SAMPLER
from empathy_data.store.chunk_store import MARKER, PARTS, ChunkStore, LocalStore, open_store
from empathy_data.weights.embedded_models import LLM_SHA256
from empathy_data.weights.fingerprint import (
    library_versions,
    model_identity,
)

log = logging.getLogger("empathy_data")
STAGES = ("script", "synthesize", "filter")
OWN_ENTRIES = {"work", ".build.lock", ".build.owner"}


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
    config: BuildConfig
    config_dir: Path
    store: ChunkStore
    prompts: PromptLibrary
    planner: Planner
    # keys[stage][chunk][round]: the cache key of each chunk output, round 0 first
    keys: dict[str, dict[int, list[str]]] = field(default_factory=dict)
    # identities[stage]: what its key hashes (a service's own report included), read once per context
    identities: dict[str, dict[str, Any]] = field(default_factory=dict)
    # next_topup's answer per (basis, passes so far): chunk outputs are immutable once written
    _planned_topup: dict[tuple[str, int], list] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def load(cls, config_path: str | Path, overrides: dict[str, Any] | None = None) -> BuildContext:
        config, config_dir = load_config(config_path, overrides)
        return cls.from_config(config, config_dir)

    @classmethod
    def from_config(cls, config: BuildConfig, config_dir: Path) -> BuildContext:
        """Validate every input (prompts, speaker pool, labels) before any model loads."""
        prompts = load_prompts(prompts_dir(config.prompts_dir, config_dir), list(config.languages))
        if config.script.judge.enabled:
            for language in config.languages:
                kind = "judge_labels" if config.script.judge.mode == "labels" else "judge"
                if f"{kind}.{language}" not in prompts.templates:
                    where = prompts.root / "templates" / f"{kind}.{language}.j2"
                    raise ConfigError(str(where), f"missing: script.judge needs a {kind} template per language (mode {config.script.judge.mode})")
        pool = load_pool(speaker_pool_path(config.speaker_pool, config_dir))
        planner = Planner(config, prompts, pool)
        store = open_store(config.output, config.storage.options, config.storage.scratch_dir)
        ctx = cls(config=config, config_dir=config_dir, store=store, prompts=prompts, planner=planner)
        ctx.keys = ctx.stage_keys()
        ctx.load_topup()
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
        return range(self.config.regenerate.rounds + 1)

    # Cache keys hash exactly what changes a stage's output, plus the upstream key. Left out on purpose:
    # server address, API key variable, timeouts, concurrency and retry counts (they change speed, not
    # output), and where model weights are mounted (their content fingerprint stands in for the path).
    def stage_settings(self, stage: str) -> dict[str, Any]:
        if stage == "script":
            settings = {"script": self.llm_identity(), "prompts": self.prompts.content_hash}
            if self.config.script.judge.enabled and self.config.script.judge.mode == "labels":
                settings["judge_labels_prompts"] = self.prompts.judge_labels_hash
            return settings
        if stage == "synthesize":
            return synthesize_identity(self.config.synthesize)
        return filter_identity(self.config.filter)

    def llm_identity(self) -> dict[str, Any]:
        """The script settings that decide the LLM's replies and the verdicts on them."""
        script = self.config.script
        speed_only = {"base_url", "api_key_env", "max_in_flight", "timeout_s", "request_retries", "embedded"}
        s = script.model_dump(mode="json", exclude=speed_only | {"judge", "topic"})
        if script.judge.enabled:
            s["judge"] = script.judge.model_dump(mode="json", exclude={"api_key_env", "base_url"})
            s["judge"]["min_scores"] = script.judge.thresholds(embedded_judge(script))
            if script.judge.mode == "scores":  # the mode keys came later: builds that score keep their keys
                del s["judge"]["mode"], s["judge"]["match"]
            else:
                s["judge"]["match"] = list(script.judge.label_gate(embedded_judge(script)))
        if script.topic.enabled:  # the scripts keep their embeddings (export's semantic duplicates read them)
            s["topic"] = script.topic.model_dump(mode="json", exclude={"device", "batch_size", "model"})
            s["topic"]["identity"] = embedder_identity(script.topic)
        if script.backend == "openai":
            s["structured_output"] = script.schema_form()
            if script.base_url is None:
                s["embedded_llm_sha256"] = LLM_SHA256
                s["sampler"] = EMBEDDED_SAMPLER
                s["library"] = library_versions("llama-cpp-python")
        else:
            s["model"] = model_identity(script.model)
            s["library"] = library_versions("vllm")
        return s

    def stage_keys(self) -> dict[str, dict[int, list[str]]]:
        """Each key hashes its stage's settings and the key upstream of it. Round r's script chunk comes
        after round r-1's filter chunk (which dialogues it writes again depends on it); round 0 does not
        depend on `regenerate.rounds`, so adding rounds to a finished build reuses all of it."""
        settings = self.identities = {stage: self.stage_settings(stage) for stage in STAGES}
        keys: dict[str, dict[int, list[str]]] = {stage: {} for stage in STAGES}
        for c in range(self.planner.num_chunks):
            indices = self.planner.chunk_indices(c)
            where: dict[str, Any] = {"range": [indices[0], indices[-1] + 1]}
            if c >= self.planner.base_chunks:  # a top-up chunk: its dialogues and their cells
                cells = self.planner.extra_chunks[c - self.planner.base_chunks]
                where = {"topup": [[i, *vars(cell).values()] for i, cell in cells.items()]}
            previous: str | None = None
            for r in self.rounds:
                for stage in STAGES:
                    if stage == "script":
                        upstream: Any = {"plan": self.planner.key, **where}
                        if r:
                            upstream |= {"round": r, "after": previous}
                    else:
                        upstream = previous
                    previous = digest({"stage": stage, "settings": settings[stage], "upstream": upstream})
                    keys[stage].setdefault(c, []).append(previous)
        return keys

    def chunk_key(self, stage: str, chunk_index: int, round_: int = 0) -> str:
        """work/<stage>/c<chunk>[-r<round>]-<cache key>: a JSONL file, or for synthesize a directory of
        audio files and its MARKER, records.jsonl."""
        tag = f"-r{round_}" if round_ else ""
        name = f"c{chunk_index:05d}{tag}-{self.keys[stage][chunk_index][round_]}"
        return f"work/{stage}/{name if stage == 'synthesize' else f'{name}.jsonl'}"

    def records_key(self, stage: str, chunk_index: int, round_: int = 0) -> str:
        """The JSONL file of a chunk output's records."""
        key = self.chunk_key(stage, chunk_index, round_)
        return f"{key}/{MARKER}" if stage == "synthesize" else key

    def read_chunk(self, stage: str, chunk_index: int, round_: int = 0) -> ChunkRecords:
        return ChunkRecords.from_rows(self.store.read_rows(self.records_key(stage, chunk_index, round_)))

    def chunk_path(self, stage: str, chunk_index: int, round_: int = 0) -> Path:
        """A local build's chunk output as a path."""
        return self.out / self.chunk_key(stage, chunk_index, round_)

    def journal_key(self, chunk_index: int, round_: int = 0) -> str:
        """Named by position, not key: a changed corpus size or validation rule still finds the replies
        (each reply is looked up by the hash of its request)."""
        return f"work/journal/c{chunk_index:05d}-r{round_}.jsonl"

    def journal_path(self, chunk_index: int, round_: int = 0) -> Path:
        return self.store.working_copy(self.journal_key(chunk_index, round_))

    def own_failures(self, stage: str, chunk_index: int, round_: int) -> int:
        """Items of a finished chunk output that this stage itself failed with an exception. A script
        that failed only on malformed replies is not counted: its replies would come back from the
        journal unchanged, so trying it again could not end differently."""
        records = self.read_chunk(stage, chunk_index, round_)
        judged = [*records.exchanges, *(o for o in records.outcomes if o.stage == stage)]
        return sum(
            item.verdict == "failed" and any(reason.is_exception for reason in item.reasons)
            for item in judged
        )

    def reopen_failed_chunks(self) -> int:
        """`failed` means an error happened, not a verdict: a re-run tries those items again. The chunk
        output holding them is removed with everything computed from it (later stages and rounds);
        replies already received come back from the journal, so only the failed items cost new work."""
        reopened = 0
        for c in self.chunk_ranges():
            found = next(
                ((r, i) for r in self.rounds for i, stage in enumerate(STAGES)
                 if self.is_done(stage, c, r) and self.own_failures(stage, c, r)),
                None,
            )  # fmt: skip
            if found is None:
                continue
            first_round, first_stage = found
            for r in self.rounds[first_round:]:
                for stage in STAGES[first_stage if r == first_round else 0 :]:
                    self.store.remove_output(self.chunk_key(stage, c, r))
            log.info("chunk %d: %s output with failed items will be retried", c + 1, STAGES[first_stage])
            reopened += 1
        return reopened

    def is_done(self, stage: str, chunk_index: int, round_: int = 0) -> bool:
        return self.store.exists(self.records_key(stage, chunk_index, round_))

    def pending_script_work(self) -> bool:
        """Whether some script chunk still needs the LLM. A round after one that wrote nothing has
        nothing to write either; a round whose predecessor is unfiltered might."""
        for c in self.chunk_ranges():
            if not self.is_done("script", c, 0):
                return True
            for r in self.rounds[1:]:
                if not self.is_done("filter", c, r - 1):
                    return True
                if not self.round_specs(c, r):
                    break
                if not self.is_done("script", c, r):
                    return True
        return False

    def round_specs(self, chunk_index: int, round_: int) -> list[DialogueSpec]:
        """The specs round `round_` writes: all of the chunk in round 0, later only those whose best
        version so far still has a rejected exchange (read from the earlier rounds' filter chunks)."""
        specs = self.planner.chunk(chunk_index)
        if round_ == 0:
            return specs
        merged = merge([self.versions(chunk_index, r) for r in range(round_)])
        again = {d for d, versions in merged.items() if needs_another_round(versions)}
        return [s for s in specs if s.dialogue_id in again]

    def drafts(self, chunk_index: int, round_: int) -> dict[str, Script]:
        """The exchanges each dialogue that stalled in the previous round's script stage had passed:
        round `round_` goes on from them. (A dialogue the filter rejected starts over: its written
        exchanges may be the ones the audio failed on.)"""
        if round_ == 0:
            return {}
        outcomes = self.read_chunk("script", chunk_index, round_ - 1).outcomes
        return {o.dialogue_id: o.draft for o in outcomes if o.draft is not None}

    def versions(self, chunk_index: int, round_: int) -> dict[str, Version]:
        if not self.is_done("filter", chunk_index, round_):
            where = self.store.where(self.chunk_key("filter", chunk_index, round_))
            raise RuntimeError(f"{where}: round {round_} of chunk {chunk_index} has not been filtered yet")
        return versions_in_round(self.read_chunk("filter", chunk_index, round_), round_)

    def chunk_ranges(self) -> list[int]:
        return list(range(self.planner.num_chunks))

    # Top-up (config `rebalance`, topup.py). Pass p's extras are written to work/topup/pass-p.json
    # before they are built; the file names the filter outputs it was planned from, so a pass planned
    # from another config's results is never reused.
    def topup_key(self, pass_: int) -> str:
        return f"work/topup/pass-{pass_}.json"

    def _topup_basis(self) -> str:
        """What a pass is planned from: the filter outputs, the rebalance settings, and the export
        settings that decide which accepted rows count (accepted_so_far)."""
        rebalance = self.config.rebalance.model_dump() if self.config.rebalance else None
        export = self.config.export
        counted = {"rule": "corpus_pass", "unclean_history": export.unclean_history,
                   "near_duplicate_threshold": export.near_duplicate_threshold,
                   "semantic_duplicate_threshold": export.semantic_duplicate_threshold}  # fmt: skip
        filters = [self.keys["filter"][c] for c in self.chunk_ranges()]
        return digest({"rebalance": rebalance, "counted": counted, "filter": filters})

    def load_topup(self) -> None:
        """Register the top-up passes planned on disk beyond those registered (a worker process calls
        it again when it meets a chunk it does not know). Passes only ever append, and each is swapped
        in whole (_register_topup), so threads reading the chunk list never see it shrink."""
        if self.config.rebalance is None:
            return
        for pass_ in range(self.planner.extra_passes + 1, self.config.rebalance.passes + 1):
            try:
                planned = self.store.read_json(self.topup_key(pass_))
            except (OSError, ValueError):
                return
            if planned.get("basis") != self._topup_basis():
                return
            self._register_topup([(i, Cell(*fields)) for i, *fields in planned["extras"]])

    def _register_topup(self, extras: list[tuple[int, Cell]]) -> list[int]:
        size = self.config.chunk_size
        before = len(self.planner.extra_chunks)
        chunks = [*self.planner.extra_chunks, *(dict(extras[k : k + size]) for k in range(0, len(extras), size))]
        self.planner.extra_chunks = chunks
        self.planner.extra_passes += 1
        self.keys = self.stage_keys()
        base = self.planner.base_chunks
        return list(range(base + before, base + len(chunks)))

    def accepted_so_far(self) -> dict[str, Counter]:
        """Accepted dialogue equivalents per label value (topup.py), counted from the rows export would
        write to data/: its history rule and its near-duplicate check apply."""
        from empathy_data.stages.export.exporter import corpus_pass

        rows = corpus_pass(self).rows_by_dialogue
        achieved: dict[str, Counter] = defaultdict(Counter)
        for c in self.chunk_ranges():
            for spec in self.planner.chunk(c):
                if spec.dialogue_id in rows:
                    add_dialogue(achieved, Cell.of(spec), rows[spec.dialogue_id], spec.num_exchanges)
        return achieved

    def next_topup(self) -> list[tuple[int, Cell]]:
        """The extras the next pass would plan (none when rebalance is off or its passes are spent).
        Every chunk so far must be filtered."""
        cfg = self.config.rebalance
        if cfg is None or self.planner.extra_passes >= cfg.passes:
            return []
        key = (self._topup_basis(), self.planner.extra_passes)
        if key not in self._planned_topup:
            spent = self.planner.num_dialogues - self.config.num_dialogues
            budget = cfg.budget(self.config.num_dialogues) - spent
            cells = plan_extras(
                target_shares(self.config), self.accepted_so_far(), self.planner.candidate_cells(), budget, cfg.tolerance
            )
            self._planned_topup[key] = list(enumerate(cells, start=self.planner.num_dialogues))
        return self._planned_topup[key]

    def add_topup_pass(self) -> list[int]:
        """Plan the next pass, record it, and return its new chunk indices (none: top-up is over)."""
        extras = self.next_topup()
        if not extras:
            return []
        self.store.write_json(
            self.topup_key(self.planner.extra_passes + 1),
            {"basis": self._topup_basis(), "extras": [[i, *vars(cell).values()] for i, cell in extras]},
        )
        return self._register_topup(extras)

    def topup_pending(self) -> bool:
        """Whether top-up may still need the LLM: unfinished chunks first, else a pass with extras."""
        if self.config.rebalance is None or self.planner.extra_passes >= self.config.rebalance.passes:
            return False
        if not all(self.is_done("filter", c, r) for c in self.chunk_ranges() for r in self.rounds):
            return True
        return bool(self.next_topup())

    def check_output_dir(self) -> None:
        """Refuse an output directory that holds a different build (another plan)."""
        if self.store.exists("build.json"):
            try:
                existing = self.store.read_json("build.json")
            except (OSError, ValueError):
                raise ConfigError(
                    self.store.where("build.json"), "unreadable build marker; remove the directory or pick another"
                ) from None
            if existing.get("plan_key") != self.planner.key:
                raise ConfigError(
                    f"output: {self.store.url}",
                    "holds a different build (other seed, distributions, speakers or scenarios); use another --out",
                )
        elif any(name not in OWN_ENTRIES for name in self.store.list()):
            raise ConfigError(f"output: {self.store.url}", "directory is not empty and holds no empathy-data build")

    def check_no_shrink(self) -> None:
        """Refuse to replace an exported corpus with a smaller one unless asked to."""
        try:
            counts = Manifest.parse(self.store.read_text("manifest.json"), "manifest.json").counts
        except (OSError, ManifestError):
            return
        exported = counts.dialogues.planned - counts.topup.dialogues  # top-up extras are not part of the size
        if self.config.num_dialogues < exported:
            raise ConfigError(
                f"num_dialogues: {self.config.num_dialogues}",
                f"{self.store.url} already holds a corpus of {exported} dialogues; building {self.config.num_dialogues} "
                "would replace it with a smaller one (pass --allow-shrink to do that)",
            )

    def remove_partial_writes(self) -> int:
        """Delete what a killed run left half-written (finished chunks are never partial). Call only while
        holding the output lock: another build's partial writes look the same."""
        removed = _remove_temp_entries(self.store.scratch)
        if isinstance(self.store, LocalStore):
            return removed + _remove_temp_entries(self.store.root, recursive=False)
        # directories uploaded in part: their marker, written last, never landed
        for folder, marker in (("work/synthesize", MARKER), ("work/export", PARTS)):
            for name in self.store.list(folder):
                if not self.store.exists(f"{folder}/{name}/{marker}"):
                    self.store.remove(f"{folder}/{name}")
                    removed += 1
        return removed

    def stale_work(self) -> list[str]:
        """Keys of chunk outputs under work/ that no stage key of this config names (left by changed settings)."""
        current = {
            self.chunk_key(stage, c, r) for stage in STAGES for c in self.chunk_ranges() for r in self.rounds
        }
        stale = []
        for stage in STAGES:
            keys = [f"work/{stage}/{name}" for name in self.store.list(f"work/{stage}") if name.startswith("c")]
            stale += [key for key in keys if key not in current]
        return stale

    def claim_output_dir(self) -> None:
        self.store.write_json("build.json", {"plan_key": self.planner.key, "name": self.config.name})


def _remove_temp_entries(folder: Path, recursive: bool = True) -> int:
    """Temp files and directories (.NAME.*.tmp) under a local folder. A directory swapped out by
    replace_dir's fallback (`.NAME.old.tmp`) whose new version never landed is put back."""
    import shutil

    if not folder.exists():
        return 0
    removed = 0
    leftovers = folder.rglob(".*.tmp") if recursive else folder.glob(".*.tmp")
    for path in sorted(leftovers, key=lambda p: len(p.parts), reverse=True):
        if not path.exists():
            continue
        name = path.name.removeprefix(".").removesuffix(".old.tmp")
        if path.name.endswith(".old.tmp") and path.is_dir() and not (path.parent / name).exists():
            path.rename(path.parent / name)
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed += 1
    return removed


# Each run_*_chunk takes a factory for its backend and calls it only when the chunk holds work, so a
# finished or empty chunk (a regeneration round with nothing to redo) loads no model.
def run_script_chunk(ctx: BuildContext, chunk_index: int, make_chat: Callable, round_: int = 0) -> ChunkRef:
    from empathy_data.stages.script.journal import ReplyJournal

    if ctx.is_done("script", chunk_index, round_):
        return _ref(ctx, "script", chunk_index, round_, cached=True)
    t0 = time.perf_counter()
    specs = ctx.round_specs(chunk_index, round_)
    # The request hash covers messages, seed and sampling settings; the salt adds the model weights.
    identity = ctx.llm_identity()
    salt = {k: identity.get(k) for k in ("embedded_llm_sha256", "model", "library")}
    if "sampler" in identity:  # the embedded server's (absent elsewhere: older journals keep replaying)
        salt["sampler"] = identity["sampler"]
    journal = ReplyJournal(ctx.journal_path(chunk_index, round_), salt=salt)
    try:
        scripts, outcomes = _write_scripts(ctx, chunk_index, round_, specs, make_chat, journal)
    finally:  # replies received before a fault are kept for the retry, wherever it runs
        ctx.store.push(ctx.journal_key(chunk_index, round_))
    by_index = {s.spec.index: s for s in scripts} | {o.index: o for o in outcomes}
    rows = [to_row(by_index[i]) for i in sorted(by_index)]
    ctx.store.write_rows(ctx.chunk_key("script", chunk_index, round_), rows)
    written = ChunkRecords(tuple(by_index[i] for i in sorted(by_index)))
    ref = _ref(ctx, "script", chunk_index, round_, written, seconds=time.perf_counter() - t0)
    return replace(ref, replayed=journal.replayed, sent=journal.sent)


def _write_scripts(ctx: BuildContext, chunk_index: int, round_: int, specs, make_chat: Callable, journal):
    from empathy_data.stages.script.stage import write_scripts

    cfg = ctx.config.script
    chat = make_chat() if specs else None
    return write_scripts(
        specs,
        chat,
        ctx.prompts,
        cfg.validation,
        cfg.max_attempts,
        cfg.max_in_flight,
        cfg.request_tag,
        cfg.write_by,
        first_attempt=round_ * cfg.max_attempts,  # each round asks with new seeds
        journal=journal,
        exchange_mode_from=cfg.exchange_mode_from,
        drafts=ctx.drafts(chunk_index, round_) if specs else None,
        judges=script_judges(ctx, chat) if specs else None,
    )


def script_judges(ctx: BuildContext, chat):
    """The topic check and LLM judge the config asks for, built on this worker (models once per process)."""
    from empathy_data.stages.script.judge import ScriptJudges

    cfg = ctx.config.script
    if not cfg.judge.enabled and not cfg.topic.enabled:
        return None
    embedder = backends.text_embedder(cfg.topic) if cfg.topic.enabled else None
    judge_chat = backends.judge_chat(cfg, chat) if cfg.judge.enabled else None
    min_scores = cfg.judge.thresholds(embedded_judge(cfg))
    gate = cfg.judge.label_gate(embedded_judge(cfg))
    return ScriptJudges(ctx.prompts, cfg.judge, cfg.topic, judge_chat, min_scores, embedder, cfg.request_tag, gate)


def embedded_judge(script: ScriptConfig) -> bool:
    """The judge is the embedded 0.5B model: the script stage's own embedded server."""
    return script.judge.base_url is None and script.backend == "openai" and script.base_url is None


def run_synthesize_chunk(ctx: BuildContext, chunk_index: int, make_tts: Callable, round_: int = 0) -> ChunkRef:
    from empathy_data.stages.synthesize.stage import synthesize_scripts

    if ctx.is_done("synthesize", chunk_index, round_):
        return _ref(ctx, "synthesize", chunk_index, round_, cached=True)
    t0 = time.perf_counter()
    written = ctx.read_chunk("script", chunk_index, round_)
    scripts, outcomes = written.scripts, written.outcomes
    cfg = ctx.config.synthesize
    with ctx.store.publish_dir(ctx.chunk_key("synthesize", chunk_index, round_)) as tmp:
        tts = make_tts() if scripts else None
        utterances, failures = synthesize_scripts(
            scripts, tts, cfg, tmp, cfg.tts.neutral_reference, resolve=ctx.planner.pool.resolve
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
    from empathy_data.stages.filter.stage import exchange_verdict, score_utterances

    if ctx.is_done("filter", chunk_index, round_):
        return _ref(ctx, "filter", chunk_index, round_, cached=True)
    t0 = time.perf_counter()
    synthesized = ctx.read_chunk("synthesize", chunk_index, round_)
    scripts = {s.spec.dialogue_id: s for s in synthesized.scripts}
    utterances = synthesized.utterances
    languages = {d: s.spec.language for d, s in scripts.items()}
    thresholds = ctx.config.filter.thresholds
    scores = []
    if utterances:
        with ctx.store.local_dir(ctx.chunk_key("synthesize", chunk_index, round_)) as synth_dir:
            clip_of = reference_clips(ctx, scripts)
            scores = score_utterances(
                utterances, languages, synth_dir, *make_judges(), thresholds, audio_judges(ctx), clip_of
            )
    by_turn = {(s.dialogue_id, s.turn_index): s for s in scores}
    judged: list[Exchange | Outcome] = []
    for dialogue_id, script in scripts.items():
        for k in range(script.spec.num_exchanges):
            user, assistant = by_turn[(dialogue_id, 2 * k)], by_turn[(dialogue_id, 2 * k + 1)]
            verdict, reasons = exchange_verdict(user, assistant)
            judged.append(Exchange(
                index=script.spec.index, dialogue_id=dialogue_id, exchange_index=k, verdict=verdict,
                reasons=reasons, user_scores=user, assistant_scores=assistant,
            ))  # fmt: skip
    judged += synthesized.outcomes
    judged.sort(key=lambda r: (r.index, r.exchange_index if isinstance(r, Exchange) else -1))
    ctx.store.write_rows(ctx.chunk_key("filter", chunk_index, round_), map(to_row, judged))
    return _ref(ctx, "filter", chunk_index, round_, ChunkRecords(tuple(judged)), time.perf_counter() - t0)


def audio_judges(ctx: BuildContext):
    """The speaker and MOS judges the config asks for, built on this worker (once per process)."""
    from empathy_data.stages.filter.audio_judges import AudioJudges

    cfg = ctx.config.filter
    speaker = backends.speaker_encoder(cfg.speaker) if cfg.speaker.enabled else None
    mos = backends.mos_backend(cfg.mos) if cfg.mos is not None else None
    return AudioJudges(cfg, speaker, mos) if speaker or mos else None


def reference_clips(ctx: BuildContext, scripts: dict[str, Script]) -> Callable[[Utterance], Path | None]:
    """utterance -> the pool clip a cloning TTS rendered it from (None for parametric TTS such as espeak)."""
    from empathy_data.stages.synthesize.base import TTSRequest
    from empathy_data.stages.synthesize.clips import pick_clip

    if ctx.config.synthesize.tts.backend == "espeak":
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
        records = ctx.read_chunk(stage, chunk_index, round_)
    counts = records.counts()
    key = ctx.keys[stage][chunk_index][round_]
    where = ctx.store.where(ctx.chunk_key(stage, chunk_index, round_))
    return ChunkRef(stage, chunk_index, key, where, counts, round(seconds, 3), cached, round_)


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
                ctx.load_topup()
    return ctx
