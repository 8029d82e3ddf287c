import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.canned_llm import CannedLLM, canned_script
from tests.fake_service import FakeService

REPO = Path(__file__).resolve().parent.parent

# Three tiers (README, "Run the tests"): unit (no mark, the default run), integration (checks on the one
# shared real tiny build), slow (kills, clusters, object storage, Ctrl-C, model services).
TIERS = ("unit", "integration", "slow")


# The integration and slow tiers in two halves that CI runs at once, each in its own process on a core of its
# own (tests/run_lanes.sh): "models" holds what reads the shared real tiny build (made once, here) or talks to
# the embedded LLM server, "machinery" the rest (canned LLM, stand-in and model services, clusters, storage).
# Kokoro's tests sit in "models" to even the halves out (measured in CI: 584 s and 639 s without them).
# Measured and dropped: three lanes with the models lane at normal priority and the others niced (734 s), and
# the unit tier niced beside the two lanes (it starved, and the lanes slowed): the work is mostly CPU.
LANES = ("models", "machinery")
MODEL_LANE_TESTS = (
    "tests/test_llm_determinism.py",
    "tests/test_llama_sampling.py",
    "tests/test_resume.py::test_killed_build_resumes_to_the_build_it_would_have_been[script]",  # getfixturevalue
    "tests/test_kokoro.py",
)


def pytest_addoption(parser):
    parser.addoption(
        "--tier", action="append", choices=[*TIERS, "all"],
        help="run this tier (repeatable); default: unit. CI runs --tier all",
    )  # fmt: skip
    parser.addoption("--lane", choices=LANES, help="run one half of the chosen tiers (CI runs both at once)")


def lane_of(item: pytest.Item) -> str:
    uses_tiny_build = {"tiny_build", "tiny_build_rival"} & set(getattr(item, "fixturenames", ()))
    return "models" if uses_tiny_build or item.nodeid.startswith(MODEL_LANE_TESTS) else "machinery"


def tier_of(item: pytest.Item) -> str:
    marks = {m.name for m in item.iter_markers()}
    return "slow" if "slow" in marks else "integration" if "integration" in marks else "unit"


def pytest_collection_modifyitems(config, items):
    chosen = set(config.getoption("--tier") or ["unit"])
    if "all" in chosen:
        chosen = set(TIERS)
    lane = config.getoption("--lane")
    wanted = [item for item in items if tier_of(item) in chosen and lane in (None, lane_of(item))]
    keep = wanted
    dropped = [item for item in items if item not in set(wanted)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def command_text(args) -> str:
    return args if isinstance(args, str) else " ".join(str(a) for a in args)


def starts_build(args) -> bool:
    text = command_text(args)
    return "empathy_data.cli" in text and " build" in text


def starts_service(args) -> str | None:
    text = command_text(args)
    return next((s for s in ("empathy_data.serving", "triton_server.py", "llama_serve", "kill_in_export") if s in text), None)


@pytest.fixture(autouse=True)
def unit_tests_start_no_real_model(request, monkeypatch):
    """A unit test fails if it starts the embedded LLM, a model service or a cluster, or runs a build
    that does not stop at its config check: that belongs to the integration or slow tier
    (`pytest.mark.integration` / `pytest.mark.slow`)."""
    if tier_of(request.node) != "unit":
        yield
        return
    where = request.node.nodeid

    def refuse(what: str):
        raise AssertionError(f"{where} starts {what}: mark it pytest.mark.slow or pytest.mark.integration")

    builds: list[subprocess.Popen] = []
    popen_init = subprocess.Popen.__init__

    def checked_popen(self, args, *rest, **kwargs):
        service = starts_service(args)
        if service:
            refuse(f"a model service or build ({service})")
        popen_init(self, args, *rest, **kwargs)
        if starts_build(args):
            builds.append(self)

    monkeypatch.setattr(subprocess.Popen, "__init__", checked_popen)
    from empathy_data.stages.script import llama_server

    monkeypatch.setattr(llama_server.LlamaServer, "start", lambda self: refuse("the embedded LLM server"))
    import llama_cpp

    monkeypatch.setattr(llama_cpp.Llama, "__init__", lambda self, *a, **k: refuse("the embedded LLM (llama.cpp)"))
    for module, name in (("ray", "init"), ("distributed", "LocalCluster")):
        if module in sys.modules:  # imported by an earlier test or the package: a cluster is one call away
            monkeypatch.setattr(sys.modules[module], name, lambda *a, _m=module, **k: refuse(f"a local {_m} cluster"))
    yield
    for build in builds:
        if build.poll() in (0, None):
            refuse("a whole build that ran past its config check")


def tiny_config(root: Path, out: str = "out") -> Path:
    config = yaml.safe_load((REPO / "configs" / "smoke.yaml").read_text())
    config.update({"num_dialogues": 3, "chunk_size": 2, "output": str(root / out), "seed": 12})
    # Two attempts a round, not three: the same replies (seeds follow the attempt number), 10 requests to the
    # embedded LLM instead of 12, and both rejected dialogues of round 0 written again in round 1.
    config["script"]["max_attempts"] = 2
    # the 0.5B writer that ships with the package, not the README build's 1.5B: CI installs no 1.1 GB extra
    config["script"]["embedded"] = {"model": "qwen2.5-0.5b"}
    config.pop("rebalance", None)  # top-up is tested with fakes (test_topup.py); the tiny build stays three dialogues
    # The judge is measured before it judges, as in any build, on 4 of the 16 English cases (2 good, 2 broken):
    # 8 requests to the embedded model instead of 32 (test_judge_calibration.py measures the whole set).
    config["prompts_dir"] = str(few_judge_cases(root / "prompts-4-cases", 2))
    config["script"].pop("judge", None)  # mode auto: both modes measured, the better one runs
    path = root / f"{out}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def few_judge_cases(prompts: Path, per_label: int) -> Path:
    """A copy of the prompts whose judge case set keeps the first `per_label` good and broken English cases."""
    if not prompts.is_dir():
        shutil.copytree(REPO / "prompts", prompts)
        cases = yaml.safe_load((REPO / "prompts" / "judge_cases.yaml").read_text(encoding="utf-8"))
        kept = [c for label in ("good", "bad") for c in [c for c in cases if c["language"] == "en" and c["label"] == label][:per_label]]
        (prompts / "judge_cases.yaml").write_text(yaml.safe_dump(kept, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return prompts


def canned_config(root: Path, base_url: str, out: str = "out") -> Path:
    """The tiny config written by the canned LLM server (tests/canned_llm.py) instead of the embedded model."""
    path = tiny_config(root, out)
    config = yaml.safe_load(path.read_text())
    config["script"] = canned_script(base_url, frequency_penalty=0.5, presence_penalty=0.5)
    path.write_text(yaml.safe_dump(config))
    return path


def with_standin_audio(path: Path, audio_url: str) -> Path:
    """A config's audio models (TTS, ASR, emotion) replaced by the speaking test double of a model service
    (tests/fake_service.py): the build runs every stage and verdict, and loads no model."""
    config = yaml.safe_load(path.read_text())
    service = {"backend": "service", "url": audio_url}
    config["synthesize"]["tts"] = dict(service)
    config["filter"].update(asr=dict(service), emotion=dict(service), speaker={"enabled": False})
    path.write_text(yaml.safe_dump(config))
    return path


def standin_config(root: Path, base_url: str, audio_url: str, out: str = "out") -> Path:
    """The canned config with the stand-in audio service: what the slow tier's kills, faults and storage
    builds run, since their subject is the build's machinery, not a model."""
    return with_standin_audio(canned_config(root, base_url, out), audio_url)


def build_command(path: Path) -> list[str]:
    return [sys.executable, "-m", "empathy_data.cli", "build", str(path)]


def run_build(path: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(build_command(path), capture_output=True, text=True, cwd=cwd)


@pytest.fixture(scope="session")
def tiny_build(tmp_path_factory):
    """One uninterrupted build of a tiny corpus with the real embedded models, shared by the integration and slow tiers.
    While it runs, a second build of the same config is started on the same output: it must be refused
    at once (kept as `tiny_build_rival` for test_trust), and the first must finish intact."""
    root = tmp_path_factory.mktemp("e2e")
    path = tiny_config(root)
    first = subprocess.Popen(build_command(path), cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (root / "out" / ".build.owner").exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    started = time.monotonic()
    rival = run_build(path, root)
    rival_seconds = time.monotonic() - started
    stdout, stderr = first.communicate(timeout=900)
    result = subprocess.CompletedProcess(first.args, first.returncode, stdout, stderr)
    assert result.returncode == 0, result.stderr[-3000:]
    TINY_RIVAL.update(result=rival, seconds=rival_seconds, holder_pid=first.pid)
    return root, path, result


TINY_RIVAL: dict = {}


@pytest.fixture(scope="session")
def tiny_build_rival(tiny_build):
    return TINY_RIVAL


@pytest.fixture(scope="session", autouse=True)
def prefect_server(request, tmp_path_factory):
    """The integration and slow tiers' builds all talk to one Prefect API server, as a team's builds talk
    to theirs (PREFECT_API_URL), instead of each starting a temporary one (~11 s a build). The Ctrl-C
    tests take it away again: what a build's own temporary server does on an interrupt is their subject."""
    chosen = set(request.config.getoption("--tier") or ["unit"])
    if not chosen & {"integration", "slow", "all"} or os.environ.get("PREFECT_API_URL"):
        yield
        return
    from empathy_data.stages.script.llama_server import free_port

    port = free_port()
    home = tmp_path_factory.mktemp("prefect-home")
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    log = home / "server.log"
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"Prefect server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.5)
    os.environ["PREFECT_API_URL"] = url
    try:
        yield url
    finally:
        del os.environ["PREFECT_API_URL"]
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


SERVICE_PYTHON = Path(os.environ.get("EMPATHY_SERVICES_PYTHON") or REPO / ".venv-services" / "bin" / "python")


@pytest.fixture(scope="session")
def service_python() -> Path:
    """The model services' own environment (services/README.md; .ci/run creates it)."""
    if not SERVICE_PYTHON.exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI must create the service environment ({SERVICE_PYTHON}): see .ci/run")
        pytest.skip(f"no service environment at {SERVICE_PYTHON}: see services/README.md")
    return SERVICE_PYTHON


@pytest.fixture(scope="session")
def canned_llm():
    with CannedLLM(delay_s=0.2) as url:
        yield url


@pytest.fixture(scope="session")
def speaking_service():
    with FakeService.speaking_service() as service:
        yield service.url


@pytest.fixture(scope="session")
def standin_build(tmp_path_factory, canned_llm, speaking_service):
    """One uninterrupted build with the canned LLM and the stand-in audio service: the reference of the
    slow tier's kills, faults and storage builds."""
    root = tmp_path_factory.mktemp("standin")
    path = standin_config(root, canned_llm, speaking_service)
    result = run_build(path, root)
    assert result.returncode == 0, result.stderr[-3000:]
    return root, path, result


@pytest.fixture(scope="session")
def canned_build(tmp_path_factory, canned_llm):
    """One uninterrupted build of the tiny config with the canned LLM and the in-process audio models:
    the reference a build against the real model services must match (tests/test_service_build.py)."""
    root = tmp_path_factory.mktemp("canned")
    path = canned_config(root, canned_llm)
    result = run_build(path, root)
    assert result.returncode == 0, result.stderr[-3000:]
    return root, path, result
