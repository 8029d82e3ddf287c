"""How many CPU cores this process may run on, and how a build divides them between its models."""

from __future__ import annotations

import os


def usable_cpus() -> int:
    """The cores this process may run on: its affinity (taskset, a container's cpuset), not the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def thread_share(cpus: int, tasks_at_once: int) -> int:
    """Threads for each of `tasks_at_once` models that compute at the same time on `cpus` cores, so that
    together they never ask for more threads than there are cores: llama.cpp's threads spin at a barrier,
    and with one core taken by another model its generation fell from 9.7-13.5 tok/s to 1.3-1.8
    (FIELD_NOTES; docs/benchmarks.md, "Threads")."""
    return max(1, cpus // max(1, tasks_at_once))


def threads_or_every_core(setting: int | None) -> int:
    """A model's thread count: its setting, or every core this process may use (a model service's own
    machine; inside a build the validated config has already filled in the build's share)."""
    return usable_cpus() if setting is None else setting
