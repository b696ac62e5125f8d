"""glibc's malloc arenas, limited before the worker threads start.

glibc gives threads up to eight arenas per core. A whole-catalogue job (a reconcile, a plan) that runs
on a thread whose arena has not held one before grows that arena to the job's peak, and the freed
pages mostly stay with the process: the soak's RSS rose a step at each five-minute reconcile, for as
long as the jobs kept landing on new threads. Two arenas keep the threads' peaks in the same memory.
The MALLOC_ARENA_MAX environment variable, when set, wins (glibc reads it at start).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

import structlog

M_ARENA_MAX = -8  # glibc's malloc.h
ARENAS = 2

log = structlog.get_logger(__name__)


def limit_arenas(arenas: int = ARENAS) -> bool:
    """True when glibc took the limit; False elsewhere (musl, macOS) or when the environment sets it.
    Call before the worker threads start: glibc fixes its limit once eight arenas exist."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = mallopt(M_ARENA_MAX, arenas) == 1
    if not ok:
        log.warning("malloc arenas not limited", arenas=arenas)
    return ok
