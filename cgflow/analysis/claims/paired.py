"""Claims on the paired difference method - baseline of an error over seeds: the
machinery the ``better``, ``degrades_less`` and ``within`` kinds share."""

from __future__ import annotations

import numpy as np

from cgflow.analysis.claims.core import (
    REFERENCE,
    Claim,
    at_cell,
    at_temperature,
    cell_keys,
    cell_text,
    fixed_cells,
    paired_effect,
    runs_of,
)
from cgflow.analysis.claims.kind import ClaimKind


class PairedKind(ClaimKind):
    """A claim on method - baseline of a metric, summed over signed cells (one for
    ``better`` and ``within``, two for ``degrades_less``), with its seed-level CI."""

    def decide(self, claim: Claim, lo: float, hi: float) -> str:
        raise NotImplementedError

    def evaluate(self, claim, df, draws, row):
        metric = row["metric"]
        part = df[(df.system == claim.system) & (df.metric == metric)]
        part = part[part.method.isin([claim.method, claim.baseline])]
        part, where = at_temperature(claim, part)
        if part is None:
            return {**row, "cells": where, "verdict": "undecided"}
        if len(part):
            row["temperature"] = float(part.temperature.iloc[0])
        # which methods run in one cell only is a matter of the study, not of which
        # runs were stable: an unstable cell must not move the comparison elsewhere
        fixed = fixed_cells(part)
        row["stable_runs"] = stable_runs(claim, part, fixed, self)
        none = where + ("no stable runs of these methods" if len(part)
                        else "no runs of these methods")  # fmt: skip
        part = part[np.isfinite(part.value)]
        cells = self.cells(claim, part, fixed) if len(part) else none
        if isinstance(cells, str):
            return {**row, "cells": cells, "verdict": "undecided"}
        shown = [] if set(fixed) >= {claim.method, claim.baseline} else [
            cell_text(c) for _, c in cells]  # fmt: skip
        shown += [f"{m}: {cell_text(c)}" for m, c in fixed.items()]
        row["cells"] = where + "; ".join(shown)
        found = paired_terms(claim, part, cells, fixed, draws)
        if found is None:  # a side has no stable run in a cell (unstable or not run)
            return {**row, "cells": row["cells"] + " (no seed with stable runs of both)",
                    "verdict": "undecided"}  # fmt: skip
        terms, seeds, draws = found
        effect, lo, hi = paired_effect(terms, seeds, metric, draws)
        row = {**row, "effect": effect, "ci_low": lo, "ci_high": hi, "n_seeds": len(seeds),
               "verdict": self.decide(claim, lo, hi), "_runs": runs_of(terms, seeds)}  # fmt: skip
        return self.finish(row, terms, seeds, metric, draws)

    def finish(self, row: dict, terms, seeds, metric, draws) -> dict:
        """A kind's last word on the row (``degrades_less``: the worse end)."""
        return row


def stable_runs(claim: Claim, part, fixed: dict, kind: ClaimKind) -> str:
    """'method s/n, baseline s/n': each side's runs with a finite metric (stable), of
    all its runs, in the claim's (first) cell (a degrades_less claim's worse end)."""
    cells = kind.cells(claim, part, fixed) if len(part) else ""
    if isinstance(cells, str):
        return ""
    out = []
    for method in (claim.method, claim.baseline):
        hit = at_cell(part, method, fixed.get(method, cells[0][1]))
        if len(hit):
            out.append(f"{method} {int(np.isfinite(hit.value).sum())}/{len(hit)}")
    return ", ".join(out)


def paired_terms(claim: Claim, part, cells, fixed: dict, draws: dict):
    """The signed terms of a claim's effect over the seeds where every cell of both
    sides ran stably, as (terms, seeds, draws); None without such seeds. A reference
    of one seed pairs with every seed of the other side (its draws repeated)."""
    sides = (claim.method, claim.baseline)
    broadcast = sides[1] == REFERENCE and part[part.method == REFERENCE].seed.nunique() == 1
    seeds = None
    for _, cell in cells:
        for m in sides[: 1 if broadcast else 2]:
            hit = set(at_cell(part, m, fixed.get(m, cell)).seed)
            seeds = hit if seeds is None else seeds & hit
    seeds = sorted(seeds)
    if not seeds:
        return None
    terms = []
    for sign, cell in cells:
        for m, s2 in ((sides[0], sign), (sides[1], -sign)):
            c = fixed.get(m, cell)
            hit = at_cell(part, m, c)
            keys = cell_keys(claim, hit, m, c)
            value_of = dict(zip(hit.seed, hit.value, strict=True))
            if m == REFERENCE and broadcast:
                ((ref_seed, value),) = value_of.items()
                value_of = dict.fromkeys(seeds, value)
                if keys + (str(ref_seed),) in draws:
                    found = draws[keys + (str(ref_seed),)]
                    draws = {**draws, **{keys + (str(s),): found for s in seeds}}
            terms.append((s2, keys, value_of))
    return terms, seeds, draws
