"""core/scoped.one_blas_thread holds in whichever thread calls, before and after other threads used it."""

import threading

import numpy as np
from threadpoolctl import threadpool_limits

from empathy_data.core.scoped import one_blas_thread


def test_one_blas_thread_holds_in_new_threads_after_the_main_thread_used_it():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((80, 201)).astype(np.float32)
    b = rng.standard_normal((201, 3000)).astype(np.float32)
    with threadpool_limits(limits=1, user_api="blas"):
        one_thread = a @ b
    results = []

    def product() -> None:
        with one_blas_thread():
            results.append(a @ b)

    def from_two_threads() -> None:
        threads = [threading.Thread(target=product) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    from_two_threads()
    product()  # the main thread
    from_two_threads()  # the case that ran with two BLAS threads
    assert len(results) == 5 and all(np.array_equal(r, one_thread) for r in results)
