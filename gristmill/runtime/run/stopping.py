"""Stopping a step that runs user Python code (a Python model's function).

A thread cannot be killed, and an engine interrupt does not reach code running in Python. So while
a step's thread runs user code, a stop raises :class:`StepStopped` in that thread at its next
Python instruction (CPython's asynchronous exception); a stop that comes while the thread is
elsewhere (in Gristmill's own code, in the engine) is raised when it enters or leaves user code.
The exception is a BaseException, so a model's ``except Exception`` does not swallow it, and it
unwinds through the step's transaction, which rolls back. Code stuck in a C call (a long
``time.sleep``, a blocking socket read) sees it only when that call returns: the runner abandons
such a step after its grace period (see ``Runner``)."""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class StepStopped(BaseException):
    """Raised inside a step's user code when the runner stops the step (a cancel or a timeout)."""


_lock = threading.Lock()
_inside: set[int] = set()
"""Threads running user code now."""
_stop: set[int] = set()
"""Threads asked to stop."""


@contextmanager
def user_code() -> Iterator[None]:
    """Mark the current thread as running user code for the duration, so a stop reaches it."""
    me = threading.get_ident()
    with _lock:
        if me in _stop:
            raise StepStopped("the step was stopped")
        _inside.add(me)
    try:
        yield
    finally:
        with _lock:
            _inside.discard(me)
            stopped = me in _stop
            if stopped:
                _raise_in(me, None)  # not delivered yet: cancel it, and raise it plainly below
    if stopped:
        raise StepStopped("the step was stopped")


def stop(thread: int) -> None:
    """Ask a step's thread to stop: at once if it runs user code, else when it next enters it."""
    with _lock:
        _stop.add(thread)
        if thread in _inside:
            _raise_in(thread, StepStopped)


def forget(thread: int) -> None:
    """The thread's step is over (its thread ends; identifiers are reused)."""
    with _lock:
        _stop.discard(thread)


def _raise_in(thread: int, exception: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread), ctypes.py_object(exception) if exception is not None else None
    )
