"""The exporters and a few training steps on a real tiny build (the shared `tiny_build` fixture)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from empathy_recipe.corpus import Corpus
from empathy_recipe.exporters import Options
from empathy_recipe.exporters.run import export
from empathy_recipe.train import TrainConfig, train

from tests.recipe.loader_checks import (
    check_blsp_line,
    check_opens2s_line,
    check_osum_line,
    load_like_recipe,
    read_jsonl,
)


def check_real_corpus(root: Path, tmp: Path) -> dict[str, dict]:
    corpus = Corpus.open(root)
    manifest = json.loads((root / "manifest.json").read_text())
    assert corpus.num_rows == sum(manifest["counts"]["by_split"].values())
    reports = {
        "opens2s": export(corpus, "opens2s", tmp / "opens2s", Options(no_units=True, reasoning=True)),
        "osum-echat": export(corpus, "osum-echat", tmp / "osum", Options(no_units=True, tasks=("chat", "emotion", "age"))),
        "blsp-emo": export(corpus, "blsp-emo", tmp / "blsp"),
    }
    for report in reports.values():
        assert report["rows_written"] + report["rows_skipped"] == corpus.num_rows
    for split in corpus.splits:
        for name, check in (("opens2s", check_opens2s_line), ("blsp", check_blsp_line)):
            path = tmp / name / f"{split}.jsonl"
            if path.exists():
                lines = read_jsonl(path)
                for line in lines:
                    check(line, units=False) if name == "opens2s" else check(line)
                assert len(load_like_recipe(path)) == len(lines)
        path = tmp / "osum" / split / "data.list"
        if path.exists():
            for line in read_jsonl(path):
                check_osum_line(line, units=False)
    return reports


@pytest.mark.integration
def test_exports_and_training_on_a_real_tiny_build(tiny_build, tmp_path):
    root, _, _ = tiny_build
    reports = check_real_corpus(root / "out", tmp_path)
    assert reports["opens2s"]["rows_written"] > 0
    corpus = Corpus.open(root / "out")
    split = max(corpus.splits, key=lambda s: sum(x.rows for x in corpus.shards if x.split == s))
    result = train(TrainConfig(corpus=str(root / "out"), split=split, out=tmp_path / "train", steps=12, batch_size=2))
    assert np.isfinite(result["losses"]).all() and np.mean(result["losses"][-3:]) < result["losses"][0]
