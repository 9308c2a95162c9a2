"""Collect every run's metrics into ``summary.csv`` (long format, with each run's 95 %
CI) and write the study's deliverables from them: the benchmark table
(``benchmark.csv``, ``benchmark.md``, from :mod:`cgflow.analysis.tables` and
:mod:`cgflow.analysis.markdown`), the paired differences between methods
(``differences.csv``), the claims (``claims.md``, ``claims.csv``) and the figures.

A run whose scores cannot be read (a missing or damaged ``metrics.json``,
``curves.npz`` or ``bootstrap.npz``) does not stop the aggregate: it is left out, listed with the
reason in ``failed_runs.csv``, ``benchmark.md`` and ``claims.md``, and each claim it
may bear on is ``undecided (runs failed)``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cgflow.analysis.claims import (
    MIN_CROSSING,
    MIN_SEEDS,
    claims_markdown,
    claims_table,
    run_key,
)
from cgflow.analysis.convergence import (
    MIN_BASIN_SAMPLES,
    convergence_markdown,
    reference_checks,
    unconverged,
)
from cgflow.analysis.figures import plot_claims, plot_errors, plot_profiles
from cgflow.analysis.markdown import (
    benchmark_markdown,
    ci_sides_markdown,
    crossing_markdown,
    differences_markdown,
    failed_markdown,
    pressure_markdown,
    speed_markdown,
    thermodynamics_markdown,
)
from cgflow.analysis.names import run_of_scores
from cgflow.analysis.records import FailedRun, MetricsRecord
from cgflow.analysis.tables import benchmark_table, noise_floors, paired_differences
from cgflow.io import atomic_write, load_dataset, read_json

COLUMNS = [
    "system", "mapping", "method", "n_train", "seed", "dt", "temperature", "metric", "value",
    "run_dir", "ci_low", "ci_high",
]  # fmt: skip


def collect(records: list[MetricsRecord]) -> pd.DataFrame:
    """One row per (run, metric), columns as in DESIGN.md, from metrics.json records."""
    rows = []
    for rec in records:
        run = rec.run.to_json()
        for metric, value in rec.metrics.items():
            lo, hi = rec.ci95.get(metric, (np.nan, np.nan))
            rows.append({**run, "metric": metric, "value": value, "ci_low": lo, "ci_high": hi})
    df = pd.DataFrame(rows, columns=COLUMNS)
    return df.sort_values(
        ["system", "mapping", "method", "n_train", "seed", "dt", "metric"],
        na_position="first",
        kind="stable",
    )


def primary_metrics(records: list[MetricsRecord]) -> dict[str, str]:
    """Each system's primary metric, as its evaluation declared it."""
    return {rec.run.system: rec.primary_metric for rec in records}


@dataclass(frozen=True)
class Scores:
    """Every run's scores as the aggregate reads them.

    Attributes:
      records: each readable run's metrics.json.
      curves: each of those runs' ``curves.npz`` arrays, in the same order.
      draws: their bootstrap draws (``bootstrap.npz``) by ``run_key``, where they
        have them.
      failed: the runs whose files are missing or damaged (``FailedRun``).
    """

    records: list
    curves: list
    draws: dict
    failed: list


def _draws(metrics_file: str) -> dict | None:
    """A run's bootstrap draws of its metrics (``bootstrap.npz`` beside its
    metrics.json); None where it has none."""
    path = Path(metrics_file).with_name("bootstrap.npz")
    if not path.is_file():
        return None
    draws, _ = load_dataset(path)
    return None if "empty" in draws else draws


def read_scores(metric_files: list[str]) -> Scores:
    """Every run's metrics.json with the curves and draws beside it; a run any of
    whose files is missing or damaged goes to ``failed`` with the error."""
    out = Scores(records=[], curves=[], draws={}, failed=[])
    for f in metric_files:
        try:
            rec = MetricsRecord.from_json(read_json(f), f)
            curves, _ = load_dataset(Path(f).with_name("curves.npz"))
            found = _draws(f)
        except (OSError, ValueError) as err:
            out.failed.append(FailedRun(path=str(f), reason=str(err), run=run_of_scores(f)))
            continue
        out.records.append(rec)
        out.curves.append(curves)
        if found is not None:
            out.draws[run_key(rec.run.to_json())] = found
    return out


def failed_table(failed: list[FailedRun]) -> pd.DataFrame:
    """``failed_runs.csv``: each failed run's path, what the path names and why."""
    rows = [{"path": f.path, **f.run, "reason": f.reason} for f in failed]
    return pd.DataFrame(rows, columns=["path", *FAILED_RUN_KEYS, "reason"])


FAILED_RUN_KEYS = ("system", "mapping", "temperature", "method", "n_train", "seed", "dt")


def aggregate_step(metric_files: list[str], out_csv: str, figures_dir: str,
                   order: list[str] = (), claims: list[dict] = (), min_seeds: int = MIN_SEEDS,
                   min_basin_samples: int = MIN_BASIN_SAMPLES,
                   min_replicas_crossing: float = MIN_CROSSING,
                   ) -> tuple[pd.DataFrame, list]:  # fmt: skip
    """Write the deliverables from ``metric_files``; returns summary.csv's table and
    the runs that could not be read (``FailedRun``)."""
    scores = read_scores(metric_files)
    records, draws, failed = scores.records, scores.draws, scores.failed
    if not records:
        raise ValueError("no run's scores could be read: "
                         + "; ".join(f.reason for f in failed[:3]))  # fmt: skip
    df = collect(records)
    primary = primary_metrics(records)
    out_csv = Path(out_csv)
    atomic_write(out_csv, lambda fh: df.to_csv(fh, index=False))
    figures = Path(figures_dir)
    figures.mkdir(parents=True, exist_ok=True)
    plot_profiles(records, scores.curves, figures)
    table = benchmark_table(df, primary, draws)
    units = {rec.run.system: rec.units for rec in records}
    plot_errors(table, df, units, figures)
    atomic_write(out_csv.with_name("benchmark.csv"), lambda fh: table.to_csv(fh, index=False))
    diffs = paired_differences(df, primary, draws, order)
    atomic_write(out_csv.with_name("differences.csv"), lambda fh: diffs.to_csv(fh, index=False))
    lost = failed_table(failed)
    atomic_write(out_csv.with_name("failed_runs.csv"), lambda fh: lost.to_csv(fh, index=False))
    checks = reference_checks(df, records, min_basin_samples)
    verdicts = claims_table(list(claims), df, primary, draws, min_seeds, unconverged(checks),
                            min_replicas_crossing, failed)  # fmt: skip
    atomic_write(out_csv.with_name("claims.csv"), lambda fh: verdicts.to_csv(fh, index=False))
    claims_text = "\n".join(
        filter(None, (claims_markdown(verdicts, min_seeds), failed_markdown(failed)))
    ).encode()
    atomic_write(out_csv.with_name("claims.md"), lambda fh: fh.write(claims_text))
    plot_claims(verdicts, figures / "claims.png")
    text = (
        failed_markdown(failed)
        + benchmark_markdown(table, noise_floors(df, primary, records))
        + convergence_markdown(checks)
        + differences_markdown(diffs)
        + crossing_markdown(df, min_replicas_crossing)
        + ci_sides_markdown(records)
        + pressure_markdown(df, draws)
        + thermodynamics_markdown(df, draws)
        + speed_markdown(records)
    ).encode()
    atomic_write(out_csv.with_name("benchmark.md"), lambda fh: fh.write(text))
    return df, failed
