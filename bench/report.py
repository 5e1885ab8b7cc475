"""The benchmark's record: the machine it ran on, the rows, notes and profiles, written as a
markdown table (printed and saved as BENCHMARKS.md) and as JSON (`--json FILE`)."""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from bench.stats import SECTIONS, Result

REPO = Path(__file__).resolve().parent.parent
COLUMNS = ("measurement", "p50", "p95", "n", "target", "met?")
COUNTS = ("requests", "tasks")                    # units of things counted


# ---------------------------------------------------------------- the machine

def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def loadavg() -> tuple[float, float, float] | None:
    try:
        return tuple(float(v) for v in Path("/proc/loadavg").read_text().split()[:3])
    except (OSError, ValueError):
        return None


def _cpu_ticks() -> dict[int, tuple[int, str]]:
    """pid -> (utime + stime ticks, command line) of every readable process."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ticks = sum(int(v) for v in stat.rsplit(")", 1)[1].split()[11:13])
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            out[int(entry.name)] = (ticks, cmd.strip() or stat.split("(", 1)[1].split(")")[0])
        except (OSError, ValueError, IndexError):
            continue
    return out


def other_load(seconds: float = 1.0, top: int = 3) -> dict:
    """CPU used by other processes over `seconds` before the run: total in cores and the
    busiest processes (percent of one core, command line cut to 90 characters)."""
    before, start = _cpu_ticks(), time.monotonic()
    time.sleep(seconds)
    after, elapsed = _cpu_ticks(), time.monotonic() - start
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    me = os.getpid()
    used = {pid: (after[pid][0] - before[pid][0]) / hz / elapsed
            for pid in after if pid in before and pid != me}
    busiest = sorted(((cores, pid) for pid, cores in used.items() if cores > 0.02), reverse=True)
    return {"cores_busy": round(sum(used.values()), 2),
            "busiest": [{"pid": pid, "cpu_percent": round(100 * cores),
                         "command": after[pid][1][:90]} for cores, pid in busiest[:top]]}


def git_commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, text=True,
                              capture_output=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, text=True,
                               capture_output=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head or "unknown") + (" + uncommitted changes" if dirty else "")


def machine_info(torch_threads: int, app_threads: int | None) -> dict:
    """Cores, torch threads, CPU model, versions, date, commit and the load before the run."""
    import torch
    cores = os.cpu_count() or 1
    load = loadavg()
    others = other_load()
    return {"cores": cores, "torch_threads": torch_threads,
            "app_torch_threads": app_threads or "torch default",
            "cpu_model": cpu_model(), "python": platform.python_version(),
            "torch": torch.__version__,
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "commit": git_commit(), "loadavg_start": load,
            "other_cores_busy": others["cores_busy"], "busiest_others": others["busiest"],
            "busy": bool(others["cores_busy"] > 0.25 * cores
                         or (load is not None and load[0] > 0.5 * cores))}


# ---------------------------------------------------------------- the record

@dataclass
class Report:
    machine: dict
    options: dict
    results: list[Result]
    notes: list[str] = field(default_factory=list)
    profiles: dict[str, str] = field(default_factory=dict)     # measurement -> text profile

    def to_dict(self) -> dict:
        return {"machine": self.machine, "options": self.options,
                "results": [r.to_dict() for r in self.results], "notes": self.notes,
                "profiles": self.profiles}

    @classmethod
    def from_dict(cls, data: dict) -> "Report":
        return cls(data["machine"], data["options"],
                   [Result.from_dict(r) for r in data["results"]], list(data.get("notes", [])),
                   dict(data.get("profiles", {})))

    def missed(self) -> list[Result]:
        return [r for r in self.results if r.verdict == "missed"]


def write_json(report: Report, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n")
    return path


def read_json(path: str | Path) -> Report:
    return Report.from_dict(json.loads(Path(path).read_text()))


# ---------------------------------------------------------------- markdown

def format_value(value: float | None, unit: str) -> str:
    """A figure with its unit and sensible digits: 0.42 ms, 13.1 ms, 812 ms, 1.23 s, 1.012x."""
    if value is None:
        return "—"
    if unit == "x":
        return f"{value:.3f}x"
    if unit == "MiB":
        return f"{value:.0f} MiB"
    if unit in COUNTS:
        return f"{value:.0f} {unit}" if float(value).is_integer() else f"{value:.1f} {unit}"
    digits = 2 if abs(value) < 10 else 1 if abs(value) < 100 else 0
    return f"{value:.{digits}f} {unit}"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def results_table(results: list[Result]) -> str:
    """A markdown table: measurement | p50 | p95 | n | target | met? (the note under the name)."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in results:
        name = f"{r.label}<br><sub>{_cell(r.note)}</sub>" if r.note else r.label
        target = "—" if r.target is None else \
            f"{'p95 ' if r.target_on == 'p95' else ''}≤ {format_value(r.target, r.unit)}"
        verdict = f"**{r.verdict}**" if r.verdict == "missed" else r.verdict
        lines.append("| " + " | ".join(_cell(c) for c in (
            name, format_value(r.p50, r.unit), format_value(r.p95, r.unit), r.n or "—", target,
            verdict)) + " |")
    return "\n".join(lines)


def machine_lines(machine: dict) -> list[str]:
    load = machine.get("loadavg_start")
    busiest = "; ".join(f"{p['cpu_percent']}% {p['command']}"
                        for p in machine.get("busiest_others", []))
    loaded = ("**yes: other processes were loading the CPU, so the figures are noisy and slower "
              "than on an idle machine**" if machine.get("busy") else "no (idle machine)")
    return [
        f"- machine: {machine.get('cores')} cores, {machine.get('cpu_model')}; torch "
        f"{machine.get('torch')}, torch threads {machine.get('torch_threads')} in-process (its "
        f"rows run in a worker thread), app: {machine.get('app_torch_threads')}; "
        f"Python {machine.get('python')}",
        f"- date {machine.get('date')}, commit {machine.get('commit')}",
        f"- load at start: loadavg {' '.join(f'{v:.2f}' for v in load) if load else 'unknown'}; "
        f"other processes used {machine.get('other_cores_busy')} cores in the second before the "
        f"run{f' ({busiest})' if busiest else ''}. Loaded: {loaded}",
    ]


# the sections a full `python -m bench` writes (to_markdown); the others of BENCHMARKS.md are
# each another module's (bench.load, bench.hardening, page_run, page_eps, train_ddp) and kept
REPORT_SECTIONS = (*(f"## {heading}" for heading in SECTIONS.values()), "## Summary",
                   "## Notes", "## Profile:")


def to_markdown(report: Report, title: str = "Benchmarks") -> str:
    """The whole report: header, one table per section, notes, profiles."""
    opts = report.options
    out = [f"# {title}", "",
           "Written by `python -m bench` "
           f"({' '.join(opts.get('argv', [])) or 'no options'}); do not edit by hand. "
           "p50 / p95 over n calls; a row meets its target when its p50 is at or under it "
           "(\"met at p50, p95 over\" flags a slow tail), or its p95 where the target says "
           "p95.", ""]
    out += machine_lines(report.machine) + [""]
    for section, heading in SECTIONS.items():
        rows = [r for r in report.results if r.section == section]
        if rows:
            out += [f"## {heading}", "", results_table(rows), ""]
    missed = report.missed()
    out += ["## Summary", ""]
    judged = lambda r: r.p95 if r.target_on == "p95" else r.p50          # noqa: E731
    out.append("Missed: " + ", ".join(f"{r.label} ({format_value(judged(r), r.unit)} against "
                                      f"{'p95 ' if r.target_on == 'p95' else ''}"
                                      f"≤ {format_value(r.target, r.unit)})" for r in missed)
               if missed else "Every measured target was met.")
    out.append("")
    if report.notes:
        out += ["## Notes", ""] + [f"- {n}" for n in report.notes] + [""]
    for name, text in report.profiles.items():
        out += [f"## Profile: {name}", "", "```", text.rstrip(), "```", ""]
    return "\n".join(out)


# ---------------------------------------------------------------- one section of BENCHMARKS.md

def _level2_spans(text: str) -> list[tuple[int, int, str]]:
    """(first line, end line, heading) of every "## " section (code fences skipped)."""
    lines, starts, fenced = text.splitlines(), [], False
    for i, line in enumerate(lines):
        fenced ^= line.startswith("```")
        if not fenced and line.startswith("## "):
            starts.append(i)
    return [(s, e, lines[s]) for s, e in zip(starts, starts[1:] + [len(lines)])]


def find_section(text: str, prefix: str) -> str | None:
    """The first "## " section whose heading starts with `prefix` (to the next "## "), or None."""
    lines = text.splitlines()
    for start, end, heading in _level2_spans(text):
        if heading.startswith(prefix):
            return "\n".join(lines[start:end]).rstrip() + "\n"
    return None


def replace_section(text: str, section: str, prefix: str) -> str:
    """`text` with its "## " sections whose heading starts with `prefix` replaced by `section`
    (written where the first was); with none, `section` goes before "## Summary", else at the
    end. Every other line is kept as it was."""
    return merge_sections(text, section, (prefix,))


def _split(text: str) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """(the lines before the first "## " heading, [(heading, its lines)] of every section)."""
    lines, spans = text.splitlines(), _level2_spans(text)
    head = lines[:spans[0][0]] if spans else lines
    return head, [(heading, lines[start:end]) for start, end, heading in spans]


def merge_sections(old: str, new: str, owned: Sequence[str]) -> str:
    """`old` with what a writer owns replaced by `new`; every other line of `old` is kept.

    A section is owned when its heading starts with one of `owned` (each section of `new` must
    be). The old owned sections go; each new one takes the place of the first old one of its
    prefix, else follows the new section before it, else (the first) goes before "## Summary",
    or at the end. When `new` has text before its first "## " (a whole report's title and
    machine lines), it replaces `old`'s."""
    def prefix(heading: str) -> str | None:
        return next((p for p in owned if heading.startswith(p)), None)

    old_head, old_sections = _split(old)
    new_head, new_sections = _split(new)
    places: dict[str, list[list[str]]] = {}     # prefix -> the new sections written in its place
    slots: list[list[list[str]]] = []            # the file, in order: each a list of sections
    headings: list[str] = []                     # the old heading each slot began as
    for heading, lines in old_sections:
        key = prefix(heading)
        if key is None:
            slots.append([lines])
        elif key not in places:
            slots.append(places.setdefault(key, []))
        else:
            continue
        headings.append(heading)
    last = None
    for heading, lines in new_sections:
        key = prefix(heading)
        if key is None:
            raise ValueError(f"{heading!r} starts with none of the headings written: {list(owned)}")
        place = places.get(key, last)
        if place is None:
            place = []
            slots.insert(headings.index("## Summary") if "## Summary" in headings
                         else len(slots), place)
        places.setdefault(key, place).append(_strip_blank(lines) + [""])
        last = place
    out = list(new_head if any(line.strip() for line in new_head) else old_head)
    for slot in slots:
        for lines in slot:
            if out and out[-1].strip():            # a blank line before every heading
                out.append("")
            out += lines
    return "\n".join(out).rstrip("\n") + "\n"


def _strip_blank(lines: list[str]) -> list[str]:
    """`lines` without the blank lines at their end."""
    end = len(lines)
    while end and not lines[end - 1].strip():
        end -= 1
    return lines[:end]


def write_sections(path: str | Path, text: str, owned: Sequence[str]) -> Path:
    """Put `text` into the markdown file at `path` (begun when missing) by merge_sections: only
    the sections whose headings start with one of `owned` are rewritten. Every writer of
    BENCHMARKS.md goes through here, so none drops the sections of another."""
    path = Path(path)
    path.write_text(merge_sections(path.read_text() if path.is_file() else "", text, owned))
    return path
