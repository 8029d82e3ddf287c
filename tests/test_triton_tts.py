"""The Triton TTS client against a real Triton Inference Server (PyTriton's bundled build, from its own
environment) serving a test model with CosyVoice2's Triton interface (tests/triton_server.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

from empathy_data.backends.registry import synthesize_identity
from empathy_data.backends.triton import TritonTTS
from empathy_data.config.model import SynthesizeConfig, TritonSynth
from empathy_data.core.audio import resample
from empathy_data.core.errors import InfrastructureError
from empathy_data.records.schema import Speaker
from empathy_data.stages.synthesize.base import TTSRequest
from tests.helpers import REPO, sine
from tests.triton_server import spelled

pytestmark = pytest.mark.slow

TRITON_PYTHON = Path(os.environ.get("EMPATHY_TRITON_PYTHON") or REPO / ".venv-triton" / "bin" / "python")
FAILURES = ["--fail-text", "unreadable=no phonemes for this text", "--fail-text", "boom=CUDA out of memory"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SHM = "/dev/shm"


def start_triton(port: int, log: Path, *args: str) -> subprocess.Popen:
    if not TRITON_PYTHON.exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI must create the Triton environment ({TRITON_PYTHON}): see .ci/run")
        pytest.skip(f"no Triton environment at {TRITON_PYTHON}: pip install -r tests/requirements-triton.txt")
    shm_before = set(os.listdir(SHM)) if os.path.isdir(SHM) else set()
    process = subprocess.Popen(
        [str(TRITON_PYTHON), str(REPO / "tests" / "triton_server.py"), str(port), *args],
        stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    process.shm_before = shm_before  # type: ignore[attr-defined]
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"Triton exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/models/cosyvoice2/ready", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    stop(process)
    pytest.fail(f"Triton not ready within 180 s: {log.read_text()[-2000:]}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, 2)
        try:  # PyTriton's graceful stop waits ~30 s for in-flight requests; a test server has none left
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()
    # what a killed PyTriton leaves in shared memory: its proxy's segments, made while it ran
    for name in set(os.listdir(SHM) if os.path.isdir(SHM) else ()) - getattr(process, "shm_before", set()):
        if name.startswith(("psm_", "pytrtion")):
            Path(SHM, name).unlink(missing_ok=True)


@pytest.fixture(scope="module")
def triton(tmp_path_factory) -> str:
    port = free_port()
    process = start_triton(port, tmp_path_factory.mktemp("triton") / "triton.log", *FAILURES)
    yield f"http://127.0.0.1:{port}"
    stop(process)


@pytest.fixture(scope="module")
def speaker(tmp_path_factory) -> Speaker:
    root = tmp_path_factory.mktemp("clips")
    sf.write(root / "neutral.wav", sine(220, 2.0, 24000), 24000)
    sf.write(root / "sad.wav", sine(330, 3.0, 22050), 22050)
    return Speaker(
        id="a", gender="female", age_group="adult", language="en",
        clips={"neutral": [{"path": str(root / "neutral.wav"), "transcript": "hello there"}],
               "sad": [{"path": str(root / "sad.wav"), "transcript": "I miss them"}]},
    )  # fmt: skip


def request(speaker: Speaker, text: str, emotion: str | None = None) -> TTSRequest:
    return TTSRequest(text=text, language="en", speaker=speaker, emotion=emotion, response_style=None)


def test_each_turn_goes_with_its_emotions_clip_at_16_khz_and_its_transcript(triton, speaker):
    tts = TritonTTS(TritonSynth(url=triton))
    audio = tts.synthesize([request(speaker, "How are you?", "sad"), request(speaker, "Fine, thanks.", "happy")])
    sad = resample(sf.read(speaker.clips["sad"][0].path, dtype="float32")[0], 22050, 16000)
    neutral = resample(sf.read(speaker.clips["neutral"][0].path, dtype="float32")[0], 24000, 16000)
    np.testing.assert_array_equal(audio[0], spelled(sad, b"I miss them", b"How are you?"))
    np.testing.assert_array_equal(audio[1], spelled(neutral, b"hello there", b"Fine, thanks."))  # no happy clip
    assert tts.sample_rate == 24000


def batch_counts(url: str) -> tuple[int, int]:
    stats = httpx.get(f"{url}/v2/models/cosyvoice2/stats").json()["model_stats"][0]
    return int(stats["inference_count"]), int(stats["execution_count"])


def test_requests_from_two_chunk_tasks_share_tritons_batches(triton, speaker):
    """Clips of 2 s and 3 s: zero-padded to 10 s, so Triton's batcher (equal shapes only) can batch them."""
    before = batch_counts(triton)
    results: dict[int, list] = {}

    def chunk_task(k: int) -> None:
        tts = TritonTTS(TritonSynth(url=triton, max_in_flight=8))
        dialogues = [[request(speaker, f"chunk {k} dialogue {d} turn {t}", ["sad", None][t]) for t in range(2)] for d in range(8)]
        results[k] = list(tts.synthesize_many(dialogues))

    threads = [threading.Thread(target=chunk_task, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    inferences, executions = (a - b for a, b in zip(batch_counts(triton), before, strict=True))
    assert inferences == 32
    assert executions < inferences  # some executions served several requests at once
    assert all(isinstance(a, np.ndarray) and a.size for k in results for turns in results[k] for a in turns)
    assert results[1][3][0][-len(b"turn 0"):].tolist() == (np.frombuffer(b"turn 0", np.uint8) / 255.0).astype(np.float32).tolist()


def test_a_model_error_fails_its_turn_and_an_accelerator_fault_stops_the_chunk(triton, speaker):
    tts = TritonTTS(TritonSynth(url=triton))
    audio = tts.synthesize([request(speaker, "unreadable"), request(speaker, "readable")])
    assert isinstance(audio[0], Exception) and str(audio[0]) == "ValueError: no phonemes for this text"
    assert isinstance(audio[1], np.ndarray)
    with pytest.raises(InfrastructureError, match=r"^synthesize.tts.url: service http://127.0.0.1:\d+: RuntimeError: CUDA out of memory$"):
        tts.synthesize([request(speaker, "boom")])


def test_the_key_follows_tritons_report_not_its_address(triton, tmp_path):
    port = int(triton.rsplit(":", 1)[1])
    key = synthesize_identity(SynthesizeConfig(tts=TritonSynth(url=triton)))
    assert key == synthesize_identity(SynthesizeConfig(tts=TritonSynth(url=f"http://localhost:{port}")))
    assert key["settings"]["tts"]["triton"]["model"]["versions"] == ["1"]
    assert "url" not in str(key["settings"]["tts"])
    other = free_port()
    process = start_triton(other, tmp_path / "v2.log", "--version", "2")
    try:  # another model (version) behind a URL: another key
        changed = synthesize_identity(SynthesizeConfig(tts=TritonSynth(url=f"http://127.0.0.1:{other}")))
    finally:
        stop(process)
    assert changed != key and changed["settings"]["tts"]["triton"]["model"]["versions"] == ["2"]


def test_an_unreachable_triton_or_a_missing_model_is_one_line(triton):
    with pytest.raises(InfrastructureError, match=r"^synthesize.tts.url: service http://127.0.0.1:9: ConnectError"):
        synthesize_identity(SynthesizeConfig(tts=TritonSynth(url="http://127.0.0.1:9", request_retries=0)))
    with pytest.raises(InfrastructureError, match="Triton serves no model 'cosyvoice3'"):
        synthesize_identity(SynthesizeConfig(tts=TritonSynth(url=triton, model="cosyvoice3")))


def test_the_server_script_runs_only_from_its_own_environment():
    """The orchestrator's environment holds no PyTriton: Triton lives in its own (tests/requirements-triton.txt)."""
    found = subprocess.run([sys.executable, "-c", "import pytriton"], capture_output=True)
    assert found.returncode != 0
