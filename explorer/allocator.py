"""The C allocator under a long-running server: keep freed memory from piling up as RSS.

Gradio runs handlers on dozens of threads, and PyTorch's CPU tensors come from glibc malloc.
Three things made the app's RSS climb under load although nothing leaked:

- glibc gives each thread an arena of its own, and each keeps what it freed: `configure`
  caps them (as MALLOC_ARENA_MAX does); it must run before any thread starts.
- glibc raises its mmap threshold each time a large block is freed (up to 32 MB), so after a
  while the activations of a big batch come from the heap instead of mmap and stay there:
  `configure` also pins the threshold at 128 KB (glibc's starting value), so blocks that
  large always go back to the system when freed.
- freed chunks in the middle of a heap stay resident until malloc_trim(0) hands their pages
  back (glibc only trims the top of the heap by itself): `start_trimming` calls it from a
  daemon thread every few seconds, off every request's path.

`python -m bench --load` measures the effect (BENCHMARKS.md, reliability). All are
no-ops where libc is not glibc. LATENT_EXPLORER_TRIM_S sets the trimming period in seconds
(0 turns it off).
"""

from __future__ import annotations

import ctypes
import os
import threading

M_MMAP_THRESHOLD, M_ARENA_MAX = -3, -8      # mallopt parameter numbers, from glibc's malloc.h
MMAP_THRESHOLD = 128 * 1024
TRIM_ENV = "LATENT_EXPLORER_TRIM_S"
DEFAULT_TRIM_S = 5.0


def _libc():
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt, libc.malloc_trim            # both glibc's
        return libc
    except (OSError, AttributeError):
        return None


def configure(arenas: int = 2) -> bool:
    """At most `arenas` malloc arenas, and blocks of 128 KB or more always mmap'ed (each unless
    MALLOC_ARENA_MAX / MALLOC_MMAP_THRESHOLD_ says otherwise). True when applied."""
    libc = _libc()
    if libc is None:
        return False
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    return bool(libc.mallopt(M_ARENA_MAX, arenas))


def trim() -> bool:
    """Hand the pages of freed heap memory back to the system now (malloc_trim(0)); True when
    some were released."""
    libc = _libc()
    return bool(libc is not None and libc.malloc_trim(0))


def trim_period() -> float:
    """Seconds between trims in an app started now (LATENT_EXPLORER_TRIM_S, else 5; 0: off)."""
    return max(0.0, float(os.environ.get(TRIM_ENV, DEFAULT_TRIM_S)))


def start_trimming(every_s: float | None = None) -> threading.Thread | None:
    """A daemon thread that trims every `every_s` seconds (default: LATENT_EXPLORER_TRIM_S, else
    5 s); None when off (0) or not glibc."""
    if every_s is None:
        every_s = trim_period()
    if every_s <= 0 or _libc() is None:
        return None
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every_s):
            trim()
    thread = threading.Thread(target=loop, name="malloc-trim", daemon=True)
    thread.stop = stop                                         # for tests
    thread.start()
    return thread
