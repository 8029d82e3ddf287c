"""Domain exceptions. Each carries where the problem is so the CLI can print one line."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


class EmpathyDataError(Exception):
    """Base class for errors this package raises on purpose."""


class ConfigError(EmpathyDataError):
    """Bad user input (config, speaker pool, prompts, output dir), found before any model loads."""

    def __init__(self, where: str, reason: str):
        self.where = where
        self.reason = reason
        super().__init__(f"{where}: {reason}")

    def __reduce__(self):  # Ray and Dask ship exceptions between processes by pickling
        return (type(self), (self.where, self.reason))


class BackendUnavailable(EmpathyDataError):
    """A backend cannot start: missing package, missing weights, unreachable server."""


class InfrastructureError(EmpathyDataError):
    """A fault of the machinery, not of one item: a dead or unreachable server, a timeout after the
    client's retries, an engine crash, out of memory, a missing library or file. It fails the chunk
    task (which Prefect retries) and is never written into a chunk file as an item's outcome."""


class OutputLocked(EmpathyDataError):
    """Another build holds the output directory."""


class ItemError(EmpathyDataError):
    """One record failed; the run goes on and the record is accounted as failed."""

    def __init__(self, item_id: str, reason: str):
        self.item_id = item_id
        self.reason = reason
        super().__init__(f"{item_id}: {reason}")

    def __reduce__(self):
        return (type(self), (self.item_id, self.reason))


# Exceptions that say nothing about the item being processed. Matched by class name along the MRO so
# that no optional library (torch, openai, vllm) has to be imported to classify its errors.
_INFRASTRUCTURE_NAMES = {
    "MemoryError",
    "OutOfMemoryError",  # torch.cuda.OutOfMemoryError
    "ImportError",
    "ConnectionError",
    "TimeoutError",
    "APIConnectionError",  # openai: refused/reset/timeout after the client's retries (APITimeoutError too)
    "TransportError",  # httpx: connect, read, write, timeout and protocol faults
    "RateLimitError",
    "InternalServerError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",  # openai: model or route not found on the server
    "EngineDeadError",  # vllm
    "EngineGenerateError",
    "InfrastructureError",
    "BackendUnavailable",
}
# Accelerator faults arrive as plain RuntimeErrors (torch, ctranslate2: "CUDA failed with error out of memory").
# A CUDA library missing at run time (CTranslate2: "Library libcublas.so.12 is not found or cannot be loaded").
_ACCELERATOR_FAULT = re.compile(
    r"CUDA (error|failed)|out of memory|CUBLAS_STATUS|cuDNN|NCCL|device-side assert"
    r"|Library lib\S+ is not found|lib(cu|nv)\w*\.so[.\d]*: cannot open shared object file"
)


def is_infrastructure(exc: BaseException) -> bool:
    """Whether an exception raised while processing one item is a fault of the infrastructure."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & _INFRASTRUCTURE_NAMES:
        return True
    if isinstance(exc, OSError):
        return True  # file system, disk full, broken pipe
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and (status >= 500 or status in (401, 403, 404, 408, 409, 429)):
        return True
    return bool(_ACCELERATOR_FAULT.search(str(exc)))


def raise_if_infrastructure(exc: BaseException, where: str) -> None:
    """Re-raise an infrastructure fault as InfrastructureError naming where it happened."""
    if isinstance(exc, InfrastructureError):
        raise exc
    if is_infrastructure(exc):
        detail = str(exc).splitlines()[0][:300] if str(exc) else ""
        raise InfrastructureError(f"{where}: {type(exc).__name__}: {detail}".rstrip(": ")) from exc


def each_or_error(items: Iterable[T], run: Callable[[T], R], where: str) -> list[R | Exception]:
    """`run` on each item in turn: an item's exception becomes its result, an infrastructure fault
    (out of memory, a missing file or library) raises and fails the whole call."""
    results: list[R | Exception] = []
    for item in items:
        try:
            results.append(run(item))
        except Exception as exc:
            raise_if_infrastructure(exc, where)
            results.append(exc)
    return results
