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
