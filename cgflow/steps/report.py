"""``cgflow report``: a documentation page from a finished study's own outputs.

The page holds the study's ``claims.md`` and ``benchmark.md`` as they were written,
its figures, and a record of what made them: the command, the commit of the
working tree that ran it, the machine, the package versions, and the wall and CPU
time (from ``/usr/bin/time -v`` where given, and Snakemake's per-job benchmarks).
Nobody types a measured number into the documentation: a results page is
regenerated, never edited.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

from cgflow.io import atomic_write
from cgflow.runtime import cpu_model, total_memory

PACKAGES = ("cgflow", "jax", "jaxlib", "flax", "optax", "jax-md", "openmm", "snakemake",
            "numpy", "scipy", "pymbar", "mdtraj", "pandas")  # fmt: skip
"""The packages whose versions a results page records."""
STUDY_FILES = ("claims.md", "benchmark.md", "claims.csv", "benchmark.csv")
"""What a study's results folder must hold for a page."""
TIME_FIELDS = {
    "Elapsed (wall clock) time (h:mm:ss or m:ss)": "wall",
    "User time (seconds)": "user_s",
    "System time (seconds)": "system_s",
    "Maximum resident set size (kbytes)": "max_rss_kb",
    "Command being timed": "command",
}


def _seconds(clock: str) -> float:
    """Seconds of GNU time's h:mm:ss or m:ss.ss."""
    parts = [float(p) for p in clock.strip().split(":")]
    return sum(p * 60**i for i, p in enumerate(reversed(parts)))


def parse_time_log(path: Path) -> dict:
    """Wall, user and system time, peak memory and the command of a ``/usr/bin/time
    -v`` log; ValueError naming the file when it is not one."""
    found = {}
    for line in Path(path).read_text(errors="replace").splitlines():
        key, _, value = line.strip().partition(": ")
        if key in TIME_FIELDS:
            found[TIME_FIELDS[key]] = value.strip().strip('"')
    if "wall" not in found or "user_s" not in found:
        raise ValueError(f"{path}: not the output of /usr/bin/time -v (no wall or user time)")
    return {
        "wall_s": _seconds(found["wall"]),
        "user_s": float(found["user_s"]),
        "system_s": float(found.get("system_s", 0.0)),
        "max_rss_mb": float(found.get("max_rss_kb", 0.0)) / 1024,
        "command": found.get("command", ""),
    }


def combined_time_logs(paths) -> dict:
    """The time of a study run in several invocations (e.g. resumed after an
    interruption): wall, user and system time summed, the largest peak memory, the
    first command, and how many invocations; ``parse_time_log``'s errors for each."""
    logs = [parse_time_log(p) for p in paths]
    if not logs:
        return {}
    return {
        "wall_s": sum(t["wall_s"] for t in logs),
        "user_s": sum(t["user_s"] for t in logs),
        "system_s": sum(t["system_s"] for t in logs),
        "max_rss_mb": max(t["max_rss_mb"] for t in logs),
        "command": logs[0]["command"],
        "invocations": len(logs),
    }


def job_benchmarks(folder: Path) -> dict:
    """Jobs and their summed wall and CPU seconds from Snakemake's ``benchmark:``
    files under ``folder`` (one TSV per job: s, ..., cpu_time)."""
    jobs, wall, cpu = 0, 0.0, 0.0
    for path in sorted(Path(folder).rglob("*.tsv")) if Path(folder).is_dir() else []:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        for row in rows[-1:]:  # a repeated benchmark keeps its last
            jobs += 1
            wall += float(row.get("s") or 0.0)
            cpu += float(row.get("cpu_time") or 0.0)
    return {"jobs_benchmarked": jobs, "jobs_wall_s": wall, "jobs_cpu_s": cpu}


def _git(folder: Path, *args: str) -> str:
    try:
        out = subprocess.run(["git", "-C", str(folder), *args], capture_output=True,
                             text=True, timeout=30, check=True)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip()


def _gpus() -> list[str]:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30, check=True)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


def machine() -> dict:
    """The machine a page is generated on (where the study ran, when run in place)."""
    total = total_memory()
    return {
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": None if total is None else round(total / 1024**3, 1),
        "gpus": _gpus(),
        "python": platform.python_version(),
    }


def versions() -> dict:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def _demote(markdown: str) -> str:
    """Headings one level down (outside code fences), so a study's page nests them."""
    out, fenced = [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        out.append("#" + line if not fenced and re.match(r"#{1,5} ", line) else line)
    return "\n".join(out)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h} h {m} min {s} s" if h else f"{m} min {s} s"


def _check_inputs(results: Path, config: Path | None, time_logs: list[Path]) -> None:
    if not results.is_dir():
        raise ValueError(f"{results}: not a folder (expected a study's results/)")
    missing = [f for f in STUDY_FILES if not (results / f).is_file()]
    if missing:
        raise ValueError(f"{results}: no {', '.join(missing)} (has the study's aggregate run?)")
    for path, what in ((config, "config"), *((t, "time log") for t in time_logs)):
        if path is not None and not Path(path).is_file():
            raise ValueError(f"{path}: {what} file not found")


def build_record(results: Path, config: Path | None, command: str | None,
                 time_logs: list[Path], note: str | None = None) -> dict:  # fmt: skip
    """What made the study in ``results``: command, commit, machine, versions, time
    (summed over ``time_logs``, one per invocation)."""
    root = results.resolve().parent
    commit = _git(root, "rev-parse", "HEAD")
    dirty = bool(_git(root, "status", "--porcelain", "--untracked-files=no"))
    timing = combined_time_logs(time_logs)
    record = {
        "command": command or timing.get("command") or "",
        "note": note or "",
        "config": str(config) if config else "",
        "config_sha256": hashlib.sha256(Path(config).read_bytes()).hexdigest() if config else "",
        "commit": commit,
        "commit_modified": dirty,
        "finished": dt.datetime.fromtimestamp((results / "claims.md").stat().st_mtime,
                                              dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "versions": versions(),
        "time": {k: v for k, v in timing.items() if k != "command"},
        **job_benchmarks(root / "benchmarks"),
    }  # fmt: skip
    wall = record["time"].get("wall_s")
    record["summary"] = ", ".join(
        p
        for p in (
            f"commit {commit[:12]}" + (" (modified)" if dirty else "") if commit else "",
            f"{record['machine']['cores']} cores ({record['machine']['cpu']})",
            ", ".join(record["machine"]["gpus"]),
            f"{_duration(wall)} wall" if wall else "",
            f"finished {record['finished']}",
        )
        if p  # fmt: skip
    )
    return record


def _record_table(record: dict) -> list[str]:
    m, t = record["machine"], record["time"]
    rows = [
        ("command", f"`{record['command']}`" if record["command"] else "not recorded"),
        ("config", f"`{record['config']}` (sha256 {record['config_sha256'][:12]})"
         if record["config"] else "not recorded"),
        ("commit", (record["commit"] or "not a git checkout")
         + (" with uncommitted changes" if record["commit_modified"] else "")),
        ("finished", record["finished"]),
        ("machine", f"{m['cores']} cores, {m['cpu']}, {m['memory_gb']} GB, {m['platform']}"
         + (f"; GPUs: {', '.join(m['gpus'])}" if m["gpus"] else "; no GPU")),
    ]  # fmt: skip
    if record.get("note"):
        rows.append(("note", record["note"]))
    if t:
        rows += [
            (
                "wall time",
                _duration(t["wall_s"])
                + (f" over {t['invocations']} invocations" if t["invocations"] > 1 else ""),
            ),
            ("CPU time", f"{t['user_s']:.0f} s user, {t['system_s']:.0f} s system"),
            ("peak memory (one process)", f"{t['max_rss_mb']:.0f} MB"),
        ]
    else:
        rows.append(("wall time", "not recorded (run the study under /usr/bin/time -v)"))
    if record["jobs_benchmarked"]:
        rows.append(("jobs", f"{record['jobs_benchmarked']} benchmarked, "
                             f"{record['jobs_cpu_s']:.0f} CPU-s in their benchmarks"))  # fmt: skip
    v = record["versions"]
    rows.append(("packages", ", ".join(f"{k} {x}" for k, x in v.items() if x)))
    return ["| | |", "|---|---|", *(f"| {k} | {x} |" for k, x in rows)]


def _as_list(value) -> list:
    if value is None:
        return []
    return [value] if isinstance(value, str | Path) else list(value)


def report_step(results: str | Path, out: str | Path, config: str | Path | None = None,
                command: str | None = None, time_log=None,
                title: str | None = None, note: str | None = None) -> Path:  # fmt: skip
    """Write a results page ``out`` (Markdown) and its folder beside it (``out``
    without suffix: figures, claims.csv, benchmark.csv, record.json) from the study
    folder ``results``. ``time_log``: the ``/usr/bin/time -v`` output of the study's
    command, or a list of them for a study run in several invocations (summed).

    Returns:
      The page's path.
    """
    results, out = Path(results), Path(out)
    config = Path(config) if config else None
    time_logs = [Path(t) for t in _as_list(time_log)]
    _check_inputs(results, config, time_logs)
    if out.suffix != ".md":
        raise ValueError(f"{out}: a results page is a Markdown file (.md)")
    record = build_record(results, config, command, time_logs, note)
    folder = out.with_suffix("")
    staged = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(staged, ignore_errors=True)
    (staged / "figures").mkdir(parents=True)
    for name in ("claims.csv", "benchmark.csv"):
        shutil.copy2(results / name, staged / name)
    figures = sorted((results / "figures").glob("*.png")) if (results / "figures").is_dir() else []
    for fig in figures:
        shutil.copy2(fig, staged / "figures" / fig.name)
    (staged / "record.json").write_text(json.dumps(record, indent=2) + "\n")
    name = title or out.stem
    lines = [
        f"# Results: {name}",
        "",
        "Generated by `cgflow report` from the study's own outputs; do not edit. "
        f"The tables and figures are the study's; its record: {record['summary']}.",
        "",
        *_record_table(record),
        "",
        _demote((results / "claims.md").read_text()).rstrip(),
        "",
        "## Benchmark",
        "",
        _demote((results / "benchmark.md").read_text()).rstrip(),
        "",
        "## Figures",
        "",
    ]
    for fig in figures:
        lines += [f"![{fig.stem}]({folder.name}/figures/{fig.name})", ""]
    if not figures:
        lines.append("The study made no figures.")
    shutil.rmtree(folder, ignore_errors=True)
    staged.rename(folder)
    text = "\n".join(lines).rstrip() + "\n"
    atomic_write(out, lambda fh: fh.write(text.encode()))
    return out
