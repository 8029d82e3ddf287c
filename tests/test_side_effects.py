"""Importing the package or building a backend changes no process-wide state: warnings filters,
environment variables, the BLAS thread count and the global random generators are as they were."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import numpy as np
import torch
from threadpoolctl import threadpool_info

from empathy_data.config.model import FasterWhisperASR, TopicCheck
from empathy_data.core.scoped import one_blas_thread, seeded_generators

PROBE = """
import importlib, json, os, pkgutil, sys, warnings
from threadpoolctl import threadpool_info
ours = []  # warnings filters added by this package's own code (libraries add theirs on import)
for name in ("filterwarnings", "simplefilter"):
    def record(*args, _original=getattr(warnings, name), **kwargs):
        _original(*args, **kwargs)
        caller = sys._getframe(1).f_globals.get("__name__", "")
        if caller.startswith("empathy_data"):
            ours.append((caller, warnings.filters[0]))
    setattr(warnings, name, record)
try:
    import ray  # sets RAY_CLIENT_MODE on its own import
except ImportError:
    pass
before = dict(os.environ), [i["num_threads"] for i in threadpool_info()]
import empathy_data
for module in pkgutil.walk_packages(empathy_data.__path__, "empathy_data."):
    if not module.name.endswith(("__main__", "_serve")):  # entry points: they start servers
        try:
            importlib.import_module(module.name)
        except ModuleNotFoundError:  # an optional dependency (Ray Serve lives in the service environment)
            pass
after = dict(os.environ), [i["num_threads"] for i in threadpool_info()[: len(before[1])]]
kept = [caller for caller, entry in ours if any(entry is f for f in warnings.filters)]  # not scoped
print(json.dumps({"filters": kept, "env": sorted(set(after[0].items()) ^ set(before[0].items())),
                  "blas": [before[1], after[1]]}))
"""


def test_importing_every_module_changes_no_process_state():
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["filters"] == []
    assert seen["env"] == []
    assert seen["blas"][0] == seen["blas"][1]


def blas_threads() -> list[int]:
    return [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]


def test_whisper_holds_one_blas_thread_only_while_it_transcribes(monkeypatch):
    from empathy_data.stages.filter.asr import FasterWhisper

    before = blas_threads()
    asr = FasterWhisper(FasterWhisperASR())
    assert blas_threads() == before  # building the backend changed nothing
    during = []
    monkeypatch.setattr(asr, "_transcribe", lambda audios, languages: during.append(blas_threads()) or [""])
    asr.transcribe([np.zeros(16000, dtype=np.float32)], ["en"])
    assert during and all(n == 1 for n in during[0])
    assert blas_threads() == before


def test_one_blas_thread_is_released_by_the_last_of_nested_holders():
    before = blas_threads()
    with one_blas_thread():
        with one_blas_thread():
            assert all(n == 1 for n in blas_threads())
        assert all(n == 1 for n in blas_threads())  # the outer holder still computes
    assert blas_threads() == before


def test_seeded_generators_repeat_draws_and_restore_the_streams():
    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)
    expected = random.random(), np.random.rand(), torch.rand(1).item()
    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)
    with seeded_generators(123):
        first = random.random(), np.random.rand(), torch.rand(1).item()
    with seeded_generators(123):
        assert (random.random(), np.random.rand(), torch.rand(1).item()) == first
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected  # as if never seeded


def test_the_sentence_embedder_stays_offline_without_setting_the_environment(monkeypatch):
    from empathy_data.stages.script.embeddings import SentenceEmbedder

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    embedder = SentenceEmbedder(TopicCheck(enabled=True))
    assert embedder.encode(["hello there"]).shape[0] == 1
    import os

    assert "HF_HUB_OFFLINE" not in os.environ
