"""manifest.json as a typed record: what a reader refuses, in one line saying where."""

from __future__ import annotations

import json

import pytest

from empathy_data.records.manifest import FORMAT_VERSION, Manifest, ManifestError
from empathy_data.tools.verify import VerifyError, verify_corpus
from tests.corpus_builder import make_corpus


def test_a_manifest_round_trips_through_its_json(tmp_path):
    out = make_corpus(tmp_path)
    manifest = Manifest.parse((out / "manifest.json").read_text(), "m")
    assert Manifest.parse(json.dumps(manifest.to_json()), "m") == manifest
    assert manifest.format_version == FORMAT_VERSION


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m["counts"]["exchanges"].pop("failed"), "counts.exchanges.failed: Field required"),
        (lambda m: m["shards"]["rejects"].append({"file": "x.parquet", "rows": -1, "sha256": "0"}), r"shards\.rejects\.\d+\.rows: Input should be greater than or equal to 0"),
        (lambda m: m.update(format_version=FORMAT_VERSION + 1), "newer than this empathy-data reads"),
        (lambda m: m.update(surprise=1), "surprise: Extra inputs are not permitted"),
    ],
)
def test_a_malformed_manifest_is_one_line_naming_the_field(tmp_path, change, message):
    out = make_corpus(tmp_path)
    raw = json.loads((out / "manifest.json").read_text())
    change(raw)
    with pytest.raises(ManifestError, match=message) as caught:
        Manifest.parse(json.dumps(raw), str(out / "manifest.json"))
    assert "\n" not in str(caught.value) and str(out / "manifest.json") in str(caught.value)


def test_verify_reports_a_malformed_manifest_as_its_one_line(tmp_path):
    out = make_corpus(tmp_path)
    (out / "manifest.json").write_text("{not json")
    with pytest.raises(VerifyError, match="manifest.json: not JSON"):
        verify_corpus(out)
