"""Full builds through a fault-injecting proxy in front of an OpenAI-compatible server: the canned one
(tests/canned_llm.py), with the stand-in audio service (tests/fake_service.py), so the faults, retries
and counts are tested in seconds; what the real embedded server does across a kill is test_resume's."""

import json
import os
import re

import pytest
import yaml

from empathy_data.stages.script.llama_server import free_port
from empathy_data.tools.verify import verify_corpus
from tests.canned_llm import CannedLLM
from tests.conftest import REPO, run_build, with_standin_audio
from tests.fault_proxy import FaultProxy

pytestmark = pytest.mark.slow
SECRET = "sk-test-do-not-leak-3141592653"


@pytest.fixture(scope="module")
def llm_server():
    with CannedLLM() as url:
        yield url


def write_config(root, base_url, audio_url, **script):
    config = yaml.safe_load((REPO / "configs" / "smoke.yaml").read_text())
    config.update({"num_dialogues": 3, "chunk_size": 3, "output": str(root / "out"), "seed": 5})
    config["distributions"]["exchanges"] = {1: 1.0}
    config.pop("rebalance", None)
    config["script"] = {
        "backend": "openai", "base_url": base_url, "model": "embedded", "structured_output": "json_object_schema",
        "api_key_env": "EMPATHY_FAULT_TEST_KEY", "max_in_flight": 1,
        # faults on the writer's requests are the subject here; judges would only add requests
        "judge": {"enabled": False}, "topic": {"enabled": False}, **script,
    }  # fmt: skip
    path = root / "faults.yaml"
    path.write_text(yaml.safe_dump(config))
    return with_standin_audio(path, audio_url)


def test_transient_faults_are_retried_and_counts_add_up(llm_server, speaking_service, tmp_path, monkeypatch):
    monkeypatch.setenv("EMPATHY_FAULT_TEST_KEY", SECRET)
    # Requests arrive in spec order (one in flight): dialogue 0 gets a 500 then succeeds; dialogue 1 gets
    # a connection reset (retried by the client) then succeeds; dialogue 2 gets malformed JSON (a new
    # attempt with a new seed), then succeeds. Nothing of this is an item's failure.
    faults = ["500", "ok", "reset", "ok", "malformed", "ok"]
    with FaultProxy(llm_server, faults) as proxy:
        path = write_config(tmp_path, proxy.base_url, speaking_service, request_retries=2, max_attempts=2)
        # check_reachable lists models with GET; only chat requests draw faults
        result = run_build(path, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    # a reply that fails script validation costs one more (fault-free) attempt after the scripted faults
    assert proxy.seen[: len(faults)] == faults and set(proxy.seen[len(faults) :]) <= {"ok"}
    assert set(proxy.auth) == {f"Bearer {SECRET}"}
    out = tmp_path / "out"
    manifest = json.loads((out / "manifest.json").read_text())
    dialogues = manifest["counts"]["dialogues"]
    assert dialogues["accepted"] + dialogues["rejected"] + dialogues["failed"] == dialogues["planned"] == 3
    assert dialogues["failed"] == 0
    verify_corpus(out)
    for text in [result.stdout, result.stderr] + [
        p.read_text(errors="ignore")
        for p in out.rglob("*")
        if p.is_file() and p.suffix in (".json", ".jsonl", ".md", ".log")
    ]:
        assert SECRET not in text


def test_refused_connections_for_a_whole_chunk_fail_the_build_not_the_items(llm_server, speaking_service, tmp_path, monkeypatch):
    monkeypatch.setenv("EMPATHY_FAULT_TEST_KEY", SECRET)
    # Every request of the chunk is reset: 1 + 1 client retry, in each of the task's 3 tries
    # (Prefect retries a chunk task twice). After the first fault no other request of the chunk is sent.
    faults = ["reset"] * 6
    with FaultProxy(llm_server, faults) as proxy:
        path = write_config(tmp_path, proxy.base_url, speaking_service, request_retries=1)
        failed = run_build(path, tmp_path)
        assert proxy.seen == faults
        assert failed.returncode == 1, failed.stderr[-3000:]
        [line] = [x for x in failed.stderr.splitlines() if x.startswith("error:")]
        # a reset, or on a loaded machine a reply slower than the timeout: both are outages (APITimeoutError
        # is an APIConnectionError)
        assert re.search(r"chunk 1: llm: API(Connection|Timeout)Error", line), line
        assert line.endswith("re-run the same command to resume")
        out = tmp_path / "out"
        assert not list((out / "work" / "script").glob("*.jsonl"))  # nothing cached for the outage
        result = run_build(path, tmp_path)  # the proxy has no faults left
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["dialogues"]["failed"] == 0
    verify_corpus(out)


def test_server_down_at_start_is_one_line_and_writes_nothing(speaking_service, tmp_path, monkeypatch):
    monkeypatch.setenv("EMPATHY_FAULT_TEST_KEY", SECRET)
    path = write_config(tmp_path, f"http://127.0.0.1:{free_port()}/v1", speaking_service)
    result = run_build(path, tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the LLM server at http://127.0.0.1" in lines[0]
    assert not (tmp_path / "out").exists()
    assert os.environ["EMPATHY_FAULT_TEST_KEY"] not in result.stderr
