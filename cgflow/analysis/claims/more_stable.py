"""``kind: more_stable``: the method's CG runs blow up less often than the
baseline's at one (n_train, dt) cell, e.g. the largest time step (``dt: max``)."""

from __future__ import annotations

from cgflow.analysis import stats
from cgflow.analysis.claims.core import (
    at_cell,
    at_temperature,
    cell_text,
    fixed_cells,
    verdict,
)
from cgflow.analysis.claims.kind import ClaimKind

UNSTABLE = "unstable_fraction"
"""The metric column of a ``more_stable`` claim: the share of runs that blew up."""


class MoreStable(ClaimKind):
    """The share of the method's runs (seeds) in the claim's cell that blew up, minus
    the baseline's, with Newcombe's score interval for a difference of proportions
    (``stats.proportion_difference_ci``); negative: the method blows up less often.
    The seeds are the unit: a run blows up as a whole
    (:mod:`cgflow.simulate.langevin`), so ``n_seeds`` is the smaller side's number of
    runs, and neither the reference's convergence nor the replicas' crossing bears
    on it."""

    name = "more_stable"
    doc = ("more_stable: the method's runs blow up less often than the baseline's at "
           "one (n_train, dt) cell (set dt: max for the largest time step)")  # fmt: skip
    note = ("A more_stable claim's effect is the share of the method's runs that blew "
            "up minus the baseline's (metric unstable_fraction), with Newcombe's score "
            "CI.")  # fmt: skip
    reads_reference = False

    def problems(self, where, claim):
        out = super().problems(where, claim)
        if claim.baseline == "reference":
            out.append(f"{where}.baseline: a more_stable claim compares two methods' "
                       "CG runs; the reference has none")  # fmt: skip
        if claim.metric is not None:
            out.append(f"{where}.metric: a more_stable claim counts blown-up runs; "
                       "it has no metric")  # fmt: skip
        return out

    def evaluate(self, claim, df, draws, row):
        row = {**row, "metric": UNSTABLE}
        part = df[(df.system == claim.system) & (df.metric == "stable")
                  & df.method.isin([claim.method, claim.baseline])]  # fmt: skip
        part, where = at_temperature(claim, part)
        if part is None or not len(part):
            return {**row, "cells": where or "no runs of these methods",
                    "verdict": "undecided"}  # fmt: skip
        row["temperature"] = float(part.temperature.iloc[0])
        fixed = fixed_cells(part)
        cells = self.cells(claim, part, fixed)
        if isinstance(cells, str):
            return {**row, "cells": where + cells, "verdict": "undecided"}
        (_, cell), runs, counts = cells[0], [], []
        for method in (claim.method, claim.baseline):
            hit = at_cell(part, method, fixed.get(method, cell))
            counts.append((int((hit.value < 0.5).sum()), len(hit)))
            runs.append(f"{method} {len(hit) - counts[-1][0]}/{len(hit)}")
        row.update(cells=where + cell_text(cell), stable_runs=", ".join(runs))
        if min(n for _, n in counts) == 0:
            return {**row, "cells": row["cells"] + " (a side has no runs)",
                    "verdict": "undecided"}  # fmt: skip
        (x1, n1), (x2, n2) = counts
        lo, hi = stats.proportion_difference_ci(x1, n1, x2, n2)
        return {**row, "effect": x1 / n1 - x2 / n2, "ci_low": lo, "ci_high": hi,
                "n_seeds": min(n1, n2),
                "verdict": verdict(lo, hi, claim.margin)}  # fmt: skip


KIND = MoreStable()
