"""What a backend's output depends on beyond its settings: the library version and the weights.

Weights are identified by content (sha256 per file), never by where they are mounted, so a worker that
mounts the same weights elsewhere computes the same cache keys. A file's sha256 is cached under
`<cache>/fingerprints/`, keyed by its absolute path, size and mtime: hashed once per machine.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from empathy_data.core.atomic import write_text
from empathy_data.core.errors import BackendUnavailable
from empathy_data.core.hashing import digest, file_sha256
from empathy_data.weights.embedded_models import cache_dir


def library_versions(*packages: str) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in packages:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def looks_like_path(value: str) -> bool:
    return value.startswith(("/", "./", "../", "~")) or Path(value).expanduser().exists()


def cached_file_sha256(path: Path) -> str:
    stat = path.stat()
    marker = cache_dir().parent / "fingerprints" / digest([str(path.resolve()), stat.st_size, stat.st_mtime_ns], 32)
    if marker.is_file():
        return marker.read_text().strip()
    sha = file_sha256(path)
    write_text(marker, sha + "\n")
    return sha


def _generated(relative: Path) -> bool:
    """Files that appear by using a directory, not by changing it: caches, bytecode, git internals."""
    return bool({".cache", "__pycache__", ".git"} & set(relative.parts)) or relative.suffix == ".pyc"


def weights_fingerprint(path: Path) -> str:
    """sha256 over every file under `path` (relative name + content hash); a file alone works too."""
    path = path.expanduser()
    if not path.exists():  # an empty fingerprint would key a build to weights it never read
        raise BackendUnavailable(f"model path {path} does not exist")
    if path.is_file():
        return digest([path.name, cached_file_sha256(path)], 32)
    files = sorted(p for p in path.rglob("*") if p.is_file() and not _generated(p.relative_to(path)))
    return digest([[str(p.relative_to(path)), cached_file_sha256(p)] for p in files], 32)


def model_identity(model: str) -> dict[str, Any]:
    """A local model by its weights' fingerprint; a hub id by its name (the library resolves it)."""
    if looks_like_path(model):
        return {"weights": weights_fingerprint(Path(model))}
    return {"hub_id": model}
