"""The CPU proof of the service design: the embedded models run as services from a SEPARATE virtual
environment (services/requirements/cpu.txt: Ray Serve, the model libraries, this package without its
dependencies; no Prefect, no torch), and a tiny build against them writes the same shards, byte for byte,
as the in-process build of the same config (conftest's canned_build). Its LLM is the canned
OpenAI-compatible server at a URL, as in that build: the LLM's own service is tested with the embedded
llama.cpp server run from the service environment (tests/test_llm_determinism.py)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from empathy_data.backends.service import ServiceTranscriber
from empathy_data.config.model import ServiceASR
from empathy_data.stages.script.llama_server import free_port
from tests.conftest import REPO, canned_config, run_build
from tests.helpers import sine

pytestmark = pytest.mark.slow
def wait_for(url: str, process: subprocess.Popen, log: Path, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{process.args[:3]} exited {process.returncode}: {log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise AssertionError(f"{url} did not answer within {timeout_s} s: {log.read_text()[-3000:]}")


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def services(service_python, tmp_path_factory):
    """Ray Serve (TTS, ASR, emotion and MOS apps), a process of the service environment."""
    root = tmp_path_factory.mktemp("services")
    spec = yaml.safe_load((REPO / "services" / "cpu.yaml").read_text())
    port = free_port()
    spec["http_options"] = {"host": "127.0.0.1", "port": port}
    (root / "services.yaml").write_text(yaml.safe_dump(spec))
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    serve_log = root / "serve.log"
    with open(serve_log, "wb") as out:
        serve = subprocess.Popen(
            [service_python, "-m", "empathy_data.serving", root / "services.yaml", "--num-cpus", "2"],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root,
        )  # fmt: skip
    try:
        wait_for(f"http://127.0.0.1:{port}/tts/info", serve, serve_log)
        wait_for(f"http://127.0.0.1:{port}/asr/info", serve, serve_log)
        wait_for(f"http://127.0.0.1:{port}/emotion/info", serve, serve_log)
        wait_for(f"http://127.0.0.1:{port}/mos/info", serve, serve_log)
        yield {"tts": f"http://127.0.0.1:{port}/tts", "asr": f"http://127.0.0.1:{port}/asr",
               "emotion": f"http://127.0.0.1:{port}/emotion", "mos": f"http://127.0.0.1:{port}/mos",
               "log": serve_log}  # fmt: skip
    finally:
        serve.terminate()
        try:
            serve.wait(timeout=60)
        except subprocess.TimeoutExpired:
            serve.kill()


def test_the_service_environment_holds_no_orchestrator(service_python):
    probe = (
        "import importlib.util as u; print([m for m in ('prefect', 'torch', 'ray', 'empathy_data') if u.find_spec(m)])"
    )
    found = subprocess.run([service_python, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    assert found == "['ray', 'empathy_data']"


def service_config(root: Path, services: dict, llm: str) -> Path:
    path = canned_config(root, llm, out="services-out")
    config = yaml.safe_load(path.read_text())
    config["synthesize"]["tts"] = {"backend": "service", "url": services["tts"], "neutral_reference": True}
    config["filter"]["asr"] = {"backend": "service", "url": services["asr"]}
    config["filter"]["emotion"] = {"backend": "service", "url": services["emotion"]}
    path.write_text(yaml.safe_dump(config))
    return path


def shard_digests(out: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((out / "data").glob("*.parquet"))}


@pytest.fixture(scope="module")
def service_build(services, canned_llm, tmp_path_factory):
    root = tmp_path_factory.mktemp("service-build")
    path = service_config(root, services, canned_llm)
    started = time.monotonic()
    result = run_build(path, root)
    print(f"\nbuild against services: {time.monotonic() - started:.1f} s")
    assert result.returncode == 0, result.stderr[-3000:]
    return root / "services-out", path


def test_a_build_against_services_writes_the_in_process_shards(service_build, services, canned_build):
    out, _ = service_build
    reference = canned_build[0] / "out"
    expected = shard_digests(reference)
    assert expected and shard_digests(out) == expected
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"] == json.loads((reference / "manifest.json").read_text())["counts"]
    # Two chunks, two rounds: each model loaded once, in its one replica, and served in batches.
    for name in ("tts", "asr", "emotion"):
        replica = get_json(f"{services[name]}/info")["replica"]
        assert replica["loads"] == 1 and replica["batches"] >= 1 and replica["items"] >= replica["batches"]


@pytest.mark.parametrize("kind", ["ray"])  # Dask builds with in-process models in tests/test_cluster_runners.py
def test_cluster_runners_load_no_model_per_chunk(service_build, services, tmp_path, kind):
    """Chunk tasks on a real local Ray or Dask cluster (2 worker processes) use the warm services: the
    models' load count stays the number of replicas, and the corpus is the thread runner's."""
    reference, path = service_build
    config = yaml.safe_load(path.read_text())
    config.update(output=str(tmp_path / "out"), runner={"kind": kind, "max_workers": 2})
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    # Scripts come from the service build (its LLM is tested there); TTS and the judges run on the cluster.
    shutil.copytree(reference / "work" / "script", tmp_path / "out" / "work" / "script")
    shutil.copy(reference / "build.json", tmp_path / "out" / "build.json")
    before = {name: get_json(f"{services[name]}/info")["replica"] for name in ("tts", "asr", "emotion")}
    result = run_build(tmp_path / "c.yaml", tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert shard_digests(tmp_path / "out") == shard_digests(reference)
    for name, earlier in before.items():
        replica = get_json(f"{services[name]}/info")["replica"]
        assert replica["loads"] == 1 and replica["pid"] == earlier["pid"]
        assert replica["items"] > earlier["items"]  # the cluster's chunk tasks were served by it


def test_an_asr_service_batches_requests_from_concurrent_chunks(services):
    before = get_json(f"{services['asr']}/info")["replica"]
    clients = [ServiceTranscriber(ServiceASR(url=services["asr"], max_in_flight=4)) for _ in range(2)]
    start = threading.Barrier(2)
    texts: dict[int, list] = {}

    def chunk(i: int) -> None:  # a chunk task's filter call: its own thread, its own caller tag
        start.wait()
        texts[i] = clients[i].transcribe([sine(200 + 40 * k, 0.6) for k in range(4)], ["en"] * 4)

    threads = [threading.Thread(target=chunk, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    after = get_json(f"{services['asr']}/info")["replica"]
    assert all(len(texts[i]) == 4 and not any(isinstance(t, Exception) for t in texts[i]) for i in range(2))
    assert after["items"] - before["items"] == 8
    assert after["batches"] - before["batches"] < 8  # batched, not one call per clip
    assert after["shared_batches"] > before["shared_batches"]  # batches held both chunks' clips
    assert after["loads"] == 1


def test_the_mos_service_scores_as_dnsmos_in_process(services):
    from empathy_data.backends.service import ServiceMOS
    from empathy_data.config.model import ServiceEndpoint
    from empathy_data.records.schema import Speaker
    from empathy_data.stages.filter.mos import DNSMOS
    from empathy_data.stages.synthesize.base import TTSRequest
    from empathy_data.stages.synthesize.espeak import EspeakTTS

    speaker = Speaker(id="s", gender="female", age_group="adult", language="en")
    tts = EspeakTTS()
    texts = ["I finally got the job I wanted.", "Please do not leave me here alone tonight."]
    clips = [
        (audio, tts.sample_rate) for audio in tts.synthesize([TTSRequest(t, "en", speaker, None, None) for t in texts])
    ]
    local = DNSMOS("embedded", "cpu", 1, False).score_batch(clips)
    served = ServiceMOS(ServiceEndpoint(url=services["mos"])).score_batch(clips)
    for mine, theirs in zip(local, served, strict=True):
        assert theirs.ovrl == pytest.approx(mine.ovrl, abs=1e-5) and theirs.sig == pytest.approx(mine.sig, abs=1e-5)
    assert get_json(f"{services['mos']}/info")["identity"]["settings"]["model"] == "embedded"
