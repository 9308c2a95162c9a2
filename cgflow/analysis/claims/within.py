"""``kind: within``: non-inferiority, the method's error exceeds the baseline's by
less than a margin (e.g. a data-free generator against the noise floor)."""

from __future__ import annotations

from cgflow.analysis.claims.core import verdict
from cgflow.analysis.claims.paired import PairedKind


class Within(PairedKind):
    name = "within"
    doc = "within: the method's error exceeds the baseline's by less than margin"
    note = "A within claim holds when the CI lies below its margin."

    def problems(self, where, claim):
        out = super().problems(where, claim)
        if not claim.margin > 0:
            out.append(f"{where}.margin: a within claim needs a margin > 0")
        return out

    def line(self, claim):
        return claim.margin

    def decide(self, claim, lo, hi):
        return verdict(lo - claim.margin, hi - claim.margin)  # against the margin


KIND = Within()
