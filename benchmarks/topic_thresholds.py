"""Where the topic check's threshold should sit, per language and embedder, measured on the hand-labelled
cases (prompts/judge_cases.yaml): a case's user turns against its own scenario are on topic; the same
turns against every other scenario of the language stand in for a dialogue that drifted there.

    python benchmarks/topic_thresholds.py [--cases prompts/judge_cases.yaml]

For each embedder and language it prints the on-topic and drifted similarity ranges, the threshold that
best separates them (balanced accuracy) and the share of each side it gets right.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import yaml

from empathy_data.config.model import TopicCheck
from empathy_data.core.resources import prompts_dir
from empathy_data.planning.prompt_library import load_prompts
from empathy_data.stages.script.embeddings import make_embedder

REPO = Path(__file__).resolve().parent.parent


def pairs(cases: list[dict], scenarios: dict[str, dict[str, str]]) -> dict[str, tuple[list, list]]:
    """language -> (on-topic (scenario text, user text) pairs, drifted pairs)."""
    found: dict[str, tuple[list, list]] = {}
    for case in cases:
        if "topic" in case.get("broken", []):
            continue  # its own scenario is not on topic either: left out of both sides
        language = case["language"]
        user = " ".join(ex["user"] for ex in case["exchanges"])
        own, others = found.setdefault(language, ([], []))
        own.append((scenarios[language][case["scenario"]], user))
        others += [(text, user) for sid, text in scenarios[language].items() if sid != case["scenario"]]
    return found


def similarities(embedder, items: list[tuple[str, str]]) -> np.ndarray:
    vectors = embedder.encode([text for pair in items for text in pair])
    return np.array([float(vectors[2 * i] @ vectors[2 * i + 1]) for i in range(len(items))])


def best_threshold(on: np.ndarray, off: np.ndarray) -> tuple[float, float, float]:
    candidates = np.unique(np.concatenate([on, off]))
    scored = [((on >= t).mean() + (off < t).mean(), t) for t in candidates]
    _, t = max(scored)
    return float(t), float((on >= t).mean()), float((off < t).mean())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", default=str(REPO / "prompts" / "judge_cases.yaml"))
    args = parser.parse_args()
    cases = yaml.safe_load(Path(args.cases).read_text())
    scenarios = load_prompts(prompts_dir(None, REPO), ["en", "zh"]).scenarios
    found = pairs(cases, scenarios)
    for model in ("embedded", "embedded-multilingual"):
        embedder = make_embedder(TopicCheck(model=model))
        for language, (own, drifted) in sorted(found.items()):
            on, off = similarities(embedder, own), similarities(embedder, drifted)
            t, kept, caught = best_threshold(on, off)
            print(f"{model:22s} {language}: on topic {len(on)} pairs {on.min():.3f}-{np.median(on):.3f}-{on.max():.3f}; "
                  f"drifted {len(off)} pairs {off.min():.3f}-{np.median(off):.3f}-{off.max():.3f}; "
                  f"best threshold {t:.3f}: on topic kept {kept:.0%}, drifted caught {caught:.0%}")


if __name__ == "__main__":
    main()
