"""Ctrl-C and SIGTERM stop a build at once and cleanly.

Every write of a build is atomic (temp file, then rename) and every LLM reply is journaled, so there
is nothing to flush: the handler stops the processes this build started (the embedded LLM server,
Prefect's temporary API server), prints one line and exits 130 (SIGINT) or 143 (SIGTERM). Waiting
for running chunk tasks instead could take minutes, and Python would print their tracebacks.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

MESSAGE = "interrupted ({name}): stopped; re-run the same command to resume"


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (Linux /proc), children first."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, queue = [], list(children.get(pid, []))
    while queue:
        child = queue.pop(0)
        found.append(child)
        queue += children.get(child, [])
    return found


def _alive(pid: int) -> bool:
    try:
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) != "Z"
    except OSError:
        return False


def stop_descendants(grace_s: float = 3.0) -> None:
    pids = descendants(os.getpid())
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.05)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


_stopping = threading.Lock()
_wakeup_pipe: tuple[int, int] | None = None


def _stop(signum: int, frame) -> None:
    if not _stopping.acquire(blocking=False):
        # The other path (handler or watcher) is stopping: hold this thread too (the main thread must
        # not carry on and exit on its own terms) until that path ends the process.
        threading.Event().wait()
    try:
        stop_descendants()
        sys.stderr.write(MESSAGE.format(name=signal.Signals(signum).name) + "\n")
        sys.stderr.flush()
    except Exception:  # noqa: BLE001 - e.g. stderr piped into a `tee` that Ctrl-C already ended
        pass
    finally:
        os._exit(128 + signum)


def _watch(fd: int) -> None:
    while data := os.read(fd, 1):
        signum = data[0]
        # only while the handler is ours: code that installed its own keeps it
        if signum in (signal.SIGINT, signal.SIGTERM) and signal.getsignal(signum) is _stop:
            _stop(signum, None)


def _forget_wakeup_fd_in_child() -> None:
    """A forked child (no exec) inherits the C-level wakeup fd: its own signals would stop the parent."""
    global _wakeup_pipe
    try:
        signal.set_wakeup_fd(-1)
    except ValueError:  # not the main thread of the child
        pass
    if _wakeup_pipe is not None:
        for fd in _wakeup_pipe:
            try:
                os.close(fd)
            except OSError:
                pass
        _wakeup_pipe = None


def stop_cleanly_on_signals() -> None:
    """Install the handlers (only the main thread can; elsewhere this does nothing).

    Python runs signal handlers in the main thread only, between bytecodes: a main thread parked in a
    long C call would delay the stop. The interpreter's C-level handler also writes the signal number
    to a wakeup fd at once, so a watcher thread blocked on that fd stops the build whatever the main
    thread is doing; the Python handler stays as the fallback if someone replaces the wakeup fd."""
    global _wakeup_pipe
    if threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    if _wakeup_pipe is not None:
        return
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    _wakeup_pipe = (read_end, write_end)
    os.register_at_fork(after_in_child=_forget_wakeup_fd_in_child)
    threading.Thread(target=_watch, args=(read_end,), name="stop-on-signal", daemon=True).start()


def keep_stopping_cleanly() -> None:
    """Inside the flow: Prefect replaces the SIGTERM handler for the flow run; put ours back, but only
    when the command line installed it (a notebook calling the flow keeps its own Ctrl-C)."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is _stop:
        signal.signal(signal.SIGTERM, _stop)
