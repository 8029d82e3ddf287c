"""Kill a real build with SIGKILL at several points, resume it, and compare with an uninterrupted build."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from empathy_data.core.hashing import file_sha256
from empathy_data.tools.verify import verify_corpus
from tests.conftest import build_command, run_build, standin_config, tiny_config

pytestmark = pytest.mark.slow

KILL_POINTS = {
    # inside the script stage: the first reply of chunk 2 is journaled, the chunk is not finished
    "script": "work/journal/c00001-r0.jsonl",
    # regeneration (smoke.yaml: 1 round): chunk 1's round-1 script is written, chunk 2 is still in round 0
    # or 1; a round-1 journal exists only when round 0 rejected something, so its script chunk is the mark
    "regenerate": "work/script/c00000-r1-*.jsonl",
}
# Chunk 1 is finished before the killed build starts: its replies (journal) and its stage outputs are the
# reference build's, as a build killed after chunk 1 would have left them. The server writes only chunk 2's
# replies and the build renders and judges only chunk 2: the test still kills a build whose replies are
# partly journaled and sends the rest to the real server, at a fraction of the models' time.
SEEDED_CHUNK = "c00000"


def seed_finished_chunk(out: Path, reference: Path) -> None:
    for folder in ("journal", "script", "synthesize", "filter", "calibration"):
        target = out / "work" / folder
        target.mkdir(parents=True, exist_ok=True)
        for source in (reference / "work" / folder).glob("*" if folder == "calibration" else f"{SEEDED_CHUNK}-*"):
            copy = shutil.copytree if source.is_dir() else shutil.copy
            copy(source, target / source.name)


def kill_when(path: Path, root: Path, pattern: str, timeout: float = 300) -> dict[str, str] | None:
    """Start a build, SIGKILL its whole process group once `pattern` exists; return the finished work files."""
    process = subprocess.Popen(
        build_command(path), cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    out = root / "killed"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if list(out.glob(pattern)):
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return finished_work(out)
        time.sleep(0.05)
    process.wait()
    return None


def finished_work(out: Path) -> dict[str, str]:
    return {
        str(p.relative_to(out)): file_sha256(p)
        for p in (out / "work").rglob("*")
        if p.is_file() and ".tmp" not in str(p) and not {"logs", "journal"} & set(p.parts)
    }


def journal_entries(out: Path) -> dict[str, str]:
    """request hash -> reply, over every journal file (a line cut short by a kill is not an entry)."""
    entries = {}
    for path in (out / "work" / "journal").glob("*.jsonl"):
        for line in path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            entries[entry["request"]] = entry["reply"]
    return entries


def shard_digests(out: Path) -> dict[str, str]:
    return {p.name: file_sha256(p) for p in sorted((out / "data").glob("*.parquet"))}


def accounted_ids(out: Path) -> list[tuple[str, int]]:
    """(dialogue, exchange) of every final row: data/ and rejects/, less versions a regeneration replaced."""
    keys = []
    for folder in ("data", "rejects"):
        for shard in sorted((out / folder).glob("*.parquet")):
            rows = pq.read_table(shard).select(
                ["dialogue_id", "exchange_index", *(["verdict"] if folder == "rejects" else [])]
            )
            keys += [
                (r["dialogue_id"], r["exchange_index"]) for r in rows.to_pylist() if r.get("verdict") != "replaced"
            ]
    return keys


@pytest.mark.parametrize("stage", list(KILL_POINTS))
def test_killed_build_resumes_to_the_build_it_would_have_been(request, tmp_path, stage):
    if stage == "script":  # the one kill on the real model: after it, the embedded server answers the rest
        reference = request.getfixturevalue("tiny_build")[0] / "out"
        path = tiny_config(tmp_path, out="killed")
        seed_finished_chunk(tmp_path / "killed", reference)
    else:  # the canned server and the stand-in audio service: the subject is the regeneration round's bookkeeping
        reference = request.getfixturevalue("standin_build")[0] / "out"
        llm, audio = (request.getfixturevalue(name) for name in ("canned_llm", "speaking_service"))
        path = standin_config(tmp_path, llm, audio, out="killed")
    done_before = kill_when(path, tmp_path, KILL_POINTS[stage])
    assert done_before is not None, f"build finished before the {stage} kill point"
    assert set(finished_work(reference)) - set(done_before), "the kill left no work to resume"
    out = tmp_path / "killed"
    journaled_at_kill = journal_entries(out)
    assert not (out / "manifest.json").exists()
    result = run_build(path, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not list(out.rglob("*.tmp"))
    after = finished_work(out)
    assert {k: after.get(k) for k in done_before} == done_before  # finished chunks were not redone
    # Replies received before the kill were reused; the server answers the rest as it did for the
    # uninterrupted build, so the resumed build is byte for byte the build it would have been.
    assert shard_digests(out) == shard_digests(reference)
    assert (out / "README.md").read_text() == (reference / "README.md").read_text()
    assert journal_entries(out) == journal_entries(reference)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["llm_requests"]["sent"] == len(journal_entries(reference)) - len(journaled_at_kill)
    if stage == "script":
        assert manifest["llm_requests"]["sent"] > 0  # the rest of chunk 2 came from the server
    assert sum(t["sent"] for t in manifest["tasks"]) == manifest["llm_requests"]["sent"]
    assert all(t["sent"] == 0 for t in manifest["tasks"] if t["stage"] != "script")
    for unit in ("dialogues", "exchanges"):
        c = manifest["counts"][unit]
        assert c["accepted"] + c["rejected"] + c["failed"] == c["planned"]
    keys = accounted_ids(out)
    assert len(keys) == len(set(keys)) == manifest["counts"]["exchanges"]["planned"]
    verify_corpus(out)


@pytest.mark.parametrize("point", ["shards", "card"])
def test_build_killed_during_export_resumes_to_identical_shards(tiny_build, tmp_path, point):
    reference_root, _, _ = tiny_build
    reference = reference_root / "out"
    path = tiny_config(tmp_path, out="export")
    out = tmp_path / "export"
    # every stage done, no chunk exported yet: the kill lands inside export
    shutil.copytree(reference / "work", out / "work", ignore=shutil.ignore_patterns("logs", "export"))
    shutil.copy(reference / "build.json", out / "build.json")
    log = tmp_path / "killed.log"
    with open(log, "wb") as sink:
        # Own process group: Prefect's temporary API server outlives a SIGKILLed parent, so clean it up.
        killed = subprocess.Popen(
            [sys.executable, "-m", "tests.kill_in_export", point, str(path)],
            stdout=sink, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parent.parent, start_new_session=True,
        )  # fmt: skip
        code = killed.wait(timeout=600)
        try:
            os.killpg(killed.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert code == -signal.SIGKILL, log.read_text()[-2000:]
    assert not (out / "manifest.json").exists()
    result = run_build(path, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert shard_digests(out) == shard_digests(reference)
    assert not (out / "work" / "export-staging").exists() and not list(out.rglob("*.tmp"))
    verify_corpus(out)
