"""On-demand: empathy-recipe's training DataLoader and exporters against a bare pyarrow read of the same rows.

    python benchmarks/recipe_loader.py [CORPUS] [--split train] [--repeat 3] [--write recipe/BENCHMARK_RESULTS.md]

Measured side by side in one run, on one CPU thread: rows/s of (a) a bare pyarrow read of the row groups
(the floor: no decoding), (b) the DataLoader (FLAC decode, 80-bin Whisper features, chat template, collation),
(c) each exporter with --no-units (decode, 16 kHz WAV writing, lines). Ratios are against (a).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import torch
from empathy_recipe.corpus import Corpus
from empathy_recipe.data import AudioFeatures, ChatEncoder, Collator, ExchangeDataset
from empathy_recipe.data.sample import COLUMNS, SampleBuilder
from empathy_recipe.exporters import FORMATS, Options
from empathy_recipe.exporters.run import export
from empathy_recipe.tiny import build_tokenizer
from empathy_recipe.train import corpus_texts


def best(fn, repeat: int) -> tuple[float, int]:
    times, n = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        n = fn()
        times.append(time.perf_counter() - start)
    return min(times), n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus", nargs="?", default="/work/smoke/out")
    ap.add_argument("--split", default=None, help="default: all splits")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--write", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    corpus = Corpus.open(args.corpus, [args.split] if args.split else None)
    groups = corpus.row_groups()

    def bare() -> int:
        return sum(pq.ParquetFile(g.shard.path).read_row_group(g.index, columns=COLUMNS).num_rows for g in groups)

    tok = build_tokenizer(corpus_texts(corpus))
    builder = SampleBuilder(AudioFeatures(80, 30, 4), ChatEncoder(tok))
    dataset = ExchangeDataset(corpus, builder, columns=COLUMNS)
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, collate_fn=Collator(tok.pad_token_id))

    def load() -> int:
        return sum(int(b["input_ids"].shape[0]) for b in loader)

    results = [("pyarrow read (floor)", *best(bare, args.repeat))]
    results.append(("DataLoader (decode + features + template + collate)", *best(load, args.repeat)))
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in FORMATS:
            def run(fmt=fmt) -> int:
                return export(corpus, fmt, Path(tmp) / fmt, Options(no_units=True))["corpus_rows"]

            results.append((f"export {fmt} --no-units", *best(run, args.repeat)))
    floor = results[0][2] / results[0][1]
    lines = [
        f"Corpus `{args.corpus}` ({corpus.num_rows} rows, {len(groups)} row groups), best of {args.repeat}, "
        "1 CPU thread, rows/s:",
        "",
        "| path | rows | seconds | rows/s | vs pyarrow read |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, seconds, n in results:
        rate = n / seconds
        lines.append(f"| {name} | {n} | {seconds:.3f} | {rate:,.0f} | {rate / floor:.4f}x |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        args.write.write_text("# empathy-recipe loader and exporter speed\n\n`python benchmarks/recipe_loader.py "
                              + " ".join(sys.argv[1:]).replace(str(args.write), "recipe/BENCHMARK_RESULTS.md")
                              + "`\n\n" + text)


if __name__ == "__main__":
    main()
