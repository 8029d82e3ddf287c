"""The `runner:` block reaches the flow: max_workers bounds how many chunk tasks run at once."""

import threading
import time
import types
from contextlib import nullcontext
from dataclasses import replace

import pytest
import yaml

from empathy_data.config.model import load_config
from empathy_data.flows import build as flow
from empathy_data.planning.speakers import load_pool
from empathy_data.runtime.build import PIPELINE, ChunkRef

# The stages are stand-ins here: no script judge runs, so none is measured before the chunks.
STUB_JUDGE = {"script": {"judge": {"min_agreement": None}}}


class ExportedStub(types.SimpleNamespace):
    """What export hands back (a Manifest), reduced to what the flow fills in after it."""

    def to_json(self) -> dict:
        return dict(vars(self), tasks=[task.model_dump() for task in self.tasks])


class StageCounter:
    """Stands in for the three stages' run functions (runtime/build.py PIPELINE): each sleeps, and the peak number of chunk tasks
    running at once is kept per stage and in all."""

    def __init__(self, monkeypatch, seconds: dict[str, float]):
        self.lock = threading.Lock()
        self.active = dict.fromkeys(["script", "synthesize", "filter", "all"], 0)
        self.peak = dict(self.active)
        self.runs = 0
        self.started: list[str] = []  # stage of each task, in the order they started
        for name in ("script", "synthesize", "filter"):
            monkeypatch.setitem(PIPELINE, name, replace(PIPELINE[name], run=self.stage(name, seconds[name])))
        monkeypatch.setattr(flow, "export_corpus", lambda ctx, *args: (ExportedStub(timings_s=dict(args[-1])), []))
        monkeypatch.setattr(flow, "llm_endpoint", lambda ctx: nullcontext("http://127.0.0.1:9/v1"))
        monkeypatch.setattr(flow.backends, "chat_backend", lambda *a: types.SimpleNamespace(check_reachable=lambda: None))

    def stage(self, name: str, seconds: float):
        def run(ctx, chunk_index, make_backend, round_=0):
            with self.lock:
                self.runs += 1
                self.started.append(name)
                for key in (name, "all"):
                    self.active[key] += 1
                    self.peak[key] = max(self.peak[key], self.active[key])
            time.sleep(seconds)  # long enough to overlap if nothing stops it
            with self.lock:
                for key in (name, "all"):
                    self.active[key] -= 1
            return ChunkRef(name, chunk_index, "key", "path", {}, seconds, False, round_)

        return run


def build_with(tmp_path, **config) -> dict:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"chunk_size": 1, "output": str(tmp_path / "out"), **STUB_JUDGE, **config}))
    return flow.run_build(str(path), {})


@pytest.mark.parametrize("max_workers", [1, 3])
def test_max_workers_bounds_concurrent_chunk_tasks(tmp_path, monkeypatch, max_workers):
    counter = StageCounter(monkeypatch, {"script": 1.5, "synthesize": 0.05, "filter": 0.05})
    manifest = build_with(tmp_path, num_dialogues=4, runner={"max_workers": max_workers})
    assert counter.runs == 4 * 3
    assert counter.peak["all"] == max_workers
    assert manifest.llm_requests == {"replayed": 0, "sent": 0}
    assert len(manifest.tasks) == counter.runs and {t.worker for t in manifest.tasks} == {manifest.driver}


def test_a_stage_max_concurrent_caps_its_tasks_while_others_run(tmp_path, monkeypatch):
    counter = StageCounter(monkeypatch, dict.fromkeys(["script", "synthesize", "filter"], 0.4))
    build_with(
        tmp_path, num_dialogues=6, runner={"max_workers": 4, "max_chunks_in_flight": 6},
        resources={"synthesize": {"max_concurrent": 1}, "filter": {"max_concurrent": 2}},
    )  # fmt: skip
    assert counter.peak["synthesize"] == 1 and counter.peak["filter"] <= 2
    assert counter.peak["script"] == 4 and counter.peak["all"] == 4  # the other stage still fills the workers


def test_stage_gpus_are_asked_of_the_cluster_the_task_is_submitted_to():
    import dask
    from prefect_ray.context import RemoteOptionsContext

    with flow.placement("ray", 0.5):
        assert RemoteOptionsContext.get().current_remote_options == {"num_gpus": 0.5, "max_calls": 0}
    with flow.placement("dask", 1.0):
        assert dask.get_annotations() == {"resources": {"GPU": 1.0}}
    with flow.placement("dask", 0.0):
        assert dask.get_annotations() == {}


def test_gpus_a_local_cluster_cannot_give_are_refused(monkeypatch):
    from empathy_data.config.model import parse_config
    from empathy_data.core.errors import ConfigError
    from empathy_data.runtime import preflight
    from empathy_data.runtime.preflight import check_gpu_requests

    def config(kind, address=None):
        return parse_config({"runner": {"kind": kind, "address": address},
                             "resources": {"synthesize": {"gpus": 1}}}, "c.yaml")  # fmt: skip

    with pytest.raises(ConfigError, match=r"resources.synthesize.gpus: a local Dask cluster does not split GPUs"):
        check_gpu_requests(config("dask"))
    monkeypatch.setattr(preflight, "visible_gpus", lambda: 0)
    with pytest.raises(ConfigError, match=r"resources.synthesize.gpus: asks for 1 GPU\(s\) per task, but this machine has 0"):
        check_gpu_requests(config("ray"))
    monkeypatch.setattr(preflight, "visible_gpus", lambda: 1)
    check_gpu_requests(config("ray"))
    check_gpu_requests(config("ray", "ray://head:10001"))  # a remote cluster declares its own GPUs
    check_gpu_requests(config("thread"))


def test_an_llm_on_loopback_is_refused_for_a_cluster_elsewhere():
    from empathy_data.config.model import parse_config
    from empathy_data.core.errors import ConfigError
    from empathy_data.runtime.preflight import check_llm_reachable_from_workers

    def config(address, base_url=None, kind="ray"):
        script = {"backend": "openai", **({"base_url": base_url} if base_url else {})}
        return parse_config({"runner": {"kind": kind, "address": address}, "script": script}, "c.yaml")

    with pytest.raises(ConfigError, match=r"script.base_url: the embedded LLM server listens on this machine's "
                                          r"127.0.0.1, which the workers of the cluster at ray://head:10001"):  # fmt: skip
        check_llm_reachable_from_workers(config("ray://head:10001"))
    with pytest.raises(ConfigError, match=r"script.base_url: http://localhost:8000/v1 is on loopback"):
        check_llm_reachable_from_workers(config("tcp://10.0.0.5:8786", "http://localhost:8000/v1", "dask"))
    check_llm_reachable_from_workers(config("ray://head:10001", "http://llm.internal:8000/v1"))
    check_llm_reachable_from_workers(config("127.0.0.1:6379"))  # a cluster on this machine reaches loopback
    check_llm_reachable_from_workers(config("auto"))
    check_llm_reachable_from_workers(config(None))


@pytest.mark.parametrize(
    "limits",
    [
        {"runner": {"max_workers": 1, "max_chunks_in_flight": 1}},
        # chunks 2 and 3 wait for the script stage's only slot when chunk 1 fails: they must not take it
        {"runner": {"max_workers": 2, "max_chunks_in_flight": 3}, "resources": {"script": {"max_concurrent": 1}}},
    ],
)
def test_a_failed_chunk_stops_new_chunks_and_its_cause_is_raised(tmp_path, monkeypatch, limits):
    from empathy_data.core.errors import EmpathyDataError

    started = []

    def script(ctx, chunk_index, make_backend, round_=0):
        started.append(chunk_index)
        if chunk_index == 0:
            raise ValueError("the writer broke")
        return ChunkRef("script", chunk_index, "key", "path", {}, 0.0, False, round_)

    monkeypatch.setitem(PIPELINE, "script", replace(PIPELINE["script"], run=script))
    monkeypatch.setattr(flow, "script_task", flow.script_task.with_options(retries=0))
    monkeypatch.setattr(flow, "llm_endpoint", lambda ctx: nullcontext("http://127.0.0.1:9/v1"))
    monkeypatch.setattr(flow.backends, "chat_backend", lambda *a: types.SimpleNamespace(check_reachable=lambda: None))
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"num_dialogues": 3, "chunk_size": 1, "output": str(tmp_path / "out"), **STUB_JUDGE, **limits}))
    with pytest.raises(EmpathyDataError, match="chunk 1: ValueError: the writer broke; re-run"):
        flow.run_build(str(config), {})
    assert started == [0]  # chunks 2 and 3 never started


def test_a_stages_models_are_released_once_no_chunk_needs_that_stage(tmp_path, monkeypatch):
    """Each task carries the stages no chunk needs any more; the worker running it lets their models go
    first (export tasks release all three)."""
    counter = StageCounter(monkeypatch, dict.fromkeys(["script", "synthesize", "filter"], 0.05))
    released = []

    def release(stages):
        if stages:
            with counter.lock:
                released.append((tuple(stages), counter.runs))
        return []

    monkeypatch.setattr(flow.backends, "release", release)
    build_with(tmp_path, num_dialogues=3, runner={"max_workers": 1, "max_chunks_in_flight": 1},
               regenerate={"rounds": 0})  # fmt: skip
    # the last chunk's synthesize task is the 8th stage task: no script task is left after it
    assert released == [(("script",), 7), (("script", "synthesize"), 8)]


@pytest.mark.parametrize("rounds", [0, 1])
def test_no_stage_is_released_while_a_chunk_still_needs_it(tmp_path, monkeypatch, rounds):
    """Chunks overlapping in every stage, regeneration rounds, a stage held back by max_concurrent: a
    stage is released only after its last task started."""
    counter = StageCounter(monkeypatch, {"script": 0.01, "synthesize": 0.1, "filter": 0.01})
    released = []

    def release(stages):
        with counter.lock:
            released.extend((stage, counter.runs) for stage in stages)
        return []

    monkeypatch.setattr(flow.backends, "release", release)
    build_with(tmp_path, num_dialogues=5, regenerate={"rounds": rounds},
               runner={"max_workers": 5, "max_chunks_in_flight": 5},
               resources={"synthesize": {"max_concurrent": 1}})  # fmt: skip
    assert released
    for stage, after in released:
        assert stage not in counter.started[after:], (stage, after, counter.started)


def test_released_models_are_built_again_when_asked_for():
    from empathy_data.backends import registry as backends
    from empathy_data.config.model import SynthesizeConfig

    backends.release(["script", "synthesize", "filter"])  # what earlier tests in this process built
    config = SynthesizeConfig()
    first = backends.tts_backend(config)
    assert backends.tts_backend(SynthesizeConfig()) is first  # equal settings: one model per process
    assert backends.release(["synthesize", "filter"]) == ["synthesize"]
    assert backends.release(["synthesize"]) == []
    assert backends.tts_backend(config) is not first


def test_the_config_is_read_once_and_the_pool_loaded_once_per_build(tmp_path, monkeypatch):
    """As `empathy-data build` runs it: the CLI validates the config (build_inputs) and hands it on."""
    from empathy_data.runtime import build as runtime

    StageCounter(monkeypatch, dict.fromkeys(["script", "synthesize", "filter"], 0.0))
    reads, pools = [], []
    monkeypatch.setattr(runtime, "load_config", lambda *a: reads.append(a) or load_config(*a))
    monkeypatch.setattr(flow, "load_config", lambda *a: reads.append(a) or load_config(*a))
    monkeypatch.setattr(runtime, "load_pool", lambda *a: pools.append(a) or load_pool(*a))
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"chunk_size": 1, "num_dialogues": 2, "output": str(tmp_path / "out"), **STUB_JUDGE}))
    inputs = runtime.build_inputs(path, {})
    runtime.context(inputs)  # what preflight checks
    manifest = flow.run_build(str(path), {}, inputs)
    assert len(reads) == 1 and len(pools) == 1
    assert len(manifest.tasks) == 2 * 3
