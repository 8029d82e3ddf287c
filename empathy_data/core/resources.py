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


# The built-in pool of each parametric TTS; a cloning TTS needs a pool of its own clips.
BUILTIN_POOLS = {"espeak": "espeak.yaml", "kokoro": "kokoro.yaml"}


def speaker_pool_path(setting: str, base: Path, tts: str = "espeak") -> Path:
    """`builtin`: the built-in pool of the configured TTS (espeak's for a TTS that has none); `builtin:NAME`
    one by name (`builtin:kokoro`); anything else a pool YAML relative to `base`."""
    if setting == "builtin" or setting.startswith("builtin:"):
        name = setting.partition(":")[2] or (tts if tts in BUILTIN_POOLS else "espeak")
        if name not in BUILTIN_POOLS:
            raise ConfigError(f"speaker_pool: {setting}", f"no built-in pool {name!r} (known: {', '.join(BUILTIN_POOLS)})")
        return builtin_dir("empathy_data.speaker_pool") / BUILTIN_POOLS[name]
    path = (base / setting).resolve()
    if not path.is_file():
        raise ConfigError(f"speaker_pool: {path}", "file not found")
    return path
