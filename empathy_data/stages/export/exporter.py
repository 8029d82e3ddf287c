"""export: stream filter chunks into sharded Parquet (data/ and rejects/), a dataset card and a manifest."""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow.parquet as pq

from empathy_data.core.hashing import digest
from empathy_data.core.versions import package_versions
from empathy_data.planning.plan import Cell
from empathy_data.planning.regenerate import best, merge, versions_in_round
from empathy_data.planning.targets import target_shares
from empathy_data.planning.topup import add_dialogue, gaps, shares
from empathy_data.records.chunk_records import ChunkRecords, Exchange
from empathy_data.records.manifest import FORMAT_VERSION, Manifest
from empathy_data.records.reasons import Reason, kinds, texts
from empathy_data.records.schema import DialogueSpec, Outcome
from empathy_data.stages.build_view import BuildView
from empathy_data.stages.export.card import dataset_card
from empathy_data.stages.export.diversity import DiversityStats, NearDuplicates, SemanticDuplicates
from empathy_data.stages.export.rows import exchange_row, features
from empathy_data.stages.export.shards import ShardWriter
from empathy_data.stages.export.splits import assign_splits, split_key
from empathy_data.stages.script.embeddings import unpack
from empathy_data.store.chunk_store import PARTS


class Stats:
    def __init__(self) -> None:
        self.exchanges: Counter[str] = Counter()
        self.dialogues: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self.planned: dict[str, Counter[str]] = defaultdict(Counter)
        self.planned_dialogues: dict[str, Counter[str]] = defaultdict(Counter)
        self.accepted: dict[str, Counter[str]] = defaultdict(Counter)
        # as planned / accepted / checks, keyed "<source>/<label>" (source: real or synthetic, DialogueSpec.source)
        self.planned_sources: dict[str, Counter[str]] = defaultdict(Counter)
        self.accepted_sources: dict[str, Counter[str]] = defaultdict(Counter)
        self.checks_sources: dict[str, Counter[str]] = defaultdict(Counter)
        self.script_checks_sources: dict[str, Counter[str]] = defaultdict(Counter)
        self.exchanges_sources: Counter[str] = Counter()  # "<source>/<verdict>" -> exchanges
        self.reasons_sources: Counter[str] = Counter()  # "<source>/<reason kind>" -> exchanges
        self.group_planned: Counter[str] = Counter()  # contrast group -> members planned / accepted
        self.group_accepted: Counter[str] = Counter()
        self.checks: dict[str, Counter[str]] = defaultdict(Counter)
        self.script_checks: dict[str, Counter[str]] = defaultdict(Counter)  # over every attempt of every round
        self.accepted_by_round: Counter[str] = Counter()
        self.regenerated = 0  # dialogues written more than once
        self.achieved: dict[str, Counter[str]] = defaultdict(Counter)  # accepted dialogue equivalents (topup.py)
        self.diversity = DiversityStats()

    def plan(self, script_or_spec, n_exchanges: int) -> None:
        spec = script_or_spec
        for label, value in (
            ("language", spec.language),
            ("user_emotion", spec.turns[0].emotion),
            ("user_gender", spec.user.gender),
            ("user_age_group", spec.user.age_group),
            ("exchanges", str(spec.num_exchanges)),
            ("scenario", spec.scenario),
        ):
            self.planned_dialogues[label][value] += 1
        for planned in (self.planned, self.planned_sources):
            prefix = "" if planned is self.planned else f"{spec.source}/"
            planned[f"{prefix}language"][spec.language] += n_exchanges
            planned[f"{prefix}user_gender"][spec.user.gender] += n_exchanges
            planned[f"{prefix}user_age_group"][spec.user.age_group] += n_exchanges
            for k in range(n_exchanges):
                planned[f"{prefix}user_emotion"][spec.turns[2 * k].emotion] += 1
                planned[f"{prefix}assistant_style"][spec.turns[2 * k + 1].response_style] += 1
        self.planned["source"][spec.source] += n_exchanges
        if spec.contrast is not None:
            self.group_planned[spec.contrast.group_id] += 1

    COUNTERS = ("exchanges", "dialogues", "reasons", "accepted_by_round", "group_planned", "group_accepted",
                "exchanges_sources", "reasons_sources")  # fmt: skip

    def judged(self, source: str, verdict: str, n: int, reason_kinds: Iterable[str] = ()) -> None:
        """n exchanges of a dialogue of `source` ended with `verdict`, for these kinds of reasons."""
        self.exchanges[verdict] += n
        self.exchanges_sources[f"{source}/{verdict}"] += n
        for key in reason_kinds:
            self.reasons[key] += n
            self.reasons_sources[f"{source}/{key}"] += n
    BY_LABEL = ("planned", "planned_dialogues", "accepted", "checks", "script_checks", "achieved", "planned_sources",
                "accepted_sources", "checks_sources", "script_checks_sources")  # fmt: skip

    def count_script_checks(self, checks: dict[str, list[int]], source: str = "synthetic") -> None:
        for name, (passed, failed) in checks.items():
            self.script_checks[name]["pass"] += passed
            self.script_checks[name]["fail"] += failed
            self.script_checks_sources[f"{source}/{name}"]["pass"] += passed
            self.script_checks_sources[f"{source}/{name}"]["fail"] += failed

    def to_json(self) -> dict[str, Any]:
        """Everything but diversity (finish_export measures that over the shards), as JSON."""
        return {
            **{name: dict(getattr(self, name)) for name in self.COUNTERS},
            **{name: {k: dict(c) for k, c in getattr(self, name).items()} for name in self.BY_LABEL},
            "regenerated": self.regenerated,
        }

    def merge(self, data: dict[str, Any]) -> None:
        """Add another chunk's to_json()."""
        for name in self.COUNTERS:
            getattr(self, name).update(data[name])
        for name in self.BY_LABEL:
            for label, counts in data[name].items():
                getattr(self, name)[label].update(counts)
        self.regenerated += data["regenerated"]

    def accept(self, row: dict) -> None:
        for key in (
            "language",
            "user_gender",
            "user_age_group",
            "user_emotion",
            "assistant_style",
            "split",
            "scenario",
            "source",
        ):
            self.accepted[key][row[key]] += 1
            self.accepted_sources[f"{row['source']}/{key}"][row[key]] += 1
        if row.get("group_id"):
            self.group_accepted[row["group_id"]] += 1


def clean_prefixes(exchanges: list[Exchange]) -> dict[str, int]:
    """Per dialogue, how many exchanges from the start were all accepted: exchange k's history is clean
    (holds no exchange the filter turned down) when k <= that number."""
    verdicts: dict[str, dict[int, str]] = defaultdict(dict)
    for exchange in exchanges:
        verdicts[exchange.dialogue_id][exchange.exchange_index] = exchange.verdict
    prefixes = {}
    for dialogue_id, by_index in verdicts.items():
        n = 0
        while by_index.get(n) == "accepted":
            n += 1
        prefixes[dialogue_id] = n
    return prefixes


@dataclass
class CorpusPass:
    rows_by_unit: dict[str, int]  # split unit -> rows it brings to data/
    rows_by_dialogue: dict[str, int]  # dialogue id -> rows its kept version brings to data/
    duplicates: dict[str, Reason]  # dialogue id -> why it goes to rejects/: the earlier dialogue it repeats
    near_duplicates: NearDuplicates | None
    semantic_duplicates: SemanticDuplicates | None = None


def corpus_pass(ctx: BuildView) -> CorpusPass:
    """First pass, text and metadata only, in plan order: near-duplicate scripts among the dialogues that
    would bring rows to data/ (the first one kept), and the rows each split unit brings."""
    split_by = ctx.config.export.split_by
    keep_unclean = ctx.config.export.unclean_history == "keep"
    rows: Counter[str] = Counter()
    by_dialogue_rows: dict[str, int] = {}
    duplicates: dict[str, Reason] = {}
    threshold = ctx.config.export.near_duplicate_threshold
    near = NearDuplicates(threshold=threshold) if threshold is not None else None
    semantic_threshold = ctx.config.export.semantic_duplicate_threshold
    semantic = SemanticDuplicates(semantic_threshold) if semantic_threshold is not None else None
    for chunk in ctx.chunk_ranges():
        filtered = [ctx.layout.read_chunk("filter", chunk, r) for r in ctx.rounds]
        merged = merge([versions_in_round(records, r) for r, records in enumerate(filtered)])
        kept = {d: best(versions).round for d, versions in merged.items()}
        texts: dict[tuple[str, int], str] = {}
        vectors: dict[tuple[str, int], str] = {}
        for round_ in set(kept.values()):
            for script in ctx.layout.read_chunk("synthesize", chunk, round_).scripts:
                texts[(script.spec.dialogue_id, round_)] = "\n".join(t.text for t in script.turns)
                if "embedding" in script.quality:
                    vectors[(script.spec.dialogue_id, round_)] = script.quality["embedding"]
        by_dialogue: dict[tuple[str, int], list[Exchange]] = defaultdict(list)
        for round_, records in enumerate(filtered):
            for exchange in records.exchanges:
                by_dialogue[(exchange.dialogue_id, round_)].append(exchange)
        for spec in ctx.planner.chunk(chunk):
            unit = split_key(split_by, spec)
            rows[unit] += 0
            if spec.dialogue_id not in kept:
                continue
            exchanges = by_dialogue[(spec.dialogue_id, kept[spec.dialogue_id])]
            if keep_unclean:
                n = sum(e.verdict == "accepted" for e in exchanges)
            else:
                n = clean_prefixes(exchanges).get(spec.dialogue_id, 0)
            version = (spec.dialogue_id, kept[spec.dialogue_id])
            if spec.contrast is not None and spec.contrast.member > 0:
                # a contrast member repeats its group's words on purpose: it follows its first member's verdict
                first = ctx.planner.dialogue_id(spec.index - spec.contrast.member)
                if n and first in duplicates:
                    duplicates[spec.dialogue_id] = duplicates[first]
                    n = 0
            else:
                if n and near and (earlier := near.check(spec.dialogue_id, texts[version])):
                    duplicates[spec.dialogue_id] = Reason(stage="export", check="near_duplicate", detail=f"the script nearly repeats {earlier}")
                    n = 0
                if n and semantic and version in vectors and (found := semantic.check(spec.dialogue_id, unpack(vectors[version]), spec.language)):
                    same = f"the script says what {found[0]} says (cosine {found[1]})"
                    duplicates[spec.dialogue_id] = Reason(stage="export", check="semantic_duplicate", detail=same)
                    n = 0
            rows[unit] += n
            by_dialogue_rows[spec.dialogue_id] = n
    if near:
        near.close()  # every check is done: only its counts are read after this
    return CorpusPass(dict(rows), by_dialogue_rows, duplicates, near, semantic)


def _audio(ctx: BuildView, chunk_key: str, name: str) -> dict:
    return {"bytes": ctx.store.read_bytes(f"{chunk_key}/{name}"), "path": name}


@dataclass
class Writers:
    data: dict[str, ShardWriter]  # one per split
    rejects: ShardWriter
    reject_features: Any
    rate: int
    build: dict[str, Any]
    rejects_audio: bool
    split_of_unit: dict[str, str]  # user speaker id or dialogue id -> split (see export/splits.py)
    split_by: str
    keep_unclean_history: bool
    duplicates: dict[str, Reason]


def export_round(
    ctx: BuildView, chunk: int, round_: int, filtered: ChunkRecords, kept: dict[str, int], w: Writers, stats: Stats
) -> None:
    """One round of one chunk: the versions each dialogue keeps go on as before, the versions a later
    (or earlier) round replaced go to rejects/ with verdict `replaced` and what they failed on."""
    synth_key = ctx.layout.chunk_key("synthesize", chunk, round_)
    synthesized = ctx.layout.read_chunk("synthesize", chunk, round_)
    scripts = {s.spec.dialogue_id: s for s in synthesized.scripts}
    utts = {(u.dialogue_id, u.turn_index): u for u in synthesized.utterances}
    build = w.build | {"round": round_}
    dialogue_verdicts: dict[str, set[str]] = defaultdict(set)
    accepted_of: Counter[str] = Counter()
    clean = clean_prefixes(filtered.exchanges)
    for script in synthesized.scripts:  # the script stage's judges, over every attempt this round made
        stats.count_script_checks(script.checks, script.spec.source)
    for outcome in filtered.outcomes:
        stats.count_script_checks(outcome.script.checks if outcome.script else outcome.checks, outcome.spec.source)
    for r in filtered.items:
        dialogue_id = r.dialogue_id
        split = w.split_of_unit[split_key(w.split_by, r.spec if isinstance(r, Outcome) else scripts[dialogue_id].spec)]
        keep_round = kept[dialogue_id]
        replaced = [Reason(stage="export", check="replaced", detail=f"by round {keep_round}")] if keep_round != round_ else []
        if isinstance(r, Outcome):
            outcome = r
            n = outcome.spec.num_exchanges
            if replaced:
                stats.judged(outcome.spec.source, "replaced", n)
            else:
                stats.plan(outcome.spec, n)
                stats.judged(outcome.spec.source, outcome.verdict, n, kinds(outcome.reasons, outcome.verdict))
                stats.dialogues[outcome.verdict] += 1
            for k in range(n):
                row = _outcome_row(outcome, k, split, build, w.reject_features, w.rate)
                if replaced:
                    row |= {"verdict": "replaced", "reasons": texts(outcome.reasons + replaced)}
                w.rejects.write(row)
            continue
        if not isinstance(r, Exchange):
            raise TypeError(f"{synth_key}: a filter chunk holds exchanges and outcomes, not {type(r).__name__}")
        script = scripts[dialogue_id]
        k = r.exchange_index
        if k == 0 and not replaced:
            stats.plan(script.spec, script.spec.num_exchanges)
        pair = (utts[(dialogue_id, 2 * k)], utts[(dialogue_id, 2 * k + 1)])
        row = exchange_row(script, k, split, (r.user_scores, r.assistant_scores), pair, build)
        row["history_clean"] = k <= clean.get(dialogue_id, 0)
        verdict, reasons = r.verdict, list(r.reasons)
        if verdict == "accepted" and dialogue_id in w.duplicates and not replaced:
            verdict, reasons = "rejected", [w.duplicates[dialogue_id]]
        elif verdict == "accepted" and not row["history_clean"] and not w.keep_unclean_history:
            unclean = f"exchange {clean[dialogue_id] + 1} was not accepted"
            verdict, reasons = "rejected", [Reason(stage="export", check="history", detail=unclean)]
        audio = {
            "user_audio": _audio(ctx, synth_key, pair[0].audio_path),
            "assistant_audio": _audio(ctx, synth_key, pair[1].audio_path),
        }
        if replaced:
            stats.judged(script.spec.source, "replaced", 1)
            row |= {"verdict": "replaced", "stage": "filter", "reasons": texts([*r.reasons, *replaced])}
            w.rejects.write(row | (audio if w.rejects_audio else {}))
            continue
        for side, scores in (("user", r.user_scores), ("assistant", r.assistant_scores)):
            for name, value in scores.checks.items():
                stats.checks[f"{side}.{name}"][value] += 1
                stats.checks_sources[f"{script.spec.source}/{side}.{name}"][value] += 1
        stats.judged(script.spec.source, verdict, 1, kinds(reasons, verdict) if verdict != "accepted" else ())
        dialogue_verdicts[dialogue_id].add(verdict)
        if verdict == "accepted":
            accepted_of[dialogue_id] += 1
            w.data[split].write(row | audio)
            stats.accept(row)
            stats.accepted_by_round[str(round_)] += 1
        else:
            row |= {"verdict": verdict, "stage": "filter", "reasons": texts(reasons)}
            w.rejects.write(row | (audio if w.rejects_audio else {}))
    for script in synthesized.scripts:  # scripts that stopped short: their unwritten exchanges
        if not script.unwritten:
            continue
        spec = script.spec
        split = w.split_of_unit[split_key(w.split_by, spec)]
        keep_round = kept[spec.dialogue_id]
        missing = range(script.num_written, spec.num_exchanges)
        if keep_round != round_:
            stats.judged(spec.source, "replaced", len(missing))
            verdict = "replaced"
            reasons = [*script.unwritten, Reason(stage="export", check="replaced", detail=f"by round {keep_round}")]
        else:
            verdict, reasons = "rejected", script.unwritten
            stats.judged(spec.source, verdict, len(missing), kinds(reasons, verdict))
            dialogue_verdicts[spec.dialogue_id].add(verdict)
        for k in missing:
            row = _unwritten_row(spec, k, split, w.reject_features)
            w.rejects.write(row | {"verdict": verdict, "stage": "script", "reasons": texts(reasons)})
    for verdicts in dialogue_verdicts.values():
        final = "failed" if "failed" in verdicts else "rejected" if "rejected" in verdicts else "accepted"
        stats.dialogues[final] += 1
    for dialogue_id, n in accepted_of.items():
        spec = scripts[dialogue_id].spec
        add_dialogue(stats.achieved, Cell.of(spec), n, spec.num_exchanges)


# Export runs as one task per chunk (export_chunk, on whichever worker the runner picks: audio is read
# there) between two short driver steps: plan_export (text and metadata only: near-duplicates and the
# split of each unit, which need the whole corpus) and finish_export (names the parts as shards, writes
# the card and the manifest). A chunk's parts are kept under work/export/ by a key of everything that
# decides their rows, so a re-run exports again only the chunks whose inputs changed.
DIVERSITY_COLUMNS = ("user_text", "assistant_text", "language", "exchange_index")
EXPORT_FORMAT = 3  # 3: rows gained the closed-set judge picks (quality). Bump when the rows a chunk's parts hold change for the same inputs


@dataclass
class ExportPlan:
    first: CorpusPass
    split_of_unit: dict[str, str]  # user speaker id or dialogue id -> split
    _chunks: dict[int, dict[str, Any]] = field(default_factory=dict, repr=False)

    def for_chunk(self, ctx: BuildView, chunk: int) -> dict[str, Any]:
        """The part of the plan one chunk's export needs (small: it travels to a worker). Kept: the
        chunk's specs are planned again to find it, and the task and finish_export both ask."""
        if chunk not in self._chunks:
            self._chunks[chunk] = self._slice(ctx, chunk)
        return self._chunks[chunk]

    def _slice(self, ctx: BuildView, chunk: int) -> dict[str, Any]:
        split_by = ctx.config.export.split_by
        specs = ctx.planner.chunk(chunk)
        units = {split_key(split_by, s) for s in specs}
        ids = {s.dialogue_id for s in specs}
        return {
            "splits": {u: self.split_of_unit[u] for u in sorted(units)},
            "duplicates": {d: e for d, e in sorted(self.first.duplicates.items()) if d in ids},
        }


def plan_export(ctx: BuildView) -> ExportPlan:
    cfg = ctx.config
    first = corpus_pass(ctx)
    return ExportPlan(first, assign_splits(first.rows_by_unit, cfg.export.splits, salt=f"{cfg.seed}:"))


def _build_info(ctx: BuildView) -> dict[str, Any]:
    cfg = ctx.config
    asr = ctx.layout.settings["filter"]["settings"]["asr"]
    backend = asr["service"]["backend"] if asr["backend"] == "service" else asr["backend"]  # the model behind it
    return {"name": cfg.name, "seed": cfg.seed, "asr_backend": backend}


def export_key(ctx: BuildView, chunk: int, chunk_plan: dict[str, Any]) -> str:
    export = ctx.config.export
    settings = {
        "format": EXPORT_FORMAT,
        "filter": ctx.layout.keys["filter"][chunk],  # every round; each key chains everything upstream
        "plan": chunk_plan,
        "export": {"rejects_audio": export.rejects_audio, "unclean_history": export.unclean_history,
                   "rows_per_shard": export.rows_per_shard, "split_by": export.split_by,
                   "splits": sorted(export.splits)},  # fmt: skip
        "build": _build_info(ctx),
    }
    return f"work/export/c{chunk:05d}-{digest(settings)}"


def export_chunk(ctx: BuildView, chunk: int, chunk_plan: dict[str, Any]) -> dict[str, Any]:
    """Write one chunk's rows as Parquet parts (one or more per split, and rejects) and return what
    PARTS says of them. Done once per key: a finished chunk is read back, not written again."""
    key = export_key(ctx, chunk, chunk_plan)
    if ctx.store.exists(f"{key}/{PARTS}"):
        return ctx.store.read_json(f"{key}/{PARTS}") | {"cached": True}
    t0 = time.perf_counter()
    cfg = ctx.config
    rate = cfg.synthesize.sample_rate
    rows_per_shard = cfg.export.rows_per_shard
    splits = list(cfg.export.splits)
    with ctx.store.publish_dir(key, marker=PARTS) as tmp:
        (tmp / "data").mkdir()
        (tmp / "rejects").mkdir()
        data_writers = {s: ShardWriter(tmp / "data", s, features(rate), rows_per_shard) for s in splits}
        reject_features = features(rate, with_audio=cfg.export.rejects_audio, with_verdict=True)
        rejects = ShardWriter(tmp / "rejects", "rejects", reject_features, rows_per_shard)
        writers = Writers(
            data_writers, rejects, reject_features, rate, _build_info(ctx), cfg.export.rejects_audio,
            chunk_plan["splits"], cfg.export.split_by, cfg.export.unclean_history == "keep", chunk_plan["duplicates"],
        )  # fmt: skip
        stats = Stats()
        filtered = [ctx.layout.read_chunk("filter", chunk, r) for r in ctx.rounds]
        merged = merge([versions_in_round(records, r) for r, records in enumerate(filtered)])
        kept = {d: best(versions).round for d, versions in merged.items()}
        stats.regenerated += sum(len(versions) > 1 for versions in merged.values())
        for r, records in enumerate(filtered):
            export_round(ctx, chunk, r, records, kept, writers, stats)
        info = {
            "chunk": chunk,
            "key": key,
            "data": {s: _in_folder("data", w.finish()) for s, w in data_writers.items()},
            "rejects": _in_folder("rejects", rejects.finish()),
            "stats": stats.to_json(),
        }
        (tmp / PARTS).write_text(json.dumps(info, sort_keys=True) + "\n", encoding="utf-8")
    return info | {"cached": False, "seconds": round(time.perf_counter() - t0, 3)}


def _in_folder(folder: str, parts: list[dict]) -> list[dict]:
    return [part | {"file": f"{folder}/{part['file']}"} for part in parts]


def shard_names(parts: list[tuple[str, dict]], prefix: str) -> tuple[list[tuple[str, str]], list[dict]]:
    """Parts in chunk order -> (part key, shard name) pairs and the manifest's shard entries."""
    total = len(parts)
    names = [f"{prefix}-{i:05d}-of-{total:05d}.parquet" for i in range(total)]
    pairs = [(source, name) for (source, _), name in zip(parts, names, strict=True)]
    entries = [{"file": name, "rows": part["rows"], "sha256": part["sha256"]} for (_, part), name in zip(parts, names, strict=True)]
    return pairs, entries


def finish_export(
    ctx: BuildView, plan: ExportPlan, timings: dict[str, float] | None = None, calibration: dict | None = None,
    judge_calibration: dict | None = None,
) -> Manifest:
    """Name every chunk's parts as the corpus's shards (data/ and rejects/), then write the card and the
    manifest. Reads each chunk's PARTS and the text columns of the data shards, never audio."""
    cfg = ctx.config
    splits = list(cfg.export.splits)
    stats = Stats()
    data_parts: dict[str, list[tuple[str, dict]]] = {s: [] for s in splits}
    reject_parts: list[tuple[str, dict]] = []
    keys = [export_key(ctx, chunk, plan.for_chunk(ctx, chunk)) for chunk in ctx.chunk_ranges()]
    for key in keys:
        info = ctx.store.read_json(f"{key}/{PARTS}")
        stats.merge(info["stats"])
        for split in splits:
            data_parts[split] += [(f"{key}/{part['file']}", part) for part in info["data"][split]]
        reject_parts += [(f"{key}/{part['file']}", part) for part in info["rejects"]]
    # The manifest marks a finished export: remove the old one first, so a killed export never looks finished.
    ctx.store.remove("manifest.json")
    shards: dict[str, list[dict]] = {}
    data_pairs: list[tuple[str, str]] = []
    for split in splits:
        pairs, shards[split] = shard_names(data_parts[split], split)
        data_pairs += pairs
    reject_pairs, reject_shards = shard_names(reject_parts, "rejects")
    ctx.store.publish_copies(data_pairs, "data")
    ctx.store.publish_copies(reject_pairs, "rejects")
    for split in splits:
        for shard in shards[split]:
            with ctx.store.open_read(f"data/{shard['file']}") as f:
                for batch in pq.ParquetFile(f).iter_batches(columns=list(DIVERSITY_COLUMNS)):
                    for row in batch.to_pylist():
                        stats.diversity.add(row["user_text"], row["language"], opening=row["exchange_index"] == 0)
                        stats.diversity.add(row["assistant_text"], row["language"])
    first = plan.first
    planned_exchanges = sum(stats.planned["user_emotion"].values())
    manifest = Manifest.model_validate({
        "format_version": FORMAT_VERSION,
        "name": cfg.name,
        "plan_key": ctx.planner.key,
        "config": cfg.model_dump(mode="json"),
        "calibration": calibration or {},
        "judge_calibration": judge_calibration or {},
        "versions": package_versions(),
        "counts": {
            "dialogues": {
                "planned": ctx.planner.num_dialogues,
                **{v: stats.dialogues[v] for v in ("accepted", "rejected", "failed")},
            },
            "exchanges": {
                "planned": planned_exchanges,
                **{v: stats.exchanges[v] for v in ("accepted", "rejected", "failed")},
            },
            "by_reason": dict(sorted(stats.reasons.items())),
            # Versions of regenerated dialogues that a better version replaced: in rejects/, not in `planned`.
            "regeneration": {
                "rounds": cfg.regenerate.rounds,
                "dialogues_regenerated": stats.regenerated,
                "exchanges_replaced": stats.exchanges["replaced"],
                "accepted_by_round": dict(sorted(stats.accepted_by_round.items())),
            },
            "by_split": {s: sum(x["rows"] for x in shards[s]) for s in splits},
            "topup": {
                "passes": ctx.planner.extra_passes,
                "dialogues": ctx.planner.num_dialogues - cfg.num_dialogues,
                "budget": cfg.rebalance.budget(cfg.num_dialogues) if cfg.rebalance else 0,
            },
        },
        "distributions": {
            # per dialogue: the configured shares, and what the plan holds
            "target": target_shares(cfg),
            "planned_dialogues": {k: dict(sorted(v.items())) for k, v in stats.planned_dialogues.items()},
            # per exchange
            "planned": {k: dict(sorted(v.items())) for k, v in stats.planned.items()},
            "accepted": {k: dict(sorted(v.items())) for k, v in stats.accepted.items()},
            # per dialogue: accepted dialogue equivalents (accepted / planned exchanges of each kept
            # dialogue), their shares, and how far those shares are from the target
            "achieved_dialogues": {k: {v: round(n, 4) for v, n in sorted(c.items())} for k, c in stats.achieved.items()},
            "achieved": shares(stats.achieved),
            "gap": gaps(target_shares(cfg), stats.achieved),
            # source -> planned / accepted per exchange, and filter check counts, of that source's dialogues
            "by_source": by_source(stats),
        },
        "checks": {k: dict(v) for k, v in sorted(stats.checks.items())},
        "script_checks": {k: dict(v) for k, v in sorted(stats.script_checks.items())},
        "diversity": stats.diversity.summary(first.near_duplicates)
        | (first.semantic_duplicates.summary() if first.semantic_duplicates else {}),
        "shards": {"data": {s: shards[s] for s in splits}, "rejects": reject_shards},
        # per stage, per chunk: the key of each round
        "stage_keys": {stage: list(keys.values()) for stage, keys in ctx.layout.keys.items()},
        "timings_s": timings or {},
        "ingested": {"corpora": list(ctx.planner.real.summaries)} if ctx.planner.real is not None else {},
        "contrast": contrast_summary(cfg.contrast, stats) if cfg.contrast is not None else {},
    })  # fmt: skip
    ctx.store.write_text("README.md", dataset_card(manifest))
    ctx.store.write_json("manifest.json", manifest.to_json())
    # Parts of earlier exports (another split plan, other settings) are never read again.
    current = {key.rsplit("/", 1)[-1] for key in keys}
    for name in ctx.store.list("work/export"):
        if name not in current:
            ctx.store.remove_output(f"work/export/{name}", PARTS)
    return manifest


def contrast_summary(contrast, stats: Stats) -> dict[str, Any]:
    """Contrast groups by how many of their members reached data/: all (complete), some (partial), none."""
    accepted = [stats.group_accepted[g] for g in stats.group_planned]
    complete = sum(a == stats.group_planned[g] for g, a in zip(stats.group_planned, accepted, strict=True))
    empty = sum(a == 0 for a in accepted)
    return {
        "by": contrast.by, "size": contrast.size, "groups": len(accepted), "complete": complete,
        "partial": len(accepted) - complete - empty, "empty": empty,
    }  # fmt: skip


def by_source(stats: Stats) -> dict[str, dict[str, Any]]:
    """source -> planned / accepted per label, filter checks, exchanges per verdict and per reason kind."""
    found: dict[str, dict[str, Any]] = {}
    for part, counter in (("exchanges", stats.exchanges_sources), ("reasons", stats.reasons_sources)):
        for key, n in sorted(counter.items()):
            source, name = key.split("/", 1)
            found.setdefault(source, {"planned": {}, "accepted": {}, "checks": {}}).setdefault(part, {})[name] = n
    for part, counters in (("planned", stats.planned_sources), ("accepted", stats.accepted_sources),
                           ("checks", stats.checks_sources), ("script_checks", stats.script_checks_sources)):  # fmt: skip
        for key, counts in counters.items():
            source, label = key.split("/", 1)
            found.setdefault(source, {"planned": {}, "accepted": {}, "checks": {}}).setdefault(part, {})[label] = dict(sorted(counts.items()))
    return dict(sorted(found.items()))


def export_corpus(ctx: BuildView, timings: dict[str, float] | None = None) -> Manifest:
    """The whole export in this process (the build flow runs export_chunk as tasks instead)."""
    plan = plan_export(ctx)
    for chunk in ctx.chunk_ranges():
        export_chunk(ctx, chunk, plan.for_chunk(ctx, chunk))
    return finish_export(ctx, plan, timings)


def _outcome_row(outcome: Outcome, k: int, split: str, build: dict, feats, rate: int) -> dict:
    written = outcome.script or outcome.draft  # a stalled draft holds its first exchanges only
    if written is not None and k < len(written.reasoning):
        row = exchange_row(written, k, split, None, None, build)
    else:
        row = _unwritten_row(outcome.spec, k, split, feats)
    row = {name: row.get(name) for name in feats}
    return row | {"verdict": outcome.verdict, "stage": outcome.stage, "reasons": texts(outcome.reasons)}


def _unwritten_row(spec: DialogueSpec, k: int, split: str, feats) -> dict:
    """The row of a planned exchange that has no text: its labels, nothing else."""
    row = {name: None for name in feats}
    return row | {
        "dialogue_id": spec.dialogue_id, "exchange_index": k, "split": split, "source": spec.source,
        "group_id": spec.contrast.group_id if spec.contrast is not None else None,
        "language": spec.language, "scenario": spec.scenario, "history": [], "user_emotion": spec.turns[2 * k].emotion,
        "user_speaker_id": spec.user.id, "user_gender": spec.user.gender, "user_age_group": spec.user.age_group,
        "assistant_style": spec.turns[2 * k + 1].response_style, "assistant_speaker_id": spec.assistant_voice.id,
    }  # fmt: skip
