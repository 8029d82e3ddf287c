"""One rule for relative paths (empathy_data/config/paths.py): relative to the config file, whatever the
working directory; a command-line override's relative to the working directory."""

from pathlib import Path
from typing import get_args

import yaml
from pydantic import BaseModel

from empathy_data.config import model as config_model
from empathy_data.config.model import load_config
from empathy_data.config.paths import LOCAL, MODEL

# Field names that hold a file or directory in every config class today: a new one must say so.
PATH_NAMES = {"output", "speaker_pool", "prompts_dir", "model_dir", "repo_dir", "scratch_dir"}


def write(directory: Path, data: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "build.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_paths_in_the_file_are_relative_to_the_file_not_the_working_directory(tmp_path, monkeypatch):
    configs = tmp_path / "project" / "configs"
    (configs / "models" / "xtts").mkdir(parents=True)
    path = write(configs, {
        "output": "../corpora/run1",
        "speaker_pool": "pools/pool.yaml",
        "prompts_dir": "my-prompts",
        "synthesize": {"tts": {"backend": "xtts", "model_dir": "models/xtts"}},
        "filter": {"thresholds": {"check_emotion": False}},
        "storage": {"scratch_dir": "scratch"},
    })  # fmt: skip
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config, base = load_config(path)
    assert base == configs
    assert config.output == str(configs / "../corpora/run1")
    assert config.speaker_pool == str(configs / "pools/pool.yaml")
    assert config.prompts_dir == str(configs / "my-prompts")
    assert config.synthesize.tts.model_dir == str(configs / "models/xtts")
    assert config.storage.scratch_dir == str(configs / "scratch")
    monkeypatch.chdir(tmp_path)  # the same file read from another directory: the same paths
    assert load_config(path)[0] == config


def test_an_override_is_relative_to_the_working_directory(tmp_path, monkeypatch):
    path = write(tmp_path / "configs", {"output": "out/a"})
    monkeypatch.chdir(tmp_path)
    config, _ = load_config(path, {"output": "runs/b"})
    assert config.output == str(tmp_path / "runs/b")


def test_urls_keywords_absolute_paths_and_model_names_are_kept(tmp_path):
    (tmp_path / "whisper-local").mkdir()
    path = write(tmp_path, {
        "output": "s3://bucket/corpus",
        "speaker_pool": "builtin",
        "script": {"topic": {"model": "embedded"}},
        "filter": {
            "asr": {"backend": "transformers", "model": "openai/whisper-small"},  # a hub id: no such directory
            "emotion": {"backend": "transformers", "model": "whisper-local"},  # a directory next to the config
            "mos": {"model": "/abs/dnsmos"},
        },
    })  # fmt: skip
    config, _ = load_config(path)
    assert config.output == "s3://bucket/corpus"
    assert config.speaker_pool == "builtin"
    assert config.script.topic.model == "embedded"
    assert config.filter.asr.model == "openai/whisper-small"
    assert config.filter.emotion.model == str(tmp_path / "whisper-local")
    assert config.filter.mos.model == "/abs/dnsmos"


def config_classes() -> list[type[BaseModel]]:
    return [c for c in vars(config_model).values() if isinstance(c, type) and issubclass(c, config_model.Strict)]


def test_every_field_that_holds_a_path_declares_it():
    undeclared = []
    for cls in config_classes():
        for name, field in cls.model_fields.items():
            declared = any(m in (LOCAL, MODEL) for m in field.metadata)
            holds_text = str in (field.annotation, *get_args(field.annotation))
            looks_like_path = name in PATH_NAMES or (name == "model" and "backend" in cls.model_fields)
            served_name = cls.__name__ in ("OpenAIScript", "ServiceASR", "TritonSynth")  # a server's model name
            if holds_text and looks_like_path and not declared and not served_name:
                undeclared.append(f"{cls.__name__}.{name}")
    assert not undeclared, f"path fields without LocalPath/ModelPath: {undeclared}"
