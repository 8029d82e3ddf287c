"""End-to-end: the real embedded models build a tiny corpus through the CLI and the Prefect flow."""

import json
import shutil
import subprocess
import sys

import datasets
import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from empathy_data.core.hashing import file_sha256
from empathy_data.core.labels import EMOTIONS, RESPONSE_STYLES
from tests.helpers import REPO  # noqa: F401

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def built(tiny_build):
    return tiny_build


def test_counts_add_up(built):
    root, _, _ = built
    manifest = json.loads((root / "out" / "manifest.json").read_text())
    for unit in ("dialogues", "exchanges"):
        c = manifest["counts"][unit]
        assert c["accepted"] + c["rejected"] + c["failed"] == c["planned"], c
    assert manifest["counts"]["dialogues"]["planned"] == 3
    assert manifest["counts"]["exchanges"]["accepted"] >= 1
    assert sum(manifest["counts"]["by_split"].values()) == manifest["counts"]["exchanges"]["accepted"]
    for split, shards in manifest["shards"]["data"].items():
        for shard in shards:
            assert file_sha256(root / "out" / "data" / shard["file"]) == shard["sha256"], split
    assert manifest["versions"]["faster-whisper"]
    assert "sk-" not in json.dumps(manifest)


def test_dataset_loads_and_audio_decodes(built):
    root, _, _ = built
    ds = datasets.load_dataset(str(root / "out"))
    rows = [row for split in ds for row in ds[split]]
    assert rows
    for row in rows:
        assert row["user_text"] and row["assistant_text"] and row["reasoning"]
        assert row["user_emotion"] in ("neutral", "happy", "sad", "angry", "fearful")
        assert row["quality"]["user_wer"] is not None and row["quality"]["user_wer"] <= 0.25
        for col in ("user_audio", "assistant_audio"):
            samples = row[col].get_all_samples()
            seconds = samples.data.shape[-1] / samples.sample_rate
            assert samples.sample_rate == 16000 and 0.5 < seconds < 30
            assert float(np.abs(samples.data.numpy()).max()) > 0.05
        assert len(row["history"]) == 2 * row["exchange_index"]
    card = (root / "out" / "README.md").read_text()
    assert card.startswith("---\n") and "## Distributions" in card


def test_the_judges_ran_with_the_embedded_defaults_and_the_card_shows_their_pass_rates(built):
    """Script judge (embedded LLM), topic check (embedded sentence embeddings) and speaker consistency
    (Resemblyzer) ran in the smoke config's tiny build; their scores are in the rows, pass rates on the card."""
    root, _, _ = built
    manifest = json.loads((root / "out" / "manifest.json").read_text())
    script_checks, checks = manifest["script_checks"], manifest["checks"]
    # the judge was measured on the labelled cases (the tiny build's 4) before it judged, in both modes
    measured = manifest["judge_calibration"]
    assert [(a["mode"], a["cases"]) for a in measured["agreements"]] == [("scores", 4), ("labels", 4)]
    best = max(a["agreement"] for a in measured["agreements"])
    assert measured["gates"] == (best >= measured["min_agreement"])
    assert measured["mode"] in {a["mode"] for a in measured["agreements"] if a["agreement"] == best}
    for name in ("validation", "topic", "judge_reply"):
        assert sum(script_checks[name].values()) >= 1, name
    if not measured["gates"]:  # it recorded its verdicts: none is a rejection
        assert not any("script: judge" in r for r in manifest["counts"]["by_reason"])
    assert sum(checks["assistant.voice_distinct"].values()) >= 1
    # a user's voice is compared across turns only where a dialogue of two or more exchanges reached the filter
    filtered = pq.read_table(root / "out" / "data", columns=["exchange_index"]).to_pylist() + [
        row for row in pq.read_table(root / "out" / "rejects", columns=["exchange_index", "stage"]).to_pylist()
        if row["stage"] != "script"
    ]
    if any(row["exchange_index"] >= 1 for row in filtered):
        assert sum(checks["user.speaker"].values()) >= 1
    assert manifest["diversity"]["semantic_checked"] >= 1
    card = (root / "out" / "README.md").read_text()
    assert "## Script judge pass rates" in card and "| judge_reply |" in card and "| assistant.voice_distinct |" in card
    assert f"It ran in mode `{measured['mode']}`" in card
    table = pq.read_table(root / "out" / "data", columns=["quality"]).to_pylist()
    for row in table:
        quality = row["quality"]
        if measured["mode"] == "scores":
            assert all(1 <= quality[f"judge_{c}"] <= 5 for c in ("emotion", "style", "topic", "reasoning", "naturalness"))
            assert quality["judge_rationale"]
        elif quality["judge_user_emotion"] is not None:  # a pick outside the lists is recorded as malformed
            assert quality["judge_user_emotion"] in EMOTIONS and quality["judge_assistant_style"] in RESPONSE_STYLES
        assert quality["topic_similarity"] is not None
        assert quality["voice_similarity"] is not None  # one-exchange dialogues have no consistency to measure


def test_rerun_resumes_without_redoing_work(built):
    root, path, _ = built
    out = root / "out"
    before = {p: file_sha256(p) for p in (out / "data").glob("*.parquet")}
    work = sorted(p.name for p in (out / "work").rglob("*") if p.is_file())
    shutil.rmtree(out / "data")
    result = subprocess.run(
        [sys.executable, "-m", "empathy_data.cli", "build", str(path)], capture_output=True, text=True, cwd=root
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # three stages, two chunks, two rounds, and each chunk's export parts: none recomputed
    tasks = json.loads((out / "manifest.json").read_text())["tasks"]
    assert len(tasks) == 3 * 2 * 2 + 2 and all(t["cached"] for t in tasks)
    assert sorted((t["stage"], t["chunk"], t["round"]) for t in tasks if t["stage"] != "export") == sorted(
        (stage, chunk, r) for stage in ("script", "synthesize", "filter") for chunk in (0, 1) for r in (0, 1)
    )
    assert {p: file_sha256(p) for p in (out / "data").glob("*.parquet")} == before
    assert sorted(p.name for p in (out / "work").rglob("*") if p.is_file()) == work


def test_output_dir_of_another_build_is_refused(built):
    root, path, _ = built
    config = yaml.safe_load(path.read_text())
    config["seed"] = 13
    other = root / "other.yaml"
    other.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "empathy_data.cli", "build", str(other)], capture_output=True, text=True, cwd=root
    )
    assert result.returncode == 2 and "holds a different build" in result.stderr


def test_parquet_rows_are_unique(built):
    root, _, _ = built
    keys = []
    for shard in (root / "out" / "data").glob("*.parquet"):
        t = pq.read_table(shard, columns=["dialogue_id", "exchange_index", "split"])
        keys += list(zip(t.column("dialogue_id").to_pylist(), t.column("exchange_index").to_pylist(), strict=True))
    assert len(keys) == len(set(keys))


def test_clean_removes_only_stale_chunk_outputs(built, tmp_path):
    root, path, _ = built
    out = root / "out"
    stale_file = out / "work" / "filter" / "c00000-0123456789abcdef.jsonl"
    stale_dir = out / "work" / "synthesize" / "c00009-0123456789abcdef"
    stale_file.write_text("{}\n")
    stale_dir.mkdir()
    before = sorted(p for p in (out / "work").rglob("*") if p.is_file() and p != stale_file)
    dry = subprocess.run([sys.executable, "-m", "empathy_data.cli", "clean", str(path), "--dry-run"],
                         capture_output=True, text=True, cwd=root)  # fmt: skip
    assert dry.returncode == 0 and "2 stale" in dry.stderr and stale_file.exists()
    result = subprocess.run(
        [sys.executable, "-m", "empathy_data.cli", "clean", str(path)], capture_output=True, text=True, cwd=root
    )
    assert result.returncode == 0 and "2 stale chunk output(s) removed" in result.stderr
    assert not stale_file.exists() and not stale_dir.exists()
    assert sorted(p for p in (out / "work").rglob("*") if p.is_file()) == before
