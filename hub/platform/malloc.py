"""glibc's malloc: arenas limited before the worker threads start, free pages handed back after a big job.

glibc gives threads up to eight arenas per core. A whole-catalogue job (a reconcile, a plan) that runs
on a thread whose arena has not held one before grows that arena to the job's peak, and the freed
pages mostly stay with the process: the soak's RSS rose a step at each five-minute reconcile, for as
long as the jobs kept landing on new threads. Two arenas keep the threads' peaks in the same memory.
The MALLOC_ARENA_MAX environment variable, when set, wins (glibc reads it at start).

What a big job freed inside a heap (below memory still in use) stays mapped too: glibc trims only a
heap's top on its own. ``trim`` (malloc_trim) hands every free page back; the worker calls it after a
job that ran long, which is when one has just let go of a whole catalogue.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

import structlog

M_ARENA_MAX = -8  # glibc's malloc.h
ARENAS = 2

log = structlog.get_logger(__name__)


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None


_LIBC = _libc()
_TRIM = getattr(_LIBC, "malloc_trim", None)
if _TRIM is not None:
    _TRIM.argtypes = [ctypes.c_size_t]
    _TRIM.restype = ctypes.c_int


def trim() -> bool:
    """Hand the free pages of every arena back to the system; False where there is no malloc_trim."""
    return _TRIM is not None and bool(_TRIM(0))


def limit_arenas(arenas: int = ARENAS) -> bool:
    """True when glibc took the limit; False elsewhere (musl, macOS) or when the environment sets it.
    Call before the worker threads start: glibc fixes its limit once eight arenas exist."""
    mallopt = getattr(_LIBC, "mallopt", None)
    if os.environ.get("MALLOC_ARENA_MAX") or mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = mallopt(M_ARENA_MAX, arenas) == 1
    if not ok:
        log.warning("malloc arenas not limited", arenas=arenas)
    return ok
