"""What one benchmark row holds and how it is judged: percentiles, the `Result` row, the verdict.

A row is judged on its p50 against an upper-bound target in the row's unit: "met" when
p50 <= target ("met at p50, p95 over" when the p95 is not), "missed" otherwise. The benchmark
reports; nothing here raises on a missed target.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, fields
from typing import Callable, Sequence

UNIT_SCALE = {"ms": 1e3, "s": 1.0}      # seconds -> the unit (only time units scale)

MET, MISSED, MET_P50 = "met", "missed", "met at p50, p95 over"
NO_TARGET, NOT_RUN = "—", "not run"

SECTIONS = {
    "compute": "In-process compute (explorer only, no UI, no PNG)",
    "http": ("Server round trip over HTTP (includes the UI's figure / PNG encoding and "
             "~5-7 ms of HTTP/queue overhead)"),
    "browser": ("In a real browser (Playwright + Debian Chromium): input to canvas painted, the "
                "reverse run as the page draws it"),
    "overhead": "Sampler overhead (full loop / the same number of bare forward passes)",
    "startup": "Cold start and memory of `python app.py`",
}


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between closest ranks, as
    numpy.percentile's default ("linear"): position (n - 1) q / 100 of the sorted values."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be in 0..100, got {q}")
    ordered = sorted(float(v) for v in values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def verdict(p50: float | None, p95: float | None, target: float | None) -> str:
    """"met" / "missed" / "met at p50, p95 over" against an upper bound; "—" without a target,
    "not run" without a figure."""
    if target is None:
        return NO_TARGET
    if p50 is None:
        return NOT_RUN
    if p50 > target:
        return MISSED
    return MET_P50 if p95 is not None and p95 > target else MET


@dataclass
class Result:
    """One row of the table. Values are in `unit`; `target` is an upper bound in the same unit."""
    key: str                        # stable id, e.g. "compute.scrub"
    section: str                    # one of SECTIONS
    label: str                      # what was measured, in words
    unit: str                       # "ms", "s", "x" (a ratio) or "MiB"
    p50: float | None = None        # median (or the single value when n = 1)
    p95: float | None = None
    n: int = 0                      # calls measured
    target: float | None = None
    note: str = ""                  # what the figure includes, fallbacks, why it was skipped
    target_on: str = "p50"          # "p95": the target bounds the p95 (a frame interval's tail)

    @property
    def verdict(self) -> str:
        if self.target_on == "p95":
            return verdict(self.p95, None, self.target)
        return verdict(self.p50, self.p95, self.target)

    def to_dict(self) -> dict:
        return {**asdict(self), "verdict": self.verdict}

    @classmethod
    def from_dict(cls, data: dict) -> "Result":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @classmethod
    def from_seconds(cls, key: str, section: str, label: str, seconds: Sequence[float],
                     unit: str = "ms", target: float | None = None, note: str = "",
                     target_on: str = "p50") -> "Result":
        """A row from timings in seconds, shown in `unit` ("ms" or "s"); p95 only from 5 calls."""
        return cls.from_values(key, section, label, [s * UNIT_SCALE[unit] for s in seconds],
                               unit, target, note, target_on)

    @classmethod
    def from_values(cls, key: str, section: str, label: str, values: Sequence[float],
                    unit: str, target: float | None = None, note: str = "",
                    target_on: str = "p50") -> "Result":
        """A row from values already in `unit` (counts, bytes); p95 only from 5 values."""
        values = [float(v) for v in values]
        if not values:
            return cls.skipped(key, section, label, unit, "nothing was measured", target)
        return cls(key, section, label, unit, percentile(values, 50),
                   percentile(values, 95) if len(values) >= 5 else None, len(values), target,
                   note, target_on)

    @classmethod
    def skipped(cls, key: str, section: str, label: str, unit: str, reason: str,
                target: float | None = None) -> "Result":
        """A row that could not be measured here, with the reason in the note."""
        return cls(key, section, label, unit, None, None, 0, target, f"not run: {reason}")


def time_calls(fn: Callable[[int], object], n: int, warmup: int = 1) -> list[float]:
    """Seconds of each of n calls fn(0) .. fn(n - 1), after `warmup` untimed calls fn(0), ..."""
    for i in range(warmup):
        fn(i % max(n, 1))
    out = []
    for i in range(n):
        start = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - start)
    return out
