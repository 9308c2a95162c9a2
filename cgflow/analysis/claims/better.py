"""``kind: better``: the method's error is below the baseline's at one cell."""

from __future__ import annotations

from cgflow.analysis.claims.core import verdict
from cgflow.analysis.claims.paired import PairedKind


class Better(PairedKind):
    name = "better"
    doc = "better: method - baseline at one (n_train, dt) cell"
    note = ("Effect: method minus baseline of the system's primary metric (an error), "
            "mean over seeds; negative favours the method.")  # fmt: skip

    def decide(self, claim, lo, hi):
        return verdict(lo, hi, claim.margin)


KIND = Better()
