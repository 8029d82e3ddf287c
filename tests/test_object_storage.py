"""A build whose output is an s3:// URL, against a real S3-compatible server (moto) on loopback:
the chunk store's publishing rules, and a tiny build killed, resumed, verified and read by `datasets`."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from empathy_data.core.hashing import file_sha256, stream_sha256
from empathy_data.store.chunk_store import MARKER, ObjectStore, open_store
from empathy_data.tools.verify import verify_corpus
from tests.conftest import build_command, run_build, standin_config
from tests.fake_service import FakeService
from tests.test_resume import shard_digests

BUCKET = "corpora"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test-key", "AWS_SECRET_ACCESS_KEY": "test-secret", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3():
    """moto's S3 server on 127.0.0.1 (a free port), a bucket, and the fsspec options that reach it."""
    from moto.server import ThreadedMotoServer

    saved = {k: os.environ.get(k) for k in CREDENTIALS}
    os.environ.update(CREDENTIALS)  # the build subprocesses inherit them: secrets stay out of configs
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    options = {"client_kwargs": {"endpoint_url": f"http://{host}:{port}"}}
    import s3fs

    s3fs.S3FileSystem(**options).mkdir(BUCKET)
    yield options
    server.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def store_at(s3, tmp_path: Path, name: str) -> ObjectStore:
    store = open_store(f"s3://{BUCKET}/{name}", s3, str(tmp_path / "scratch"))
    assert isinstance(store, ObjectStore)
    return store


def test_rows_and_files_round_trip(s3, tmp_path):
    store = store_at(s3, tmp_path, "roundtrip")
    store.write_rows("work/filter/c00000-k.jsonl", [{"kind": "exchange", "n": 1}, {"kind": "outcome", "n": 2}])
    assert store.read_rows("work/filter/c00000-k.jsonl") == [{"kind": "exchange", "n": 1}, {"kind": "outcome", "n": 2}]
    store.write_json("build.json", {"plan_key": "p"})
    assert store.read_json("build.json") == {"plan_key": "p"}
    assert store.list() == ["build.json", "work"]
    assert store.list("nowhere") == []
    store.remove("work")
    assert store.list() == ["build.json"]


def test_a_chunk_directory_appears_only_with_its_marker(s3, tmp_path):
    store = store_at(s3, tmp_path, "publish")
    with pytest.raises(RuntimeError, match="boom"), store.publish_dir("work/synthesize/c00000-k") as tmp:
        (tmp / "a.flac").write_bytes(b"audio")
        raise RuntimeError("boom")
    assert not store.exists("work/synthesize/c00000-k")  # nothing of a failed block is uploaded
    with store.publish_dir("work/synthesize/c00000-k") as tmp:
        (tmp / "a.flac").write_bytes(b"audio")
        (tmp / MARKER).write_text("{}\n")
    assert store.list("work/synthesize/c00000-k") == ["a.flac", MARKER]
    with store.local_dir("work/synthesize/c00000-k") as local:
        assert (local / "a.flac").read_bytes() == b"audio"
    assert not list((tmp_path / "scratch").glob(".*.tmp"))  # staging is cleaned up


def test_publishing_shards_replaces_the_old_set(s3, tmp_path):
    store = store_at(s3, tmp_path, "shards")
    old = tmp_path / "old"
    old.mkdir()
    (old / "train-00000-of-00002.parquet").write_bytes(b"old0")
    (old / "train-00001-of-00002.parquet").write_bytes(b"old1")
    store.publish_files(old, "data")
    new = tmp_path / "new"
    new.mkdir()
    (new / "train-00000-of-00001.parquet").write_bytes(b"new")
    store.publish_files(new, "data")
    assert store.list("data") == ["train-00000-of-00001.parquet"]
    assert store.read_bytes("data/train-00000-of-00001.parquet") == b"new"


def test_the_journal_working_copy_takes_the_longer_version(s3, tmp_path):
    store = store_at(s3, tmp_path, "journal")
    key = "work/journal/c00000-r0.jsonl"
    store.write_text(key, '{"request": "a"}\n{"request": "b"}\n')
    local = store.working_copy(key)
    assert local.read_text().count("\n") == 2  # fetched: this machine had none
    with open(local, "a") as f:
        f.write('{"request": "c"}\n')
    assert store.working_copy(key).read_text().count("\n") == 3  # this machine's is longer: kept
    store.push(key)
    assert store.read_text(key).count("\n") == 3


def test_a_url_without_its_filesystem_package_is_one_line(tmp_path):
    from empathy_data.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"output: nosuchfs://x/y: "):
        open_store("nosuchfs://x/y")


def s3_config(tmp_path: Path, s3: dict, name: str, llm_url: str, audio_url: str) -> Path:
    path = standin_config(tmp_path, llm_url, audio_url, out=name)
    config = yaml.safe_load(path.read_text())
    config["output"] = f"s3://{BUCKET}/{name}"
    config["storage"] = {"options": s3, "scratch_dir": str(tmp_path / "scratch")}
    path.write_text(yaml.safe_dump(config))
    return path


def object_etags(fs, prefix: str) -> dict[str, str]:
    fs.invalidate_cache()
    return {p: info["ETag"] for p, info in fs.find(prefix, detail=True).items()}


@pytest.fixture
def unhurried_audio():
    """Its own stand-in audio service, 0.3 s per utterance: the kill lands between chunk 1's filter and the
    end of the build. The audio, and so the keys and shards, are the reference build's."""
    with FakeService.speaking_service(delay_s=0.3) as service:
        yield service.url


@pytest.mark.slow
def test_a_build_to_s3_killed_and_resumed_matches_the_local_build(s3, standin_build, canned_llm, unhurried_audio, tmp_path):
    """The stand-in build (canned LLM, stand-in audio service) to s3://, SIGKILLed once its first chunk is filtered, then resumed: the finished
    chunk outputs are not written again, the shards are byte-identical to the local build's, `verify`
    passes against the URL and `datasets.load_dataset` reads the splits with storage_options."""
    import s3fs

    reference = standin_build[0] / "out"
    fs = s3fs.S3FileSystem(**s3)
    path = s3_config(tmp_path, s3, "tiny", canned_llm, unhurried_audio)
    prefix = f"{BUCKET}/tiny"
    # The reference build's LLM replies: this test is about storage; test_resume reruns the real server.
    for journal in (reference / "work" / "journal").glob("*.jsonl"):
        fs.pipe_file(f"{prefix}/work/journal/{journal.name}", journal.read_bytes())

    process = subprocess.Popen(
        build_command(path), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while not fs.glob(f"{prefix}/work/filter/c00000-*"):
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "chunk 1 was never filtered"
        time.sleep(0.2)
        fs.invalidate_cache()
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    finished = {k: v for k, v in object_etags(fs, f"{prefix}/work").items() if "/journal/" not in k}
    assert not fs.exists(f"{prefix}/manifest.json")

    result = run_build(path, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    after = object_etags(fs, f"{prefix}/work")
    assert {k: after.get(k) for k in finished} == finished  # finished work was not written again

    store = open_store(f"s3://{prefix}", s3)
    manifest = store.read_json("manifest.json")
    assert manifest["llm_requests"]["sent"] == 0
    local = shard_digests(reference)
    for name, digest in local.items():
        with store.open_read(f"data/{name}") as f:
            assert stream_sha256(f) == digest, name
    assert sorted(store.list("data")) == sorted(local)
    found = verify_corpus(f"s3://{prefix}", storage_options=s3)
    assert found == verify_corpus(reference)

    cli = subprocess.run(
        [*build_command(path)[:3], "verify", f"s3://{prefix}", "--storage-options", json.dumps(s3)],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stdout + cli.stderr

    # `datasets` in a process of its own: the recipe tests switch this one to offline mode, which
    # refuses every remote URL (this one is the S3 server on loopback)
    splits = {s: n for s, n in manifest["counts"]["by_split"].items() if n}
    data_files = {s: f"s3://{prefix}/data/{s}-*.parquet" for s in splits}
    read = (
        "import datasets, json, sys; a = json.loads(sys.argv[1]); "
        "d = datasets.load_dataset('parquet', data_files=a['files'], storage_options=a['options'], cache_dir=a['cache']); "
        "print(json.dumps({s: d[s].num_rows for s in d}))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
    payload = json.dumps({"files": data_files, "options": s3, "cache": str(tmp_path / "hf")})
    loaded = subprocess.run([sys.executable, "-c", read, payload], capture_output=True, text=True, env=env)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert json.loads(loaded.stdout.strip().splitlines()[-1]) == splits


def test_local_store_keeps_the_paths_it_always_had(tmp_path):
    store = open_store(str(tmp_path / "out"))
    store.write_rows("work/script/c00000-k.jsonl", [{"a": 1}])
    assert (tmp_path / "out" / "work" / "script" / "c00000-k.jsonl").is_file()
    assert file_sha256(tmp_path / "out" / "work" / "script" / "c00000-k.jsonl")
    assert open_store(f"file://{tmp_path}/out").url == str(tmp_path / "out")
