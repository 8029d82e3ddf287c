"""`empathy-data verify` on a real tiny build, and on copies of it broken in one way each."""

import json
import shutil
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from empathy_data.core.hashing import file_sha256
from empathy_data.tools.verify import VerifyError, verify_corpus

pytestmark = pytest.mark.integration


@pytest.fixture
def corpus(tiny_build, tmp_path):
    root, _, _ = tiny_build
    copy = tmp_path / "corpus"
    shutil.copytree(root / "out", copy, ignore=shutil.ignore_patterns("work"))
    return copy


def first_shard(out):
    manifest = json.loads((out / "manifest.json").read_text())
    split, shards = next((s, v) for s, v in manifest["shards"]["data"].items() if v)
    return manifest, split, shards[0]


def test_clean_corpus_verifies(corpus):
    found = verify_corpus(corpus)
    assert found["rows"] >= 1
    result = subprocess.run(
        [sys.executable, "-m", "empathy_data.cli", "verify", str(corpus)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_flipped_byte_is_caught(corpus):
    _, _, shard = first_shard(corpus)
    path = corpus / "data" / shard["file"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(VerifyError, match="sha256 differs"):
        verify_corpus(corpus)
    result = subprocess.run(
        [sys.executable, "-m", "empathy_data.cli", "verify", str(corpus)], capture_output=True, text=True
    )
    assert result.returncode == 1 and shard["file"] in result.stderr


def test_missing_and_unlisted_shards_are_caught(corpus):
    _, _, shard = first_shard(corpus)
    path = corpus / "data" / shard["file"]
    path.rename(corpus / "data" / "extra-00000-of-00001.parquet")
    with pytest.raises(VerifyError, match="missing"):
        verify_corpus(corpus)


def test_counts_that_do_not_add_up_are_caught(corpus):
    manifest = json.loads((corpus / "manifest.json").read_text())
    manifest["counts"]["exchanges"]["accepted"] += 1
    (corpus / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(VerifyError, match="do not add up"):
        verify_corpus(corpus)


def test_duplicate_rows_are_caught(corpus):
    manifest, split, shard = first_shard(corpus)
    path = corpus / "data" / shard["file"]
    table = pq.read_table(path)
    doubled = pq.read_table(path).schema  # keep the Hugging Face schema metadata
    import pyarrow as pa

    pq.write_table(pa.concat_tables([table, table]).cast(doubled), path)
    shard.update({"rows": 2 * table.num_rows, "sha256": file_sha256(path)})
    manifest["shards"]["data"][split][0] = shard
    (corpus / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(VerifyError, match="appears twice"):
        verify_corpus(corpus)


def test_unfinished_build_is_reported(corpus):
    (corpus / "manifest.json").unlink()
    with pytest.raises(VerifyError, match="did not finish"):
        verify_corpus(corpus)


def test_a_user_speaker_in_two_splits_is_caught(corpus):
    import pyarrow as pa

    manifest, split, shard = first_shard(corpus)
    assert manifest["config"]["export"]["split_by"] == "speaker"
    table = pq.read_table(corpus / "data" / shard["file"]).slice(0, 1)
    other = "validation" if split != "validation" else "test"
    row = table.to_pylist()[0] | {"dialogue_id": "dlg-moved", "split": other}
    path = corpus / "data" / f"{other}-00000-of-00001.parquet"
    pq.write_table(pa.Table.from_pylist([row], schema=table.schema), path)
    manifest["shards"]["data"][other] = [{"file": path.name, "rows": 1, "sha256": file_sha256(path)}]
    for unit in ("dialogues", "exchanges"):
        manifest["counts"][unit]["planned"] += 1
        manifest["counts"][unit]["accepted"] += 1
    (corpus / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(VerifyError, match=f"user speaker {row['user_speaker_id']} is in splits"):
        verify_corpus(corpus)
