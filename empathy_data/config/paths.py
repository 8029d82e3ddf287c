"""One rule for relative paths: a path written in a config file is relative to that file's directory,
whichever directory the build is started from and wherever its workers run. A path given on the
command line (`--out`) is relative to the working directory, as any command's argument is.

A field says that it holds a path by its annotation, so the rule is applied in one place:
- `LocalPath`: a file or directory on this machine (`output`, `speaker_pool`, `model_dir`, ...);
- `ModelPath`: a model directory, or else a name the backend resolves itself (a hub id, a size name):
  it becomes a path only when such a file or directory exists next to the config.
URLs (`s3://...`) and the keywords `embedded`, `builtin` and `builtin:NAME` are never paths.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel

LOCAL = "path relative to the config file"
MODEL = "model path relative to the config file, or a name"
KEYWORDS = {"embedded", "builtin"}

LocalPath = Annotated[str, LOCAL]
ModelPath = Annotated[str, MODEL]
OptionalLocalPath = Annotated[str | None, LOCAL]
LocalPaths = Annotated[list[str], LOCAL]


def path_kind(field: Any) -> str | None:
    """LOCAL or MODEL where a pydantic field is declared a path, else None."""
    return next((m for m in field.metadata if m in (LOCAL, MODEL)), None)


def resolve_path(value: str | None, kind: str, base: Path) -> str | None:
    if value is None or value in KEYWORDS or value.startswith("builtin:") or "://" in value:
        return value
    path = Path(value).expanduser()
    if path.is_absolute():
        return str(path)
    candidate = base / path
    if kind == MODEL and not candidate.exists():
        return value  # a hub id or a size name: the backend's preflight says whether it can be had
    return str(candidate)


def resolve_paths(model: Any, base: Path) -> Any:
    """`model` with every path field under it made absolute against `base` (a config file's directory)."""
    if not isinstance(model, BaseModel):
        return model
    update: dict[str, Any] = {}
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        kind = path_kind(field)
        if kind is not None and isinstance(value, list):
            resolved = [resolve_path(v, kind, base) for v in value]
        elif kind is not None:
            resolved = resolve_path(value, kind, base)
        elif isinstance(value, BaseModel):
            resolved = resolve_paths(value, base)
        elif isinstance(value, dict):
            resolved = {k: resolve_paths(v, base) for k, v in value.items()}
        else:
            continue
        if resolved != value:
            update[name] = resolved
    return model.model_copy(update=update) if update else model
