"""A corpus build without any orchestrator: context, cache keys and one function per stage and chunk.

Flows (Prefect, or a plain loop) call these; each chunk function reads its upstream chunk, writes its
own output atomically under <out>/work/<stage>/ and returns a small ChunkRef, never audio.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from empathy_data.atomic import atomic_dir, read_jsonl, write_jsonl
from empathy_data.config import BuildConfig, load_config
from empathy_data.embedded_models import LLM_SHA256, WHISPER_SHA256
from empathy_data.errors import ConfigError
from empathy_data.hashing import digest
from empathy_data.plan import Planner
from empathy_data.prompt_library import PromptLibrary, load_prompts
from empathy_data.resources import prompts_dir, speaker_pool_path
from empathy_data.schema import Outcome, Script, Utterance
from empathy_data.speakers import load_pool

log = logging.getLogger("empathy_data")
STAGES = ("script", "synthesize", "filter")


@dataclass(frozen=True)
class ChunkRef:
    stage: str
    chunk_index: int
    key: str
    path: str
    counts: dict[str, int]
    seconds: float = 0.0
    cached: bool = False


@dataclass
class BuildContext:
    config: BuildConfig
    config_dir: Path
    out: Path
    prompts: PromptLibrary
    planner: Planner
    keys: dict[str, dict[int, str]] = field(default_factory=dict)

    @classmethod
    def load(cls, config_path: str | Path, overrides: dict[str, Any] | None = None) -> BuildContext:
        config, config_dir = load_config(config_path, overrides)
        return cls.from_config(config, config_dir)

    @classmethod
    def from_config(cls, config: BuildConfig, config_dir: Path) -> BuildContext:
        """Validate every input (prompts, speaker pool, labels) before any model loads."""
        prompts = load_prompts(prompts_dir(config.prompts_dir, config_dir), list(config.languages))
        pool = load_pool(speaker_pool_path(config.speaker_pool, config_dir))
        planner = Planner(config, prompts, pool)
        out = Path(config.output)
        out = out if out.is_absolute() else (Path.cwd() / out)
        ctx = cls(config=config, config_dir=config_dir, out=out, prompts=prompts, planner=planner)
        ctx.keys = {stage: {c: ctx.stage_key(stage, c) for c in range(planner.num_chunks)} for stage in STAGES}
        return ctx

    # Cache keys hash exactly what changes a stage's output, plus the upstream key. Left out on purpose:
    # server address, API key variable, timeouts, concurrency and retry counts (they change speed, not output).
    def stage_settings(self, stage: str) -> dict[str, Any]:
        c = self.config
        if stage == "script":
            speed_only = {"base_url", "api_key_env", "max_in_flight", "timeout_s", "request_retries", "embedded"}
            s = c.script.model_dump(mode="json", exclude=speed_only)
            if c.script.backend == "openai":
                s["structured_output"] = c.script.schema_form()
                if c.script.base_url is None:
                    s["embedded_llm_sha256"] = LLM_SHA256
            return {"script": s, "prompts": self.prompts.content_hash}
        if stage == "synthesize":
            return c.synthesize.model_dump(mode="json")
        f = c.filter.model_dump(mode="json")
        if c.filter.asr.backend == "faster-whisper" and c.filter.asr.model == "embedded":
            f["embedded_asr_sha256"] = WHISPER_SHA256
        return f

    def stage_key(self, stage: str, chunk_index: int) -> str:
        if stage == "script":
            start = chunk_index * self.config.chunk_size
            stop = min(start + self.config.chunk_size, self.config.num_dialogues)
            upstream = {"plan": self.planner.key, "range": [start, stop]}
        else:
            upstream = self.stage_key(STAGES[STAGES.index(stage) - 1], chunk_index)
        return digest({"stage": stage, "settings": self.stage_settings(stage), "upstream": upstream})

    def chunk_path(self, stage: str, chunk_index: int) -> Path:
        name = f"c{chunk_index:05d}-{self.keys[stage][chunk_index]}"
        return self.out / "work" / stage / (name if stage == "synthesize" else f"{name}.jsonl")

    def is_done(self, stage: str, chunk_index: int) -> bool:
        path = self.chunk_path(stage, chunk_index)
        return (path / "records.jsonl").is_file() if stage == "synthesize" else path.is_file()

    def chunk_ranges(self) -> list[int]:
        return list(range(self.planner.num_chunks))

    def check_output_dir(self) -> None:
        """Refuse an output directory that holds a different build (another plan)."""
        marker = self.out / "build.json"
        if marker.is_file():
            import json

            try:
                existing = json.loads(marker.read_text())
            except (OSError, ValueError):
                raise ConfigError(
                    str(marker), "unreadable build marker; remove the directory or pick another"
                ) from None
            if existing.get("plan_key") != self.planner.key:
                raise ConfigError(
                    f"output: {self.out}",
                    "holds a different build (other seed, distributions, speakers or scenarios); use another --out",
                )
        elif self.out.exists() and any(p.name != "work" for p in self.out.iterdir()):
            raise ConfigError(f"output: {self.out}", "directory is not empty and holds no empathy-data build")

    def remove_partial_writes(self) -> int:
        """Delete temp files and directories a killed run left behind (finished chunks are never temp)."""
        import shutil

        removed = 0
        work = self.out / "work"
        for path in sorted(work.rglob(".*.tmp"), reverse=True) if work.exists() else []:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed += 1
        for path in self.out.glob(".*.tmp") if self.out.exists() else []:
            path.unlink(missing_ok=True)
            removed += 1
        return removed

    def stale_work(self) -> list[Path]:
        """Chunk outputs under work/ that no stage key of this config names (left by changed settings)."""
        current = {self.chunk_path(stage, c).name for stage in STAGES for c in self.chunk_ranges()}
        stale = []
        for stage in STAGES:
            folder = self.out / "work" / stage
            if folder.is_dir():
                stale += [p for p in sorted(folder.iterdir()) if p.name.startswith("c") and p.name not in current]
        return stale

    def claim_output_dir(self) -> None:
        from empathy_data.atomic import write_json

        write_json(self.out / "build.json", {"plan_key": self.planner.key, "name": self.config.name})


def _record(kind: str, obj) -> dict:
    return {"kind": kind, **obj.to_dict()}


def strip_kind(row: dict) -> dict:
    """A chunk-store row without its `kind` tag, ready for the record's from_dict."""
    return {k: v for k, v in row.items() if k != "kind"}


def outcomes_of(rows: list[dict]) -> list[Outcome]:
    return [Outcome.from_dict(strip_kind(r)) for r in rows if r["kind"] == "outcome"]


def run_script_chunk(ctx: BuildContext, chunk_index: int, chat) -> ChunkRef:
    from empathy_data.script.stage import write_scripts

    path = ctx.chunk_path("script", chunk_index)
    if ctx.is_done("script", chunk_index):
        return _ref_from_file(ctx, "script", chunk_index, cached=True)
    t0 = time.perf_counter()
    specs = ctx.planner.chunk(chunk_index)
    cfg = ctx.config.script
    scripts, outcomes = write_scripts(
        specs, chat, ctx.prompts, cfg.validation, cfg.max_attempts, cfg.max_in_flight, cfg.request_tag, cfg.write_by
    )
    by_index = {s.spec.index: _record("script", s) for s in scripts} | {
        o.index: _record("outcome", o) for o in outcomes
    }
    write_jsonl(path, [by_index[i] for i in sorted(by_index)])
    return _ref_from_file(ctx, "script", chunk_index, seconds=time.perf_counter() - t0)


def run_synthesize_chunk(ctx: BuildContext, chunk_index: int, tts) -> ChunkRef:
    from empathy_data.synthesize.stage import synthesize_scripts

    if ctx.is_done("synthesize", chunk_index):
        return _ref_from_file(ctx, "synthesize", chunk_index, cached=True)
    t0 = time.perf_counter()
    rows = read_jsonl(ctx.chunk_path("script", chunk_index))
    scripts = [Script.from_dict(strip_kind(r)) for r in rows if r["kind"] == "script"]
    outcomes = outcomes_of(rows)
    cfg = ctx.config.synthesize
    with atomic_dir(ctx.chunk_path("synthesize", chunk_index)) as tmp:
        utterances, failures = synthesize_scripts(scripts, tts, cfg, tmp, cfg.tts.neutral_reference)
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
        records = [_record("script", s) for s in scripts if s.spec.dialogue_id not in failed_ids]
        records += [_record("utterance", u) for u in utterances] + [_record("outcome", o) for o in outcomes]
        write_jsonl(tmp / "records.jsonl", records)
    return _ref_from_file(ctx, "synthesize", chunk_index, seconds=time.perf_counter() - t0)


def run_filter_chunk(ctx: BuildContext, chunk_index: int, asr, emotion) -> ChunkRef:
    from empathy_data.filter.stage import exchange_verdict, score_utterances

    if ctx.is_done("filter", chunk_index):
        return _ref_from_file(ctx, "filter", chunk_index, cached=True)
    t0 = time.perf_counter()
    synth_dir = ctx.chunk_path("synthesize", chunk_index)
    rows = read_jsonl(synth_dir / "records.jsonl")
    scripts = {r["spec"]["dialogue_id"]: Script.from_dict(strip_kind(r)) for r in rows if r["kind"] == "script"}
    utterances = [Utterance.from_dict(strip_kind(r)) for r in rows if r["kind"] == "utterance"]
    languages = {d: s.spec.language for d, s in scripts.items()}
    scores = score_utterances(utterances, languages, synth_dir, asr, emotion, ctx.config.filter.thresholds)
    by_turn = {(s.dialogue_id, s.turn_index): s for s in scores}
    out_rows: list[dict] = []
    for dialogue_id, script in scripts.items():
        for k in range(script.spec.num_exchanges):
            user, assistant = by_turn[(dialogue_id, 2 * k)], by_turn[(dialogue_id, 2 * k + 1)]
            verdict, reasons = exchange_verdict(user, assistant)
            out_rows.append(
                {
                    "kind": "exchange",
                    "index": script.spec.index,
                    "dialogue_id": dialogue_id,
                    "exchange_index": k,
                    "verdict": verdict,
                    "reasons": reasons,
                    "user_scores": user.to_dict(),
                    "assistant_scores": assistant.to_dict(),
                }
            )
    out_rows += [_record("outcome", o) for o in outcomes_of(rows)]
    out_rows.sort(key=lambda r: (r["index"], r.get("exchange_index", -1)))
    write_jsonl(ctx.chunk_path("filter", chunk_index), out_rows)
    return _ref_from_file(ctx, "filter", chunk_index, seconds=time.perf_counter() - t0)


def _ref_from_file(
    ctx: BuildContext, stage: str, chunk_index: int, seconds: float = 0.0, cached: bool = False
) -> ChunkRef:
    path = ctx.chunk_path(stage, chunk_index)
    rows = read_jsonl(path / "records.jsonl" if stage == "synthesize" else path)
    counts: dict[str, int] = {}
    for r in rows:
        key = r.get("verdict") if r["kind"] in ("outcome", "exchange") else r["kind"]
        key = f"{r['kind']}:{key}" if r["kind"] in ("outcome", "exchange") else key
        counts[key] = counts.get(key, 0) + 1
    return ChunkRef(stage, chunk_index, ctx.keys[stage][chunk_index], str(path), counts, round(seconds, 3), cached)
