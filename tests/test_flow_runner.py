"""The `runner:` block reaches the flow: max_workers bounds how many chunk tasks run at once."""

import threading
import time
import types
from contextlib import nullcontext

import pytest
import yaml
from empathy_data.flows import build as flow

from empathy_data.build import ChunkRef


@pytest.mark.parametrize("max_workers", [1, 3])
def test_max_workers_bounds_concurrent_chunk_tasks(tmp_path, monkeypatch, max_workers):
    lock = threading.Lock()
    seen = {"active": 0, "peak": 0, "runs": 0}

    def stage(name):
        def run(ctx, chunk_index, make_backend, round_=0):
            with lock:
                seen["active"] += 1
                seen["runs"] += 1
                seen["peak"] = max(seen["peak"], seen["active"])
            time.sleep(1.5 if name == "script" else 0.05)  # long enough to overlap if nothing stops it
            with lock:
                seen["active"] -= 1
            return ChunkRef(name, chunk_index, "key", "path", {}, 0.3, False, round_)

        return run

    for name in ("script", "synthesize", "filter"):
        monkeypatch.setattr(flow, f"run_{name}_chunk", stage(name))
    monkeypatch.setattr(flow, "export_corpus", lambda ctx, timings: {"timings_s": dict(timings)})
    monkeypatch.setattr(flow, "llm_endpoint", lambda ctx: nullcontext("http://127.0.0.1:9/v1"))
    monkeypatch.setattr(flow.backends, "chat_backend", lambda *a: types.SimpleNamespace(check_reachable=lambda: None))
    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump(
            {"num_dialogues": 4, "chunk_size": 1, "output": str(tmp_path / "out"), "runner": {"max_workers": max_workers}}
        )
    )
    manifest = flow.run_build(str(config), {})
    assert seen["runs"] == 4 * 3
    assert seen["peak"] == max_workers
    assert manifest["llm_requests"] == {"replayed": 0, "sent": 0}


def test_a_stage_max_concurrent_caps_its_tasks_while_others_run(tmp_path, monkeypatch):
    lock = threading.Lock()
    active = {"script": 0, "synthesize": 0, "filter": 0, "all": 0}
    peak = dict.fromkeys(active, 0)

    def stage(name):
        def run(ctx, chunk_index, make_backend, round_=0):
            with lock:
                for key in (name, "all"):
                    active[key] += 1
                    peak[key] = max(peak[key], active[key])
            time.sleep(0.4)
            with lock:
                for key in (name, "all"):
                    active[key] -= 1
            return ChunkRef(name, chunk_index, "key", "path", {}, 0.4, False, round_)

        return run

    for name in ("script", "synthesize", "filter"):
        monkeypatch.setattr(flow, f"run_{name}_chunk", stage(name))
    monkeypatch.setattr(flow, "export_corpus", lambda ctx, timings: {"timings_s": dict(timings)})
    monkeypatch.setattr(flow, "llm_endpoint", lambda ctx: nullcontext("http://127.0.0.1:9/v1"))
    monkeypatch.setattr(flow.backends, "chat_backend", lambda *a: types.SimpleNamespace(check_reachable=lambda: None))
    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "num_dialogues": 6, "chunk_size": 1, "output": str(tmp_path / "out"),
                "runner": {"max_workers": 4, "max_chunks_in_flight": 6},
                "resources": {"synthesize": {"max_concurrent": 1}, "filter": {"max_concurrent": 2}},
            }
        )
    )  # fmt: skip
    flow.run_build(str(config), {})
    assert peak["synthesize"] == 1 and peak["filter"] <= 2
    assert peak["script"] == 4 and peak["all"] == 4  # the other stage still fills the workers


def test_stage_gpus_are_asked_of_the_cluster_the_task_is_submitted_to():
    import dask
    from prefect_ray.context import RemoteOptionsContext

    with flow.placement("ray", 0.5):
        assert RemoteOptionsContext.get().current_remote_options == {"num_gpus": 0.5}
    with flow.placement("dask", 1.0):
        assert dask.get_annotations() == {"resources": {"GPU": 1.0}}
    with flow.placement("dask", 0.0):
        assert dask.get_annotations() == {}


def test_gpus_a_local_cluster_cannot_give_are_refused(monkeypatch):
    from empathy_data import preflight
    from empathy_data.config import parse_config
    from empathy_data.errors import ConfigError
    from empathy_data.preflight import check_gpu_requests

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


def test_a_failed_chunk_stops_new_chunks_and_its_cause_is_raised(tmp_path, monkeypatch):
    from empathy_data.errors import EmpathyDataError

    started = []

    def script(ctx, chunk_index, make_backend, round_=0):
        started.append(chunk_index)
        if chunk_index == 0:
            raise ValueError("the writer broke")
        return ChunkRef("script", chunk_index, "key", "path", {}, 0.0, False, round_)

    monkeypatch.setattr(flow, "run_script_chunk", script)
    monkeypatch.setattr(flow, "script_task", flow.script_task.with_options(retries=0))
    monkeypatch.setattr(flow, "llm_endpoint", lambda ctx: nullcontext("http://127.0.0.1:9/v1"))
    monkeypatch.setattr(flow.backends, "chat_backend", lambda *a: types.SimpleNamespace(check_reachable=lambda: None))
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"num_dialogues": 3, "chunk_size": 1, "output": str(tmp_path / "out"),
                                      "runner": {"max_workers": 1, "max_chunks_in_flight": 1}}))  # fmt: skip
    with pytest.raises(EmpathyDataError, match="chunk 1: ValueError: the writer broke; re-run"):
        flow.run_build(str(config), {})
    assert started == [0]  # chunks 2 and 3 never started
