"""Text profiles to paste into BENCHMARKS.md: pyinstrument over one in-process measurement, or
py-spy attached to the app while one HTTP endpoint is called (what the UI adds: figures, PNGs).
Both tools are optional; a missing one is named with the command that installs it."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Callable


def pyinstrument_text(fn: Callable[[], object], interval: float = 0.001) -> str:
    """Run fn() under pyinstrument; its call tree as plain text."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        return "pyinstrument is not installed: pip install pyinstrument"
    profiler = Profiler(interval=interval)
    profiler.start()
    try:
        fn()
    finally:
        profiler.stop()
    return profiler.output_text(unicode=False, color=False, show_all=False)


def _frame(entry: str) -> str:
    """py-spy's raw frame "function (path/to/file.py:line)" -> "function (file.py)"."""
    name, _, where = entry.partition(" (")
    return f"{name} ({Path(where.split(':')[0]).name})" if where else name


def summarize_collapsed(lines: list[str], top: int = 25) -> str:
    """Collapsed stacks ("f1;f2;f3 count") -> the `top` frames by inclusive and by self samples,
    in percent of all samples (a frame counted once per stack however often it recurs)."""
    inclusive, own, total = Counter(), Counter(), 0
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_frame(f) for f in stack.split(";")]
        total += int(count)
        own[frames[-1]] += int(count)
        for f in set(frames):
            inclusive[f] += int(count)
    if not total:
        return "no samples"
    rows = [f"{total} samples", "", "inclusive %  frame"]
    rows += [f"{100 * c / total:10.1f}  {f}" for f, c in inclusive.most_common(top)]
    rows += ["", "self %       frame"]
    rows += [f"{100 * c / total:10.1f}  {f}" for f, c in own.most_common(top)]
    return "\n".join(rows)


def pyspy_text(pid: int, work: Callable[[], object], rate: int = 250, top: int = 25) -> str:
    """py-spy record of process `pid` (idle threads left out) while work() runs in this
    process; a summary of the hottest frames."""
    exe = shutil.which("py-spy")
    if exe is None:
        return "py-spy is not installed: pip install py-spy"
    out = Path(tempfile.mkstemp(prefix="bench-pyspy-", suffix=".txt")[1])
    spy = subprocess.Popen([exe, "record", "--pid", str(pid), "--rate", str(rate), "--format",
                            "raw", "--output", str(out), "--nonblocking"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)                                          # py-spy attaches
        work()
    finally:
        spy.send_signal(2)                                       # SIGINT: write and exit
        try:
            _, err = spy.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            spy.kill()
            _, err = spy.communicate()
    try:
        text = summarize_collapsed(out.read_text().splitlines(), top)
    except OSError:
        text = f"py-spy wrote no profile: {err.strip()[-300:]}"
    out.unlink(missing_ok=True)
    return text
