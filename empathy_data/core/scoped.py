"""Process state a library needs, held only while it runs: one BLAS thread, and the global random
generators seeded for one call. Building a backend or importing the package changes nothing global."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

_BLAS_LOCK = threading.RLock()  # reentrant: a holder may call another (nested holders)


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """numpy's BLAS limited to one thread for the caller, one caller at a time; the thread count before is
    restored after. Set in the calling thread each time: after the main thread had set and restored a
    limit, a limit that one thread set and another thread's call inherited did not hold (measured with
    OpenBLAS: a matmul in a new thread ran with 2 threads while threadpoolctl reported 1 set elsewhere)."""
    from threadpoolctl import threadpool_limits

    with _BLAS_LOCK, threadpool_limits(limits=1, user_api="blas"):
        yield


_RNG_LOCK = threading.Lock()


@contextmanager
def seeded_generators(seed: int) -> Iterator[None]:
    """Python's, NumPy's and torch's global generators seeded for one call, holding a process-wide lock so
    that threads sharing them cannot interleave their draws; their earlier states come back after."""
    import torch

    with _RNG_LOCK:
        states = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        try:
            yield
        finally:
            random.setstate(states[0])
            np.random.set_state(states[1])
            torch.random.set_rng_state(states[2])
            if cuda is not None:
                torch.cuda.set_rng_state_all(cuda)
