"""The daemon's threads share two malloc arenas (hub.platform.malloc): counted by glibc's own report."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROBE = r"""
import ctypes, re, sys, tempfile, threading
from hub.platform.malloc import limit_arenas
print(limit_arenas())
libc = ctypes.CDLL("libc.so.6")
libc.fdopen.restype, libc.fdopen.argtypes = ctypes.c_void_p, [ctypes.c_int, ctypes.c_char_p]
libc.malloc_info.argtypes, libc.fflush.argtypes = [ctypes.c_int, ctypes.c_void_p], [ctypes.c_void_p]
go = threading.Event()
def work():
    blobs = [bytearray(2000) for _ in range(5000)]
    go.wait()
threads = [threading.Thread(target=work) for _ in range(12)]
for t in threads: t.start()
import time; time.sleep(0.5)
fd, path = tempfile.mkstemp()
out = libc.fdopen(fd, b"w"); libc.malloc_info(0, out); libc.fflush(out)
print(len(re.findall(r"<heap nr=", open(path).read())))
go.set()
"""

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc arenas are glibc's")


def _heaps(env: dict[str, str]) -> tuple[str, int]:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={**env, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    limited, heaps = done.stdout.split()
    return limited, int(heaps)


@glibc
def test_worker_threads_share_two_arenas() -> None:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    assert _heaps(env) == ("True", 2)


@glibc
def test_the_environment_wins() -> None:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    assert _heaps({**env, "MALLOC_ARENA_MAX": "3"}) == ("False", 3)


@glibc
def test_trim_calls_glibc() -> None:
    from hub.platform import malloc

    assert malloc._TRIM is not None and isinstance(malloc.trim(), bool)
