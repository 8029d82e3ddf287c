"""empathy-recipe: export a built corpus to a recipe's format, or train on it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from empathy_recipe.errors import RecipeError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False)


@app.command("export")
def export_cmd(
    corpus: Annotated[str, typer.Argument(help="corpus directory (with manifest.json and data/) or a datasets name")],
    format: Annotated[str, typer.Option("--format", help="opens2s | osum-echat | blsp-emo | preference")],
    to: Annotated[Path, typer.Option("--to", help="output directory (replaced atomically)")],
    tokenizer: Annotated[Path | None, typer.Option(help="speech tokenizer: GLM-4-Voice dir (opens2s) or speech_tokenizer_v1.onnx (osum-echat)")] = None,
    tokenizer_repo: Annotated[Path | None, typer.Option(help="GLM-4-Voice checkout to import its speech_tokenizer code from")] = None,
    no_units: Annotated[bool, typer.Option("--no-units", help="text-only targets, no speech units")] = False,
    reasoning: Annotated[bool, typer.Option("--reasoning", help="opens2s: add the reasoning note as reasoning_content")] = False,
    tasks: Annotated[str, typer.Option(help="osum-echat: comma list of chat,transcribe,emotion,gender,age")] = "chat",
    max_length: Annotated[int, typer.Option(help="blsp-emo: --max_length of its offline processing")] = 256,
    fill_last_batch: Annotated[int, typer.Option(min=0, help="osum-echat: after each chat task's lines, append repeats of them worth this many sequence tokens (its dynamic_batch drops a chat task's last partial batch; 3700 = ct_config's max_seq_in_batch); 0: off")] = 0,
    text_tokenizer: Annotated[Path | None, typer.Option(help="recipe LLM tokenizer dir for exact length filters")] = None,
    split: Annotated[list[str] | None, typer.Option(help="splits to export (default: all)")] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="speech-unit cache directory (default: inside --to)")] = None,
    device: Annotated[str, typer.Option(help="cpu | cuda, for the speech tokenizer")] = "cpu",
    pairs_from: Annotated[str, typer.Option(help="preference: comma list of regeneration,contrast")] = "regeneration,contrast",
    pair_reasons: Annotated[str, typer.Option(help="preference: reason prefixes that make a replaced version a rejected reply")] = "assistant.,script: ",
    min_score_gap: Annotated[float, typer.Option(help="preference: chosen minus rejected mean judge score (0: off)")] = 0.0,
    same_words_only: Annotated[bool, typer.Option("--same-words-only", help="preference: regeneration pairs only where the user said the same words")] = False,
) -> None:
    """Export CORPUS to a recipe's training format (or preference pairs); writes DIR/export.json."""
    from empathy_recipe.corpus import Corpus
    from empathy_recipe.exporters import FORMATS, Options
    from empathy_recipe.exporters.osum_echat import TASKS
    from empathy_recipe.exporters.run import export
    from empathy_recipe.textlen import TextCounter
    from empathy_recipe.units.load import load_tokenizer

    if format == "preference":
        from empathy_recipe.preference import PairRules, export_preference

        rules = PairRules(
            sources=tuple(x.strip() for x in pairs_from.split(",") if x.strip()),
            reasons=tuple(x for x in pair_reasons.split(",") if x.strip()),
            min_score_gap=min_score_gap, same_words_only=same_words_only,
        )  # fmt: skip
        result = export_preference(Corpus.open(corpus, split), to, rules)
        by_source = ", ".join(f"{k}={v}" for k, v in result["pairs_by_source"].items()) or "none"
        typer.echo(f"preference: {result['pairs']} pairs ({by_source}) written to {to}")
        return
    if format not in FORMATS:
        raise RecipeError(f"unknown --format {format!r} (one of: {', '.join(FORMATS)}, preference)")
    chosen = tuple(t.strip() for t in tasks.split(",") if t.strip())
    bad = [t for t in chosen if t not in TASKS]
    if bad or not chosen:
        raise RecipeError(f"unknown --tasks {bad[0] if bad else tasks!r} (from: {', '.join(TASKS)})")
    opened = Corpus.open(corpus, split)
    speech = None
    kind = FORMATS[format].unit_kind
    if tokenizer is not None and kind is not None and not no_units:
        speech = load_tokenizer(kind, tokenizer, tokenizer_repo, device)
    options = Options(no_units=no_units, reasoning=reasoning, tasks=chosen, max_length=max_length, fill_last_batch=fill_last_batch)
    result = export(opened, format, to, options, speech, cache_dir, TextCounter(text_tokenizer))
    skipped = ", ".join(f"{k}={v}" for k, v in result["skipped_by_reason"].items()) or "none"
    typer.echo(f"{format}: {result['rows_written']}/{result['corpus_rows']} rows written to {to} (skipped: {skipped})")


@app.command("train")
def train_cmd(
    corpus: Annotated[str, typer.Argument(help="corpus directory or datasets name")],
    model: Annotated[str, typer.Option(help="'tiny' or a model spec YAML (see docs/recipes.md)")] = "tiny",
    out: Annotated[Path, typer.Option(help="output directory: metrics.jsonl, checkpoint")] = Path("recipe-train"),
    tokenizer: Annotated[Path | None, typer.Option(help="text tokenizer dir (required unless --model tiny)")] = None,
    steps: Annotated[int, typer.Option(help="optimizer steps")] = 40,
    batch_size: Annotated[int, typer.Option()] = 4,
    lr: Annotated[float, typer.Option()] = 3e-3,
    seed: Annotated[int, typer.Option()] = 0,
    split: Annotated[str, typer.Option()] = "train",
    device: Annotated[str, typer.Option(help="cpu | cuda")] = "cpu",
    threads: Annotated[int, typer.Option(help="torch CPU threads")] = 1,
) -> None:
    """Train a speech LLM (Whisper encoder + projector + causal LM) on CORPUS; prints first/last loss."""
    from empathy_recipe.train import TrainConfig, train

    cfg = TrainConfig(corpus=corpus, model=model, out=out, tokenizer=tokenizer, steps=steps, batch_size=batch_size,
                      lr=lr, seed=seed, split=split, device=device, threads=threads)  # fmt: skip
    result = train(cfg)
    typer.echo(json.dumps({k: result[k] for k in ("steps", "first_loss", "last_loss")}))


def main() -> None:
    try:
        app()
    except RecipeError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
