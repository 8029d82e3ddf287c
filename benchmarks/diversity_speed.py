"""Time and memory of near-duplicate checks and diversity stats over a synthetic corpus.

Run on demand, not in CI:  python benchmarks/diversity_speed.py [--dialogues 20000] [--words 60] [--language en]

Dialogues are drawn from a Zipf-like vocabulary (en: 5,000 words; zh: 3,000 characters, 2 per "word"),
6 turns each; 2% are copies of an earlier dialogue with one or two words replaced. Each measurement runs
twice: once for wall time, once under tracemalloc for the peak of traced allocations above the start
(tracemalloc slows Python down, so its time is not reported).
"""

from __future__ import annotations

import argparse
import random
import resource
import time
import tracemalloc

from empathy_data.stages.export.diversity import DiversityStats, NearDuplicates


def corpus(n: int, words: int, language: str, seed: int = 0) -> list[list[str]]:
    rng = random.Random(seed)
    if language == "zh":
        vocab = [chr(0x4E00 + i) for i in range(3000)]
        per_word, sep = 2, ""
    else:
        vocab = [f"{chr(97 + i % 26)}{chr(97 + i // 26 % 26)}{i}" for i in range(5000)]
        per_word, sep = 1, " "
    weights = [1 / (rank + 1) for rank in range(len(vocab))]
    dialogues: list[list[str]] = []
    for _ in range(n):
        if dialogues and rng.random() < 0.02:
            tokens = list(rng.choice(dialogues))
            for _ in range(rng.randint(1, 2) * per_word):
                tokens[rng.randrange(len(tokens))] = rng.choice(vocab)
        else:
            tokens = rng.choices(vocab, weights, k=words * per_word)
        dialogues.append(tokens)
    step = len(dialogues[0]) // 6
    return [[sep.join(d[i : i + step]) for i in range(0, len(d), step)] for d in dialogues]


def clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def since(start: tuple[float, float]) -> str:
    wall, cpu = (now - then for now, then in zip(clock(), start, strict=True))
    return f"{wall:.2f} s wall, {cpu:.2f} s CPU"


def run(dialogues: list[list[str]], language: str) -> tuple[NearDuplicates, str, str]:
    start = clock()
    dupes = NearDuplicates()
    for i, turns in enumerate(dialogues):
        dupes.check(f"dialogue-{i:07d}", "\n".join(turns))
    check_time, start = since(start), clock()
    stats = DiversityStats()
    for turns in dialogues:
        for k, turn in enumerate(turns):
            stats.add(turn, language, opening=k == 0)
    stats.summary(dupes)
    return dupes, check_time, since(start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dialogues", type=int, default=20000)
    parser.add_argument("--words", type=int, default=60)
    parser.add_argument("--language", choices=["en", "zh"], default="en")
    args = parser.parse_args()
    dialogues = corpus(args.dialogues, args.words, args.language)
    dupes, check_time, stats_time = run(dialogues, args.language)
    kept = dupes.checked - dupes.found
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    traced_dupes = NearDuplicates()
    for i, turns in enumerate(dialogues):
        traced_dupes.check(f"dialogue-{i:07d}", "\n".join(turns))
    dupes_peak = tracemalloc.get_traced_memory()[1] - base
    dupes_held = tracemalloc.get_traced_memory()[0] - base
    del traced_dupes
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    traced_stats = DiversityStats()
    for turns in dialogues:
        for k, turn in enumerate(turns):
            traced_stats.add(turn, args.language, opening=k == 0)
    summary = traced_stats.summary()
    stats_peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    mib = 1 << 20
    print(
        f"{args.dialogues} {args.language} dialogues of {args.words} words, {kept} kept, {dupes.found} near duplicates"
    )
    print(f"NearDuplicates: {check_time} (including index setup)")
    print(
        f"  Python objects: traced peak {dupes_peak / mib:.1f} MiB, held at end {dupes_held / mib:.1f} MiB "
        f"({dupes_held / kept:.0f} B per kept); the index itself is in a temporary SQLite file (page cache 2 MB), "
        "which tracemalloc does not see: the process RSS below does"
    )
    print(f"DiversityStats: {stats_time} for {6 * args.dialogues} turns; traced peak {stats_peak / mib:.1f} MiB")
    print(f"  distinct_1 {summary['distinct_1']:.4f}, distinct_2 {summary['distinct_2']:.4f}")
    print(f"process max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
