"""The `empathy-data` command line."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from empathy_data.core.errors import BackendUnavailable, ConfigError, EmpathyDataError
from empathy_data.records.manifest import Manifest
from empathy_data.store.output_guard import check_output_dir

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Manufacture empathetic speech-dialogue corpora.")
console = Console(stderr=True)


def _fail(exc: Exception) -> None:
    code = 2 if isinstance(exc, ConfigError) else 1
    console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _overrides(out: str | None, num_dialogues: int | None) -> dict:
    return {k: v for k, v in {"output": out, "num_dialogues": num_dialogues}.items() if v is not None}


@app.command()
def validate(
    config: Annotated[Path, typer.Argument(help="Build config YAML")],
    check_servers: Annotated[
        bool, typer.Option("--check-servers/--no-check-servers", help="Ask a configured LLM server whether it answers")
    ] = True,
) -> None:
    """Check a config, its prompts, speaker pool, backend libraries and model paths without loading any model."""
    from empathy_data.runtime.build import BuildContext
    from empathy_data.runtime.preflight import preflight

    try:
        ctx = BuildContext.load(config)
        preflight(ctx.config, check_servers=check_servers)
    except EmpathyDataError as exc:
        _fail(exc)
    planned = sum(ctx.planner.spec(i).num_exchanges for i in range(min(ctx.config.num_dialogues, 1000)))
    console.print(
        f"ok: {config} — {ctx.config.num_dialogues} dialogues in {ctx.planner.num_chunks} chunk(s), "
        f"{len(ctx.planner.pool.speakers)} speakers, plan key {ctx.planner.key}"
        + (f", {planned} exchanges planned" if ctx.config.num_dialogues <= 1000 else "")
    )


@app.command()
def plan(
    config: Annotated[Path, typer.Argument(help="Build config YAML")],
    show: Annotated[int, typer.Option(help="How many specs to print as JSON lines")] = 5,
    start: Annotated[int, typer.Option(help="First spec index")] = 0,
) -> None:
    """Print planned dialogue specs (spec i depends only on the seed and i)."""
    from empathy_data.runtime.build import BuildContext

    try:
        ctx = BuildContext.load(config)
    except EmpathyDataError as exc:
        _fail(exc)
    for i in range(start, start + show):
        sys.stdout.write(json.dumps(ctx.planner.spec(i).to_dict(), ensure_ascii=False) + "\n")


@app.command()
def build(
    config: Annotated[Path, typer.Argument(help="Build config YAML")],
    out: Annotated[str | None, typer.Option("--out", help="Output directory (overrides config)")] = None,
    num_dialogues: Annotated[
        int | None, typer.Option("--num-dialogues", min=1, help="Override corpus size")
    ] = None,
    allow_shrink: Annotated[
        bool, typer.Option("--allow-shrink", help="Let a smaller --num-dialogues replace a larger exported corpus")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show Prefect's own logs")] = False,
) -> None:
    """Build a corpus: plan, script, synthesize, filter, export. Re-running resumes."""
    from empathy_data.runtime.build import build_inputs, context
    from empathy_data.runtime.interrupts import stop_cleanly_on_signals
    from empathy_data.runtime.preflight import check_before_build
    from empathy_data.store.output_lock import OutputLock

    stop_cleanly_on_signals()
    overrides = _overrides(out, num_dialogues)
    lock = None
    try:
        # Validate everything before Prefect or any model starts and before the output directory is
        # created: config, prompts, pool, backend libraries, model paths, a configured LLM server.
        inputs = build_inputs(config, overrides)  # the config is read here, once; the flow gets it as it is
        ctx = context(inputs)
        check_before_build(ctx, allow_shrink)
        lock = OutputLock(ctx.store)
        lock.acquire()
    except EmpathyDataError as exc:
        _fail(exc)
    if not verbose:
        # Our own log lines report every chunk, and a failure ends in one line naming its cause;
        # Prefect would add a traceback per failed try.
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")
    from rich.logging import RichHandler

    ours = logging.getLogger("empathy_data")
    ours.setLevel(logging.INFO)
    ours.addHandler(RichHandler(console=console, show_path=False, show_time=True))
    ours.propagate = False
    from empathy_data.flows.build import run_build

    t0 = time.perf_counter()
    try:
        manifest = run_build(str(config), overrides, inputs)
    except EmpathyDataError as exc:
        _fail(exc)
    except Exception as exc:  # outside the chunk tasks (export, Prefect itself): still one line
        _fail(RuntimeError(f"{type(exc).__name__}: {exc}; re-run the same command to resume"))
    finally:
        if lock is not None:
            lock.release()
    _summary(manifest, time.perf_counter() - t0)


@app.command()
def verify(
    out: Annotated[str, typer.Argument(help="Output directory or URL (s3://...) of a build")],
    no_audio: Annotated[bool, typer.Option("--no-audio", help="Skip decoding every audio value")] = False,
    storage_options: Annotated[
        str | None, typer.Option("--storage-options", help='fsspec options for a URL, as JSON: \'{"anon": false}\'')
    ] = None,
) -> None:
    """Re-check checksums, row counts, audio, duplicates and splits; exit 1 naming the first problem."""
    from empathy_data.tools.verify import VerifyError, verify_corpus

    try:
        options = json.loads(storage_options) if storage_options else None
        if options is not None and not isinstance(options, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        _fail(ConfigError(f"--storage-options {storage_options}", f"not a JSON object ({exc})"))
    try:
        found = verify_corpus(out, decode_audio=not no_audio, storage_options=options)
    except EmpathyDataError as exc:
        _fail(exc)
    except VerifyError as exc:
        console.print(f"[red]verify failed:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    console.print(f"ok: {out} — {found['rows']} rows in {found['dialogues']} dialogues, {found['rejects']} rejects")


@app.command()
def report(out: Annotated[Path, typer.Argument(help="Output directory of a build")]) -> None:
    """Write OUT/report/index.html (distributions, quality, rejects, speakers, playable samples); print its path."""
    from empathy_data.tools.report import write_report

    try:
        path = write_report(out)
    except EmpathyDataError as exc:
        _fail(exc)
    sys.stdout.write(f"{path}\n")


@app.command("inspect")
def inspect_command(
    out: Annotated[Path, typer.Argument(help="Output directory of a build")],
    emotion: Annotated[str | None, typer.Option("--emotion", help="Only exchanges with this user emotion")] = None,
    split: Annotated[str | None, typer.Option("--split", help="Only exchanges of this split")] = None,
    n: Annotated[int, typer.Option("--n", min=1, help="How many exchanges to show")] = 5,
    play: Annotated[bool, typer.Option("--play", help="Play each exchange's audio (user, then assistant)")] = False,
    rejects: Annotated[bool, typer.Option("--rejects", help="Show rejects/ with verdict and reasons")] = False,
) -> None:
    """Print sample exchanges of a build: text, labels, scores (and reasons, for rejects)."""
    from empathy_data.tools.inspect_corpus import exchange_table, play_exchange, select_exchanges

    try:
        found = select_exchanges(out, emotion, split, n, rejects)
    except EmpathyDataError as exc:
        _fail(exc)
    if not found:
        console.print(f"no exchanges{' in rejects/' if rejects else ''} match", highlight=False)
        return
    shown = Console()
    for location, row in found:
        shown.print(exchange_table(row))
        if play:
            shown.print(escape(play_exchange(location)), highlight=False, soft_wrap=True)


@app.command()
def ingest(
    source: Annotated[Path, typer.Argument(help="A CSV/JSONL manifest, or the corpus's folder (see --layout)")],
    to: Annotated[Path, typer.Option("--to", help="Ingested-corpus directory to write (must not exist)")],
    name: Annotated[str, typer.Option(help="The corpus's name in rows and the card (e.g. iemocap)")],
    layout: Annotated[str, typer.Option(help="manifest | folders | ravdess | crema-d")] = "manifest",
    labels: Annotated[str, typer.Option(help="Label map: generic, iemocap, meld, esd, crema-d, ravdess, casia, zh")] = "generic",
    language: Annotated[str | None, typer.Option(help="Language of rows that name none (en, zh)")] = None,
    gender: Annotated[str | None, typer.Option(help="Gender of rows that name none")] = None,
    age_group: Annotated[str | None, typer.Option(help="Age group of rows that name none (child ... elderly)")] = None,
    skip_label: Annotated[list[str] | None, typer.Option(help="A corpus label to drop on purpose (repeatable)")] = None,
    columns: Annotated[str, typer.Option(help="Manifest column names: text=Utterance,emotion=Emotion")] = "",
    licence: Annotated[str, typer.Option(help="The corpus's licence, recorded in the card")] = "unknown",
    source_url: Annotated[str, typer.Option("--source", help="Where the corpus comes from, recorded in the card")] = "",
) -> None:
    """Read an existing emotional-speech corpus for a build's `ingest:` block; exit 2 listing each problem."""
    from empathy_data.core.corpus_labels import LABEL_MAPS
    from empathy_data.tools.ingest import LAYOUTS, IngestOptions, read_corpus, write_corpus

    if layout not in LAYOUTS:
        _fail(ConfigError("--layout", f"{layout!r} is not one of {list(LAYOUTS)}"))
    if labels not in LABEL_MAPS:
        _fail(ConfigError("--labels", f"{labels!r} is not one of {list(LABEL_MAPS)}"))
    if not (source.is_file() if layout == "manifest" else source.is_dir()):
        _fail(ConfigError(str(source), f"not found (layout {layout} reads a {'file' if layout == 'manifest' else 'folder'})"))
    if to.exists():
        _fail(ConfigError(f"--to {to}", "already exists; ingest writes a new directory"))
    try:
        renames = dict(pair.split("=", 1) for pair in columns.split(",") if pair)
    except ValueError:
        _fail(ConfigError("--columns", f"{columns!r} is not field=column[,field=column]"))
    options = IngestOptions(
        name=name, layout=layout, labels=labels, language=language, gender=gender, age_group=age_group,
        source=source_url, licence=licence, skip_labels=frozenset(s.lower() for s in skip_label or ()),
        columns={k.strip(): v.strip() for k, v in renames.items()},
    )  # fmt: skip
    result = read_corpus(source, options)
    if result.problems:
        for problem in result.problems:
            console.print(f"[red]problem:[/red] {escape(problem)}", highlight=False, soft_wrap=True)
        console.print(f"{len(result.problems)} problem(s); nothing written")
        raise typer.Exit(2)
    write_corpus(result, to, source, options)
    skipped = ", ".join(f"{k} {v}" for k, v in sorted(result.skipped.items()))
    console.print(f"ok: {to} — {len(result.queries)} queries" + (f" (skipped: {skipped})" if skipped else ""))


@app.command("eval-set")
def eval_set(
    out: Annotated[Path, typer.Argument(help="Output directory of a build")],
    to: Annotated[Path, typer.Option("--to", help="Directory to write (replaced atomically)")],
    split: Annotated[str, typer.Option("--split", help="The held-out split to draw from")] = "test",
    per_emotion: Annotated[int | None, typer.Option("--per-emotion", min=1, help="Items per user emotion (default: the rarest's count)")] = None,
) -> None:
    """A speaker-disjoint, emotion-balanced evaluation set in URO-Bench's layout (test.jsonl + audio/) and EChat-eval's fields (echat.jsonl)."""
    from empathy_data.tools.eval_set import write_eval_set

    try:
        summary = write_eval_set(out, to, split, per_emotion)
    except EmpathyDataError as exc:
        _fail(exc)
    console.print(f"{summary['items']} items ({summary['per_emotion']} per emotion, {summary['speakers']} speakers) -> {to}")


@app.command()
def score(
    eval_set_dir: Annotated[Path, typer.Argument(help="An evaluation set (empathy-data eval-set)")],
    responses: Annotated[Path, typer.Argument(help="JSONL: key, and the reply's text, audio (path) or both")],
    config: Annotated[Path | None, typer.Option("--config", help="Build config whose filter block gives ASR, emotion check and MOS (default: the embedded ones)")] = None,
    judge_url: Annotated[str | None, typer.Option("--judge-url", help="OpenAI-compatible server of the UnderEmotion judge (none: not judged)")] = None,
    judge_model: Annotated[str, typer.Option("--judge-model", help="The judge's model name on that server")] = "default",
    judge_key_env: Annotated[str | None, typer.Option("--judge-key-env", help="Environment variable holding the judge server's API key")] = None,
    judge_structured_output: Annotated[str, typer.Option("--judge-structured-output", help="json_schema (vLLM, OpenAI) or json_object_schema (llama.cpp servers)")] = "json_schema",
    judge_retries: Annotated[int, typer.Option("--judge-retries", min=0, help="Retries of a judge request the server failed (5xx, 429, timeouts), with backoff")] = 4,
    to: Annotated[Path | None, typer.Option("--to", help="Where score.json and score.html go (default: beside RESPONSES, in score/)")] = None,
    prompts_dir: Annotated[Path | None, typer.Option("--prompts-dir", help="A prompts folder whose score/ holds the judge templates (default: the built-in one)")] = None,
) -> None:
    """Score a model's replies to an evaluation set: UnderEmotion (LLM judge, 1-5), GenEmotion, error rate, MOS."""
    from rich.table import Table

    from empathy_data.config.model import FilterConfig, OpenAIScript, load_config
    from empathy_data.tools.score import METRICS, read_eval_items, read_replies, score_replies, summarise, write_results

    try:
        filter_config = load_config(config)[0].filter if config is not None else FilterConfig()
        judge = None
        if judge_url is not None:
            if judge_structured_output not in ("json_schema", "json_object_schema"):
                raise ConfigError("--judge-structured-output", f"{judge_structured_output!r} is not json_schema or json_object_schema")
            judge = OpenAIScript(base_url=judge_url, model=judge_model, api_key_env=judge_key_env,
                                 structured_output=judge_structured_output, temperature=0.0, max_tokens=200,
                                 request_retries=judge_retries)  # fmt: skip
        items = read_eval_items(eval_set_dir)
        replies = read_replies(responses, {item["key"] for item in items})
        scores = score_replies(items, replies, filter_config, judge, prompts_dir)
    except EmpathyDataError as exc:
        _fail(exc)
    summary = summarise(scores)
    target = to if to is not None else responses.parent / "score"
    write_results(scores, summary, target)
    table = Table("user emotion", "items", *METRICS, "errors")
    for name, found in [("all", summary["overall"]), *summary["by_emotion"].items()]:
        table.add_row(name, str(found["items"]), *("-" if found[m] is None else str(found[m]) for m in METRICS), str(found["errors"]))
    console.print(table)
    console.print(f"{len(scores)} replies scored -> {target / 'score.json'}, {target / 'score.html'}")


@app.command()
def calibrate(
    config: Annotated[Path, typer.Argument(help="Build config: its TTS, voices and emotion check are measured")],
    to: Annotated[Path | None, typer.Option("--to", help="Also write the calibration as JSON here")] = None,
    judge: Annotated[bool, typer.Option("--judge", help="Also measure the script judge, in both modes, against the labelled cases (prompts/judge_cases.yaml)")] = False,
) -> None:
    """Measure the emotion check on probe clips the config's TTS renders: which emotions it can gate. With
    --judge, the script judge's agreement with hand-labelled scripts too."""
    import json

    from rich.table import Table

    from empathy_data.runtime.build import BuildContext
    from empathy_data.runtime.calibration import summary
    from empathy_data.runtime.judge_calibration import gate_from

    try:
        ctx = BuildContext.load(config)
        found = summary(ctx, in_store=False)
        judged = _judge_agreement(ctx) if judge else []
    except (EmpathyDataError, RuntimeError) as exc:
        _fail(exc)
    if judged:
        view = Table("judge mode", "agrees with the labels", "bad caught", "good passed", "requests failed",
                     title=f"script judge on {judged[0]['cases']} hand-labelled scripts")  # fmt: skip
        for a in judged:
            view.add_row(a["mode"], f"{a['agree']}/{a['cases']} ({a['agreement']:.0%})", f"{a['bad_caught']}/{a['bad']}",
                         f"{a['good_passed']}/{a['good']}", str(a["failed"]))  # fmt: skip
        console.print(view)
        judge = ctx.config.script.judge
        gate = gate_from(judge.model_copy(update={"min_agreement": judge.min_agreement or 0.0}), judged)
        if judge.min_agreement is None:
            verdict = "gates as set, unmeasured (min_agreement null)"
        else:
            verdict = "gates" if gate.gates else f"records only (below min_agreement {judge.min_agreement})"
        console.print(f"the judge agrees best with the labels in mode {gate.mode!r}; in a build with this config it {verdict}")
        found = {**(found or {}), "judge": judged}
    if not found or "matrix" not in found:
        console.print("this config does not calibrate its emotion check (check_emotion off, or both floors null)")
        if to is not None and found:
            to.write_text(json.dumps(found, indent=1) + "\n")
        return
    emotions = found["emotions"]
    table = Table("rendered \\ checked", *emotions, "recall", "precision", "gates",
                  title=f"emotion check pass rates, {found['clips_per_emotion']} probe clips per emotion")  # fmt: skip
    for e in emotions:
        cells = [f"{found['matrix'][e][c]:.2f}" for c in emotions]
        table.add_row(e, *cells, f"{found['recall'][e]:.2f}", f"{found['precision'][e]:.2f}",
                      "yes" if e in found["gated"] else "recorded")  # fmt: skip
    console.print(table)
    console.print(f"gates (recall >= {found['min_recall']}, precision >= {found['min_precision']}): "
                  f"{', '.join(found['gated']) or 'none'}")  # fmt: skip
    if to is not None:
        to.write_text(json.dumps(found, indent=1) + "\n")


def _judge_agreement(ctx) -> list[dict]:
    """Each judge mode's agreement with the labelled cases, on the config's judge (its server, or the embedded
    one started here): from the user's cache when a build or an earlier run measured this judge."""
    from dataclasses import replace

    from empathy_data.backends import registry as backends
    from empathy_data.flows.build import llm_endpoint
    from empathy_data.runtime.judge_calibration import MODES, NotCalibrated, ensure_judge_calibration

    judge = ctx.config.script.judge  # measured as a build with this config would (its modes), even if unmeasured there
    measured = ctx.config.model_copy(update={"script": ctx.config.script.model_copy(update={"judge": judge.model_copy(
        update={"enabled": True, "min_agreement": judge.min_agreement or 0.0})})})  # fmt: skip
    ctx = replace(ctx, config=measured)
    try:
        found = ensure_judge_calibration(ctx, None, in_store=False)  # a build or an earlier run measured it
    except NotCalibrated:
        with llm_endpoint(ctx) as base_url:
            found = ensure_judge_calibration(ctx, backends.judge_chat_at(ctx.config.script, base_url), in_store=False)
    return sorted(found, key=lambda a: MODES.index(a["mode"]))


@app.command()
def clean(
    config: Annotated[Path, typer.Argument(help="Build config YAML")],
    out: Annotated[str | None, typer.Option("--out", help="Output directory (overrides config)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be removed")] = False,
) -> None:
    """Remove chunk outputs that the config no longer uses (left behind when stage settings changed)."""
    from empathy_data.runtime.build import BuildContext
    from empathy_data.store.output_lock import OutputLock

    try:
        ctx = BuildContext.load(config, _overrides(out, None))
        check_output_dir(ctx.store, ctx.planner.key)
        if not dry_run and ctx.store.list():  # never delete under a running build
            OutputLock(ctx.store).acquire()
    except EmpathyDataError as exc:
        _fail(exc)
    stale = ctx.layout.stale_work()
    for key in stale:
        console.print(f"{'would remove' if dry_run else 'removing'} {ctx.store.where(key)}", highlight=False)
        if not dry_run:
            ctx.store.remove_output(key)
    console.print(f"{len(stale)} stale chunk output(s){' (dry run)' if dry_run else ' removed'}")


@app.command("dask-gpu-workers")
def dask_gpu_workers(
    scheduler: Annotated[str, typer.Argument(help="Dask scheduler address, e.g. tcp://head:8786")],
    nthreads: Annotated[int, typer.Option("--nthreads", min=1, help="Threads per worker")] = 1,
) -> None:
    """Start one Dask worker per GPU of this machine, each seeing only its own device (resource GPU=1)."""
    from empathy_data.runtime.gpu_workers import run_gpu_workers

    try:
        code = run_gpu_workers(scheduler, nthreads)
    except EmpathyDataError as exc:
        _fail(exc)
    raise typer.Exit(code)


speakers_app = typer.Typer(no_args_is_help=True, help="Build and inspect speaker pools.")
app.add_typer(speakers_app, name="speakers")


@speakers_app.command("import")
def speakers_import(
    directory: Annotated[Path, typer.Argument(help="DIR/<speaker>/<emotion>/<clip>.wav with <clip>.txt transcripts")],
    meta: Annotated[Path, typer.Option("--meta", help="CSV with speaker,gender,age_group[,language]")],
    out: Annotated[Path | None, typer.Option("--out", help="Pool YAML to write (default DIR/pool.yaml)")] = None,
    licence: Annotated[str, typer.Option(help="Licence of the clips, recorded in the pool")] = "unknown",
) -> None:
    """Validate every clip and write a speaker pool YAML; exit 2 listing each problem with its path."""
    from empathy_data.tools.speaker_import import import_speakers, write_pool

    if not directory.is_dir() or not meta.is_file():
        _fail(ConfigError(str(directory if not directory.is_dir() else meta), "not found"))
    pool_path = out or directory / "pool.yaml"
    if not pool_path.resolve().parent.is_relative_to(directory.resolve()):
        _fail(ConfigError(f"--out {pool_path}", f"the pool must live inside {directory} (clip paths stay inside it)"))
    result = import_speakers(directory, meta, pool_path)
    if result.problems:
        for problem in result.problems:
            console.print(f"[red]problem:[/red] {escape(problem)}", highlight=False, soft_wrap=True)
        console.print(f"{len(result.problems)} problem(s); no pool written")
        raise typer.Exit(2)
    write_pool(result, pool_path, licence)
    clips = sum(len(c) for s in result.speakers for c in s["clips"].values())
    console.print(f"ok: {pool_path} — {len(result.speakers)} speakers, {clips} clips")


@speakers_app.command("list")
def speakers_list(pool: Annotated[Path, typer.Argument(help="Speaker pool YAML (or 'builtin', 'builtin:kokoro')")]) -> None:
    """Counts per gender x age group x emotion (speakers with at least one clip in that emotion)."""
    from empathy_data.core.resources import speaker_pool_path
    from empathy_data.planning.speakers import load_pool
    from empathy_data.tools.speaker_import import pool_counts

    try:
        loaded = load_pool(speaker_pool_path(str(pool), Path.cwd()))
    except EmpathyDataError as exc:
        _fail(exc)
    emotions, table = pool_counts(loaded.speakers)
    view = Table(title=f"{loaded.path.name}: {len(loaded.speakers)} speakers")
    for col in ["gender", "age group", "speakers", *emotions]:
        view.add_column(col, justify="left" if col in ("gender", "age group") else "right")
    for (gender, age), cell in sorted(table.items()):
        view.add_row(gender, age, str(cell["speakers"]), *(str(cell[e]) for e in emotions))
    Console().print(view)


def _summary(manifest: Manifest, seconds: float) -> None:
    table = Table(title=f"{manifest.name}: built in {seconds:.1f}s")
    for col in ("unit", "planned", "accepted", "rejected", "failed"):
        table.add_column(col, justify="left" if col == "unit" else "right")
    for unit, c in (("dialogues", manifest.counts.dialogues), ("exchanges", manifest.counts.exchanges)):
        table.add_row(unit, *(str(n) for n in (c.planned, c.accepted, c.rejected, c.failed)))
    Console().print(table)
    regen = manifest.counts.regeneration
    if regen.rounds:
        by_round = ", ".join(f"round {k} {n}" for k, n in regen.accepted_by_round.items())
        Console().print(
            f"regenerated {regen.dialogues_regenerated} dialogue(s); accepted exchanges by {by_round or 'none'}; "
            f"{regen.exchanges_replaced} replaced exchange(s) in rejects/"
        )
    reasons = manifest.counts.by_reason
    if reasons:
        Console().print("rejection reasons: " + ", ".join(f"{k} {v}" for k, v in reasons.items()))
    Console().print("timings (s): " + ", ".join(f"{k} {v}" for k, v in manifest.timings_s.items()))


def main() -> None:
    try:
        app()
    except (ConfigError, BackendUnavailable) as exc:
        _fail(exc)


if __name__ == "__main__":
    main()
