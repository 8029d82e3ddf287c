"""What the registry knows of one backend: how to build it, what of it goes into its stage's key, what
preflight checks before anything loads, and whether it puts a model on a GPU. docs/add-a-backend.md."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from empathy_data.core.errors import BackendUnavailable
from empathy_data.weights.fingerprint import looks_like_path, model_identity

# The roles a backend can fill, each with the config field preflight names in its one-line errors.
ROLES = {
    "llm": "script",
    "topic": "script.topic",
    "tts": "synthesize.tts",
    "asr": "filter.asr",
    "emotion": "filter.emotion",
    "speaker": "filter.speaker",
    "mos": "filter.mos",
}


def no_check(config: Any, where: str) -> None:
    return None


def dump(config: Any) -> dict[str, Any]:
    return config.model_dump(mode="json")


@dataclass(frozen=True)
class Backend:
    role: str  # a key of ROLES
    kind: str  # what the config calls it (its `backend:`), or the variant the registry picks
    build: Callable[[Any], Any]  # config -> the backend object; imports its library here, never at import
    # config -> this backend's part of its stage key: its settings minus what changes speed only, with
    # weights replaced by their content fingerprint. Equal keys must mean equal output.
    key: Callable[[Any], Any] = dump
    libraries: tuple[str, ...] = ()  # distributions whose versions decide the output (in the key)
    requires: tuple[str, ...] = ()  # modules that must import (preflight)
    install: str = "pip install empathy-data"  # what to do when one is missing
    check: Callable[[Any, str], None] = no_check  # more preflight: model paths, licences (config, field)
    gpu: Callable[[Any], str | None] = field(default=lambda config: None)  # the field that puts it on CUDA
    reachable: Callable[[Any, str], None] = no_check  # preflight of a server it talks to, when work needs it
    # tts: renders a speaker from their reference clip, which the speaker judge then compares against
    # (a parametric voice such as espeak's has no clip to be like)
    clones_voice: bool = True


def needs(where: str, modules: tuple[str, ...] | list[str], install: str) -> None:
    missing = [m for m in modules if find_spec(m) is None]
    if missing:
        raise BackendUnavailable(f"{where}: needs {', '.join(missing)}: {install}")


def local_model(where: str, model: str | None) -> None:
    """A model given as a path must be there (a missing local path would make libraries go to a hub, and
    its fingerprint would be that of an empty directory)."""
    if model and looks_like_path(model) and not Path(model).expanduser().exists():
        raise BackendUnavailable(f"{where}: model path {Path(model).expanduser()} does not exist")


def model_dir(where: str, value: str, must_have: str | None = None) -> None:
    path = Path(value).expanduser()
    if not path.is_dir():
        raise BackendUnavailable(f"{where}: {path} is not a directory")
    if must_have and not (path / must_have).is_file():
        raise BackendUnavailable(f"{where}: no {must_have} in {path}")


class MissingWeights(BackendUnavailable):
    def __init__(self, field: str, path: str):
        super().__init__(f"{field}: model path {path} does not exist")
        self.field, self.path = field, path


def weights(model: str, field: str = "model") -> dict[str, Any]:
    """A local model by its weights' fingerprint, a hub id by its name. `field`: the config field that
    names it, for the error when the path is not there."""
    try:
        return model_identity(model)
    except BackendUnavailable:
        raise MissingWeights(field, str(Path(model).expanduser())) from None
