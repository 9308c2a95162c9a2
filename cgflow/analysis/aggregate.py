"""Collect every run's metrics into ``summary.csv`` (long format, with each run's 95 %
CI) and write the study's deliverables from them: the benchmark table
(``benchmark.csv``, ``benchmark.md``, from :mod:`cgflow.analysis.tables` and
:mod:`cgflow.analysis.markdown`), the paired differences between methods
(``differences.csv``), the claims (``claims.md``, ``claims.csv``) and the figures."""

from __future__ import annotations

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
    pressure_markdown,
    speed_markdown,
    thermodynamics_markdown,
)
from cgflow.analysis.records import MetricsRecord
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


def load_draws(metric_files: list[str], records: list[MetricsRecord]) -> dict[tuple, dict]:
    """Each run's bootstrap draws of its metrics (``bootstrap.npz`` beside its
    metrics.json), by ``run_key``; runs without draws are left out."""
    out = {}
    for f, rec in zip(metric_files, records, strict=True):
        path = Path(f).with_name("bootstrap.npz")
        if path.is_file():
            draws, _ = load_dataset(path)
            if "empty" not in draws:
                out[run_key(rec.run.to_json())] = draws
    return out


def _metrics_record(path: str) -> MetricsRecord:
    """A metrics.json, checked to be one (ValueError naming the file)."""
    return MetricsRecord.from_json(read_json(path), path)


def aggregate_step(metric_files: list[str], out_csv: str, figures_dir: str,
                   order: list[str] = (), claims: list[dict] = (), min_seeds: int = MIN_SEEDS,
                   min_basin_samples: int = MIN_BASIN_SAMPLES,
                   min_replicas_crossing: float = MIN_CROSSING) -> pd.DataFrame:  # fmt: skip
    records = [_metrics_record(f) for f in metric_files]
    df = collect(records)
    draws = load_draws(metric_files, records)
    primary = primary_metrics(records)
    out_csv = Path(out_csv)
    atomic_write(out_csv, lambda fh: df.to_csv(fh, index=False))
    figures = Path(figures_dir)
    figures.mkdir(parents=True, exist_ok=True)
    plot_profiles(metric_files, records, figures)
    table = benchmark_table(df, primary, draws)
    units = {rec.run.system: rec.units for rec in records}
    plot_errors(table, df, units, figures)
    atomic_write(out_csv.with_name("benchmark.csv"), lambda fh: table.to_csv(fh, index=False))
    diffs = paired_differences(df, primary, draws, order)
    atomic_write(out_csv.with_name("differences.csv"), lambda fh: diffs.to_csv(fh, index=False))
    checks = reference_checks(df, records, min_basin_samples)
    verdicts = claims_table(list(claims), df, primary, draws, min_seeds, unconverged(checks),
                            min_replicas_crossing)  # fmt: skip
    atomic_write(out_csv.with_name("claims.csv"), lambda fh: verdicts.to_csv(fh, index=False))
    claims_text = claims_markdown(verdicts, min_seeds).encode()
    atomic_write(out_csv.with_name("claims.md"), lambda fh: fh.write(claims_text))
    plot_claims(verdicts, figures / "claims.png")
    text = (
        benchmark_markdown(table, noise_floors(df, primary, records))
        + convergence_markdown(checks)
        + differences_markdown(diffs)
        + crossing_markdown(df, min_replicas_crossing)
        + ci_sides_markdown(records)
        + pressure_markdown(df, draws)
        + thermodynamics_markdown(df, draws)
        + speed_markdown(records)
    ).encode()
    atomic_write(out_csv.with_name("benchmark.md"), lambda fh: fh.write(text))
    return df
