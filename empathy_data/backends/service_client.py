"""HTTP to a model service: its report, its answers, and which failures are the service's, not the item's.

A service's 5xx, a refused or dropped connection, a timeout after the retries, or an answer that names
a missing accelerator library is an infrastructure fault: it raises InfrastructureError, which fails the
chunk task with one line and caches nothing. Only a 400/422 about one item is that item's failure.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import httpx

from empathy_data.core.errors import InfrastructureError, is_infrastructure

T = TypeVar("T")
R = TypeVar("R")
# Errors about one request's content; everything else a service answers with is about the service.
ITEM_STATUSES = (400, 422)
RETRIED_STATUSES = (502, 503, 504)  # a proxy or replica restarting, back-pressure


class ItemRejected(Exception):
    """The service could not process this one item (bad text, undecodable audio)."""


def first_line(text: str, limit: int = 300) -> str:
    return (text.strip().splitlines() or [""])[0][:limit]


class ServiceClient:
    """One service URL: `info()` once, then `post` from any number of threads (one pooled connection set)."""

    def __init__(self, url: str, timeout_s: float, retries: int, field: str):
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.retries = retries
        self.field = field  # the config field that named the URL, for one-line errors
        self._http = httpx.Client(timeout=timeout_s, limits=httpx.Limits(max_connections=64))
        self._info: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def fault(self, what: str) -> InfrastructureError:
        return InfrastructureError(f"{self.field}: service {self.url}: {what}")

    def request(self, method: str, route: str, allow: tuple[int, ...] = (), **kwargs: Any) -> httpx.Response:
        """The response of a 2xx, an item error (400/422) or a status in `allow`; any other outcome
        raises InfrastructureError."""
        url = f"{self.url}{route}"
        for attempt in range(self.retries + 1):
            try:
                response = self._http.request(method, url, **kwargs)
            except httpx.TimeoutException:
                problem = f"no answer within {self.timeout_s:g} s"
            except httpx.TransportError as exc:  # refused, reset, dropped mid-answer
                problem = f"{type(exc).__name__}: {first_line(str(exc)) or 'connection failed'}"
            else:
                if response.status_code < 300 or response.status_code in (*ITEM_STATUSES, *allow):
                    return response
                problem = f"HTTP {response.status_code}: {first_line(response.text)}"
                if response.status_code not in RETRIED_STATUSES:
                    raise self.fault(problem)
            if attempt < self.retries:
                time.sleep(min(0.5 * 2**attempt, 8.0))
        raise self.fault(f"{problem} (after {self.retries + 1} attempts)")

    def get_json(self, route: str, optional: bool = False) -> Any:
        """`GET route` as JSON; `optional`: None where the server has no such route (404)."""
        response = self.request("GET", route, allow=(404,) if optional else ())
        if optional and response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self.fault(f"GET {route} answered HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError:
            raise self.fault(f"GET {route} did not answer JSON") from None

    def info(self) -> dict[str, Any] | None:
        """The service's own report (`GET /info`), read once per client; None if it has none (404)."""
        with self._lock:
            if self._info is None:
                response = self.request("GET", "/info", allow=(404,))
                if response.status_code == 404:
                    return None
                if response.status_code != 200:
                    raise self.fault(f"GET /info answered HTTP {response.status_code}")
                try:
                    self._info = response.json()
                except ValueError:
                    raise self.fault("GET /info did not answer JSON") from None
            return self._info

    def identity(self) -> dict[str, Any]:
        """What decides the service's outputs (backend, library versions, weights): a stage key input."""
        return self.identity_or(None)

    def identity_or(self, fallback: Callable[[], dict[str, Any]] | None) -> dict[str, Any]:
        """The /info report's identity; a server without /info is identified by `fallback()`."""
        info = self.info()
        if info is None and fallback is not None:
            return fallback()
        identity = (info or {}).get("identity")
        if not isinstance(identity, dict):
            raise self.fault("GET /info has no `identity`: is this an empathy-data model service?")
        return identity

    def close(self) -> None:
        self._http.close()


def item_error(
    response: httpx.Response, client: ServiceClient, summary: Callable[[str], str] = first_line
) -> ItemRejected:
    """An item's own failure, told in one line (`summary` of the answer's error); one that reads like a
    missing library or an accelerator fault is raised as the infrastructure fault it is."""
    try:
        detail = str(response.json().get("error") or response.text)
    except ValueError:
        detail = response.text
    if is_infrastructure(ItemRejected(detail)):
        raise client.fault(summary(detail))
    return ItemRejected(summary(detail))


def bounded_map(run: Callable[[T], R], items: Iterable[T], max_in_flight: int) -> Iterator[R]:
    """`run` over items on up to `max_in_flight` threads, results in input order; at most that many
    results wait unread, so a chunk's answers stream instead of piling up."""
    with ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="service") as pool:
        pending: list[Future[R]] = []
        for item in items:
            pending.append(pool.submit(run, item))
            if len(pending) >= max_in_flight:
                yield pending.pop(0).result()
        while pending:
            yield pending.pop(0).result()
