"""``kind: degrades_less``: the method's error grows less than the baseline's along
an axis (``dt`` grows, or ``n_train`` shrinks), and is no worse where it is hardest."""

from __future__ import annotations

from cgflow.analysis.claims.core import choosable, paired_effect, pick, verdict
from cgflow.analysis.claims.paired import PairedKind


class DegradesLess(PairedKind):
    """[m(worse end) - m(better end)] - [b(worse end) - b(better end)], negative when
    the method degrades less. It also reports the plain difference at the worse end
    (``far_*``): a method that degrades less but is still no better than the baseline
    where the axis is hardest has not shown that it tolerates it, so ``holds`` needs
    that CI below zero as well, and a CI above zero there makes it ``does not hold``."""

    name = "degrades_less"
    doc = ("degrades_less: how much more the method's error grows than the baseline's "
           "along an axis")  # fmt: skip
    note = ("For a degrades_less claim, 'at the worse end' is the plain method - "
            "baseline difference at the axis's hardest cell; the claim holds only when "
            "both CIs lie below zero.")  # fmt: skip

    def cells(self, claim, part, fixed):
        choose = choosable(part, fixed)
        n_values, dt_values = choose.n_train.unique(), choose.dt.unique()
        if claim.along == "dt":
            n = pick(n_values, claim.n_train)
            worse, better = pick(dt_values, "max"), pick(dt_values, "min")
            cells = [{"n_train": n, "dt": worse}, {"n_train": n, "dt": better}]
        else:
            dt = pick(dt_values, claim.dt)
            worse, better = pick(n_values, "min"), pick(n_values, "max")
            cells = [{"n_train": worse, "dt": dt}, {"n_train": better, "dt": dt}]
        if worse == better or any(v is None for c in cells for v in c.values()):
            return f"needs two values of {claim.along}"
        return [(1.0, cells[0]), (-1.0, cells[1])]

    def decide(self, claim, lo, hi):
        return verdict(lo, hi, claim.margin)

    def finish(self, row, terms, seeds, metric, draws):
        # the worse end's cell is the first: method and baseline there
        far, flo, fhi = paired_effect(terms[:2], seeds, metric, draws)
        row.update(far_effect=far, far_ci_low=flo, far_ci_high=fhi)
        if row["verdict"] == "holds" and not fhi < 0:
            row["verdict"] = "does not hold" if flo > 0 else "undecided"
        return row


KIND = DegradesLess()
