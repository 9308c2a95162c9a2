"""``kind: at_least``: a method's metric (e.g. ``latent_corr_x1``, how well a
generator's latent variable tracks the CV) is at least a threshold."""

from __future__ import annotations

import numpy as np

from cgflow.analysis.claims.core import (
    at_cell,
    at_temperature,
    cell_keys,
    cell_text,
    fixed_cells,
    paired_effect,
    pick,
    runs_of,
)
from cgflow.analysis.claims.kind import ClaimKind


class AtLeast(ClaimKind):
    """``holds`` when the CI of the method's metric (mean over seeds) lies above the
    threshold, ``does not hold`` when below."""

    name = "at_least"
    doc = "at_least: the method's metric is at least threshold"
    note = ("An at_least claim's effect is the metric itself, and it holds when the CI "
            "lies above the threshold (baseline column).")  # fmt: skip

    def problems(self, where, claim):
        out = []
        if claim.threshold is None:
            out.append(f"{where}: an at_least claim needs a threshold")
        if claim.baseline is not None:
            out.append(f"{where}.baseline: an at_least claim has no baseline")
        return out

    def line(self, claim):
        return claim.threshold

    def cells(self, claim, part, fixed):
        """The cell its method runs in, or the claim's ``n_train`` and ``dt`` picked
        among its runs."""
        if claim.method in fixed:
            return [(1.0, fixed[claim.method])]
        return [(1.0, {"n_train": pick(part.n_train.unique(), claim.n_train),
                       "dt": pick(part.dt.unique(), claim.dt)})]  # fmt: skip

    def evaluate(self, claim, df, draws, row):
        metric = claim.metric or row["metric"]
        row = {**row, "metric": metric, "baseline": f">= {claim.threshold:g}"}
        part = df[(df.system == claim.system) & (df.metric == metric)
                  & (df.method == claim.method) & np.isfinite(df.value)]  # fmt: skip
        part, where = at_temperature(claim, part)
        if part is None or not len(part):
            return {**row, "cells": where or f"no runs with {metric}", "verdict": "undecided"}
        row["temperature"] = float(part.temperature.iloc[0])
        ((_, cell),) = self.cells(claim, part, fixed_cells(part))
        hit = at_cell(part, claim.method, cell)
        row["cells"] = where + cell_text(cell)
        seeds = sorted(hit.seed)
        if not seeds:
            return {**row, "verdict": "undecided"}
        term = (1.0, cell_keys(claim, hit, claim.method, cell),
                dict(zip(hit.seed, hit.value, strict=True)))  # fmt: skip
        effect, lo, hi = paired_effect([term], seeds, metric, draws)
        t = claim.threshold
        decided = "undecided" if not (np.isfinite(lo) and np.isfinite(hi)) else (
            "holds" if lo > t else "does not hold" if hi < t else "undecided")  # fmt: skip
        return {**row, "effect": effect, "ci_low": lo, "ci_high": hi, "n_seeds": len(seeds),
                "verdict": decided, "_runs": runs_of([term], seeds)}  # fmt: skip


KIND = AtLeast()
