"""Locating the prompts and speaker pools, built-in or user-supplied."""

from importlib import resources
from pathlib import Path

from empathy_data.core.errors import ConfigError


def builtin_dir(package: str) -> Path:
    return Path(str(resources.files(package)))


def prompts_dir(setting: str | None, base: Path) -> Path:
    path = builtin_dir("empathy_data.prompts") if setting is None else (base / setting).resolve()
    if not path.is_dir():
        raise ConfigError(f"prompts_dir: {path}", "directory not found")
    return path


def speaker_pool_path(setting: str, base: Path) -> Path:
    if setting == "builtin":
        return builtin_dir("empathy_data.speaker_pool") / "espeak.yaml"
    path = (base / setting).resolve()
    if not path.is_file():
        raise ConfigError(f"speaker_pool: {path}", "file not found")
    return path
