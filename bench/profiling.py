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


IDLE_LEAVES = ("select", "wait", "block_thread", "sleep", "_wait_for_tstate_lock")


def summarize_collapsed(lines: list[str], top: int = 25) -> str:
    """Collapsed stacks ("f1;f2;f3 count") -> the `top` frames by inclusive and by self samples,
    in percent of the busy samples (a frame counted once per stack however often it recurs).
    Stacks that end waiting (an event loop's select, a condition's wait) are counted apart."""
    inclusive, own, total, idle = Counter(), Counter(), 0, 0
    for line in lines:
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_frame(f) for f in stack.split(";")]
        if frames[-1].split(" (")[0].rsplit(".", 1)[-1] in IDLE_LEAVES:
            idle += int(count)
            continue
        total += int(count)
        own[frames[-1]] += int(count)
        for f in set(frames):
            inclusive[f] += int(count)
    if not total:
        return f"no busy samples ({idle} waiting)"
    rows = [f"{total} busy samples ({idle} more were threads waiting, left out)", "",
            "inclusive %  frame"]
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


def summarize_cpuprofile(profile: dict, actions: int = 1, top: int = 25) -> str:
    """A Chrome DevTools CPU profile (CDP Profiler.stop) -> the `top` JavaScript functions by
    inclusive and by self time, in ms per action (`actions` inputs were profiled)."""
    nodes = {n["id"]: n for n in profile.get("nodes", [])}
    parent = {c: n["id"] for n in nodes.values() for c in n.get("children", [])}

    def name(node: dict) -> str:
        frame = node["callFrame"]
        where = frame.get("url", "").rsplit("/", 1)[-1]
        return f"{frame.get('functionName') or '(anonymous)'} ({where or 'native'})"

    deltas = profile.get("timeDeltas", [])
    inclusive, own = Counter(), Counter()
    for sample, dt in zip(profile.get("samples", []), deltas[1:] + [0]):
        own[name(nodes[sample])] += dt
        seen, node = set(), sample
        while node is not None:
            seen.add(name(nodes[node]))
            node = parent.get(node)
        for frame in seen:
            inclusive[frame] += dt
    per = lambda us: us / 1e3 / max(actions, 1)
    busy = sum(own.values()) - own.get("(idle) (native)", 0)
    rows = [f"{actions} inputs profiled; main thread busy {per(busy):.0f} ms per input", "",
            "inclusive ms/input  function (script)"]
    rows += [f"{per(v):18.1f}  {k}" for k, v in inclusive.most_common(top + 2)
             if k not in ("(root) (native)", "(idle) (native)")][:top]
    rows += ["", "self ms/input       function (script)"]
    rows += [f"{per(v):18.1f}  {k}" for k, v in own.most_common(top + 1)
             if k != "(idle) (native)"][:top]
    return "\n".join(rows)
