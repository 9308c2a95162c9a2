"""The interface of a kind of claim: what it needs in the config, which cells it
reads, how it is evaluated and explained. Each kind is one module
(:mod:`cgflow.analysis.claims.registry` lists them)."""

from __future__ import annotations

from cgflow.analysis.claims.core import Claim, one_cell


class ClaimKind:
    """A kind of claim.

    Attributes:
      name: the config's ``kind``.
      doc: one line on what it tests, for the schema and the docs.
      note: the sentence of ``claims.md`` that explains its effect and verdict.
      reads_reference: whether its verdict rests on the test reference (then a
        claim read on an unconverged reference is undecided).
    """

    name = ""
    doc = ""
    note = ""
    reads_reference = True

    def problems(self, where: str, claim: Claim) -> list[str]:
        """What the config entry ``claim`` lacks or has in excess (``where``: its
        place in the config). The default: a baseline, and no threshold."""
        out = []
        if claim.baseline is None:
            out.append(f"{where}: a {self.name} claim needs a baseline")
        if claim.threshold is not None:
            out.append(f"{where}.threshold: only an at_least claim has one")
        return out

    def line(self, claim: Claim) -> float:
        """What the effect's CI is compared with (the ``line`` column)."""
        return 0.0

    def cells(self, claim: Claim, part, fixed: dict) -> list[tuple[float, dict]] | str:
        """(sign, {n_train, dt}) of the cells the claim reads among the rows ``part``
        of its methods (``fixed``: methods run in one cell), or why there are none.
        The default: the one cell of the claim's ``n_train`` and ``dt``."""
        return one_cell(claim, part, fixed)

    def evaluate(self, claim: Claim, df, draws: dict, row: dict) -> dict:
        """The claim's row of the claims table, from the study's rows ``df`` and
        bootstrap draws; ``row`` is the empty row with its system, metric and line.
        The row may carry ``_runs``: the run keys it read."""
        raise NotImplementedError
