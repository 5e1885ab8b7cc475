"""explorer.allocator: the app's malloc settings and its heap trimmer (glibc only; elsewhere
every call is a harmless no-op)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from explorer import allocator

GLIBC = allocator._libc() is not None


def test_off_when_the_period_is_zero(monkeypatch):
    monkeypatch.setenv(allocator.TRIM_ENV, "0")
    assert allocator.trim_period() == 0 and allocator.start_trimming() is None
    monkeypatch.setenv(allocator.TRIM_ENV, "2.5")
    assert allocator.trim_period() == 2.5


@pytest.mark.skipif(not GLIBC, reason="glibc only")
def test_trimming_runs_in_a_daemon_thread_and_stops():
    thread = allocator.start_trimming(0.01)
    assert thread is not None and thread.daemon and thread.is_alive()
    time.sleep(0.05)
    thread.stop.set()
    thread.join(1.0)
    assert not thread.is_alive()


@pytest.mark.skipif(not GLIBC, reason="glibc only")
def test_trim_hands_freed_pages_back():
    """Memory freed in the middle of the heap stays resident until trim(): a fresh process
    fills the heap with small blocks, keeps one block in every 64 (so the heap cannot shrink
    from the top), frees the rest, and trim() lowers its RSS by most of what was freed."""
    code = """
import ctypes, sys
from explorer import allocator
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
rss = lambda: int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1])
blocks = [libc.malloc(4096) for _ in range(40000)]          # ~160 MB of 4 KB blocks
for i, b in enumerate(blocks):
    ctypes.memset(b, 1, 4096)
kept = [b for i, b in enumerate(blocks) if i % 64 == 63]
for i, b in enumerate(blocks):
    if i % 64 != 63:
        libc.free(b)
before = rss()
allocator.trim()
print(before, rss())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"MALLOC_ARENA_MAX": "1", "PATH": "/usr/bin:/bin",
                                          "PYTHONPATH": str(allocator.__file__).rsplit("/explorer", 1)[0]})
    before, after = map(int, out.stdout.split())
    assert before - after > 100_000                              # KB: most of ~157 MB freed
