"""The contract between empathy-data's manifest.json and the recipe's own reader of it: every field the
recipe reads is one the exporter's `Manifest` writes, with the same meaning, and a format the recipe does
not know yet is refused in one line instead of misread."""

from __future__ import annotations

import json

import pytest
from empathy_recipe.corpus import Corpus
from empathy_recipe.errors import RecipeError
from empathy_recipe.manifest import READS_FORMAT, CorpusManifest

from empathy_data.records.manifest import FORMAT_VERSION, Manifest, Shard
from tests.corpus_builder import make_corpus


def test_the_recipe_reads_the_format_the_exporter_writes():
    assert READS_FORMAT == FORMAT_VERSION  # bump both, and the reader's fields, together


def test_the_fields_the_recipe_reads_are_the_manifests():
    assert {"format_version", "name", "shards"} <= set(Manifest.model_fields)
    assert set(Shard.model_fields) == {"file", "rows", "sha256"}


def test_a_written_manifest_reads_the_same_through_both_readers(tmp_path):
    out = make_corpus(tmp_path)
    ours = Manifest.parse((out / "manifest.json").read_text(), "manifest.json")
    theirs = CorpusManifest.read(out / "manifest.json")
    assert theirs.format_version == ours.format_version == FORMAT_VERSION
    assert theirs.name == ours.name
    assert {s: [(e.file, e.rows, e.sha256) for e in v] for s, v in theirs.data.items()} == {
        s: [(e.file, e.rows, e.sha256) for e in v] for s, v in ours.shards.data.items()
    }
    assert [(e.file, e.rows, e.sha256) for e in theirs.rejects] == [(e.file, e.rows, e.sha256) for e in ours.shards.rejects]
    assert theirs.rejects  # the fixture has rejects: the comparison above compares something
    corpus = Corpus.open(out)
    assert corpus.num_rows == sum(ours.counts.by_split.values())


def test_a_newer_format_is_refused_in_one_line(tmp_path):
    out = make_corpus(tmp_path)
    raw = json.loads((out / "manifest.json").read_text())
    raw["format_version"] = FORMAT_VERSION + 1
    (out / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(RecipeError, match=f"format_version {FORMAT_VERSION + 1} is newer") as caught:
        Corpus.open(out)
    assert "\n" not in str(caught.value)


def test_an_unversioned_manifest_of_an_earlier_build_still_reads(tmp_path):
    out = make_corpus(tmp_path)
    raw = json.loads((out / "manifest.json").read_text())
    del raw["format_version"]
    (out / "manifest.json").write_text(json.dumps(raw))
    assert CorpusManifest.read(out / "manifest.json").format_version == 0
    assert Manifest.parse(json.dumps(raw), "manifest.json").format_version == 0
