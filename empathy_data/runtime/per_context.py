"""A value found once per build context: every chunk task of a process asks for it (a calibration, say), and
finding it costs renders or requests, so the first ask finds it under a lock and the others reuse it."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Hashable
from typing import Any


class PerContext:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        # (id of a context, variant) -> (the context, weakly: an id is reused once its object is gone; the value)
        self._found: dict[tuple[int, Hashable], tuple[weakref.ref, Any]] = {}

    def known(self, ctx: Any, variant: Hashable = None) -> Any | None:
        entry = self._found.get((id(ctx), variant))
        return entry[1] if entry is not None and entry[0]() is ctx else None

    def get(self, ctx: Any, find: Callable[[], Any], variant: Hashable = None) -> Any:
        with self._lock:
            value = self.known(ctx, variant)
            if value is None:
                value = find()
                self._found[(id(ctx), variant)] = (weakref.ref(ctx), value)
            return value
