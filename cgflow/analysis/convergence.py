"""Is a reference converged enough to score models on?

A molecular reference is one MD run (or a few). Its basin populations are only as
good as the number of independent visits to its slowest basin, and a model scored
on a reference that has not converged is scored on that run's accident. Two checks,
on each (system, mapping, temperature) whose reference is a time series:

- its slowest basin holds at least ``min_samples`` independent samples in both the
  training and the test run (``independent_samples`` of the basin relaxation that
  ``cgflow evaluate`` records: frames / (2 tau + 1));
- the training run's basin free energies agree with the test run's: no
  ``dF_<basin>_err_kT`` of the reference scored as a model has a 95 % CI that
  excludes zero.

A reference that fails either is flagged in ``benchmark.md``, and a claim read on it
is ``undecided (reference not converged)``. Exact samplers (the double wells) draw
independent samples of the exact distribution and are not checked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cgflow.analysis.claims import REFERENCE

MIN_BASIN_SAMPLES = 50
"""Independent samples of the slowest basin a reference run needs (the default of
config ``min_basin_samples``)."""
SIDES = (("samples", "training"), ("reference", "test"))
"""The bootstrap record's sides of a reference scored as a model: the training run
(its samples) and the test run (the reference)."""


def basin_relaxation(bootstrap: dict) -> dict[str, dict]:
    """The basin relaxation ``cgflow evaluate`` recorded for each run of a reference
    scored as a model (``metrics.json``'s ``bootstrap``), by run (``training``,
    ``test``); empty for a run that is not a time series."""
    return {label: (bootstrap.get(side) or {}).get("basin_relaxation") or {}
            for side, label in SIDES}  # fmt: skip


@dataclass(frozen=True)
class ReferenceCheck:
    """The convergence of one (system, mapping, temperature)'s reference runs.

    Attributes:
      system, mapping, temperature: where.
      independent_samples: of the slowest basin, by run (``training``, ``test``);
        NaN where a run visits one basin only.
      slowest_basin: by run.
      disagreeing: basins whose free energy (relative to the first basin) differs
        between the training and the test run beyond its 95 % CI, with that CI.
      min_samples: the threshold.
    """

    system: str
    mapping: str
    temperature: float
    independent_samples: dict
    slowest_basin: dict
    disagreeing: tuple
    min_samples: int

    @property
    def too_few(self) -> list[str]:
        return [run for run, n in self.independent_samples.items()
                if np.isfinite(n) and n < self.min_samples]  # fmt: skip

    @property
    def converged(self) -> bool:
        return not self.too_few and not self.disagreeing

    def reasons(self) -> str:
        out = [
            f"{run} run: {self.independent_samples[run]:.0f} independent samples of "
            f"{self.slowest_basin[run]} (< {self.min_samples})"
            for run in self.too_few
        ]
        out += [f"{basin}: training - test {effect:+.2f} [{lo:+.2f}, {hi:+.2f}] kT"
                for basin, effect, lo, hi in self.disagreeing]  # fmt: skip
        return "; ".join(out)


def reference_checks(df: pd.DataFrame, records: list,
                     min_samples: int = MIN_BASIN_SAMPLES) -> list[ReferenceCheck]:  # fmt: skip
    """A check per reference that is a time series (``records``: metrics.json of the
    reference scored as a model; ``df``: summary rows, for the basin errors' CIs)."""
    out = []
    for rec in records:
        run = rec.run
        if run.method != REFERENCE:
            continue
        relax = basin_relaxation(rec.bootstrap)
        if not relax["test"]:
            continue  # scored against an exact distribution, not a second run
        at = (df.system == run.system) & (df.mapping == run.mapping)
        rows = df[(df.method == REFERENCE) & at & (df.temperature == run.temperature)]
        basins = rows[rows.metric.str.startswith("dF_") & rows.metric.str.endswith("_err_kT")]
        disagreeing = tuple(
            (r.metric[len("dF_"): -len("_err_kT")], r.value, r.ci_low, r.ci_high)
            for r in basins.itertuples()
            if np.isfinite(r.ci_low) and np.isfinite(r.ci_high) and (r.ci_low > 0 or r.ci_high < 0)
        )  # fmt: skip
        counts = {k: float(r.get("independent_samples", math.nan)) for k, r in relax.items() if r}
        if not len(basins) and not np.isfinite(list(counts.values())).any():
            continue  # no basins (a liquid): nothing to converge
        out.append(ReferenceCheck(
            system=run.system, mapping=run.mapping, temperature=float(run.temperature),
            independent_samples=counts,
            slowest_basin={k: r.get("slowest_basin", "") for k, r in relax.items() if r},
            disagreeing=disagreeing, min_samples=min_samples,
        ))  # fmt: skip
    return out


def unconverged(checks: list[ReferenceCheck]) -> set[tuple[str, float]]:
    """(system, temperature) of every reference that failed its check."""
    return {(c.system, c.temperature) for c in checks if not c.converged}


def convergence_markdown(checks: list[ReferenceCheck]) -> str:
    """A benchmark.md section: each reference's check and, where it failed, why."""
    if not checks:
        return ""
    lines = [
        "## Reference convergence",
        "",
        "Each molecular reference's slowest basin: independent samples in the training "
        "and test runs (frames / (2 tau + 1)), and whether the two runs' basin free "
        f"energies agree within their 95 % CIs. A reference with fewer than "
        f"{checks[0].min_samples} independent samples in either run, or whose runs "
        "disagree, is not converged, and claims read on it are undecided.",
        "",
        "| system | mapping | T | training run | test run | verdict |",
        "|---|---|---:|---:|---:|---|",
    ]
    for c in sorted(checks, key=lambda c: (c.system, c.mapping, c.temperature)):
        cells = []
        for run in ("training", "test"):
            n = c.independent_samples.get(run, math.nan)
            cells.append(f"{n:.0f} ({c.slowest_basin.get(run, '')})" if np.isfinite(n) else "")
        verdict = "converged" if c.converged else f"**not converged**: {c.reasons()}"
        lines.append(f"| {c.system} | {c.mapping} | {c.temperature:g} | {cells[0]} | "
                     f"{cells[1]} | {verdict} |")  # fmt: skip
    return "\n".join(lines) + "\n\n"
