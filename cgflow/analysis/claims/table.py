"""The claims table: each claim's row from its kind, the guards that leave a claim
undecided (too few seeds, an unconverged reference, replicas that did not cross),
its Markdown, and the cells a ``runs: claimed`` system must run."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cgflow.analysis.claims import registry
from cgflow.analysis.claims.core import (
    COLUMNS,
    MIN_SEEDS,
    REFERENCE,
    Claim,
    at_temperature,
    fixed_cells,
    replicas_crossing,
)


def empty_row(claim: Claim, metric: str) -> dict:
    """A claim's row before it is read: no effect, no CI, no seeds."""
    row = {"system": claim.system, "method": claim.method, "baseline": claim.baseline or "",
           "kind": claim.kind}  # fmt: skip
    row.update(claim=claim.name, temperature=np.nan, metric=metric, cells="",
               effect=np.nan, ci_low=np.nan, ci_high=np.nan, far_effect=np.nan,
               far_ci_low=np.nan, far_ci_high=np.nan, n_seeds=0,
               line=registry.get(claim.kind).line(claim), stable_runs="")  # fmt: skip
    return row


@dataclass(frozen=True)
class Guards:
    """What leaves a claim undecided whatever its CI.

    Attributes:
      min_seeds: fewer seeds than this: ``undecided (n seeds)``.
      unconverged: (system, temperature) pairs whose reference is not converged:
        ``undecided (reference not converged)`` for a kind that reads the reference.
      min_crossing, crossing: a run it reads whose ``replicas_crossing`` (by
        ``run_key``; ``replicas_crossing(df)`` when None) is below ``min_crossing``:
        ``undecided (replicas did not cross)``.
      failed: runs whose scores could not be read (``FailedRun``); one that may bear on
        the claim: ``undecided (runs failed)``.
    """

    min_seeds: int = MIN_SEEDS
    unconverged: frozenset = frozenset()
    min_crossing: float = 0.0
    crossing: dict | None = None
    failed: tuple = ()


def evaluate_claim(claim: Claim | dict, df: pd.DataFrame, primary: dict, draws: dict,
                   guards: Guards = Guards()) -> dict:  # fmt: skip
    """One row of the claims table (COLUMNS) for ``claim`` (a validated config entry):
    its verdict from its kind, then ``undecided (...)`` with every reason of
    ``guards`` that applies."""
    claim = Claim.of(claim)
    kind = registry.get(claim.kind)
    row = empty_row(claim, claim.metric or primary.get(claim.system, ""))
    row = kind.evaluate(claim, df, draws, row)
    runs = row.pop("_runs", [])
    n = int(row["n_seeds"])
    reasons = [f"{n} seed{'s' if n > 1 else ''}"] if 0 < n < guards.min_seeds else []
    if kind.reads_reference and (row["system"], row["temperature"]) in guards.unconverged:
        reasons.append("reference not converged")
    if guards.min_crossing > 0:
        crossing = replicas_crossing(df) if guards.crossing is None else guards.crossing
        if any(crossing.get(r, 1.0) < guards.min_crossing for r in runs):
            reasons.append("replicas did not cross")
    sides = (claim.method, claim.baseline or claim.method)
    if any(f.bears_on(claim.system, sides) for f in guards.failed):
        reasons.append("runs failed")
    if reasons:
        row["verdict"] = f"undecided ({'; '.join(reasons)})"
    return row


def claims_table(claims: list[Claim | dict], df: pd.DataFrame, primary: dict, draws: dict,
                 min_seeds: int = MIN_SEEDS, unconverged=frozenset(),
                 min_crossing: float = 0.0, failed=()) -> pd.DataFrame:  # fmt: skip
    """The claims table (COLUMNS), a row per claim; ``failed``: the runs whose scores
    could not be read (the other arguments: ``Guards``)."""
    guards = Guards(min_seeds, frozenset(unconverged), min_crossing, replicas_crossing(df),
                    tuple(failed))  # fmt: skip
    rows = [evaluate_claim(c, df, primary, draws, guards) for c in claims]
    return pd.DataFrame(rows, columns=COLUMNS)


def claims_markdown(table: pd.DataFrame, min_seeds: int = MIN_SEEDS) -> str:
    kinds = registry.KINDS
    notes = [kinds["better"].note] + [
        "95 % CI: a Student-t interval over the seeds' paired effects, plus the test "
        "reference's sampling noise that every seed shares; it is about the method, not "
        f"one trained model. A claim on fewer than {min_seeds} seeds is undecided "
        "whatever its CI."
    ] + [k.note for name, k in kinds.items() if name != "better"] + [
        "Stable runs: each side's runs that finished without blowing up, of those run, "
        "in the claim's cell (at the worse end); the effect uses the seeds where both "
        "sides were stable."
    ]  # fmt: skip
    lines = [
        "# Claims under test",
        "",
        " ".join(notes),
        "",
        "| claim | system | metric | method vs baseline | cells | effect [95 % CI] "
        "| at the worse end [95 % CI] | seeds | stable runs | verdict |",
        "|---|---|---|---|---|---:|---:|---:|---|---|",
    ]
    for r in table.itertuples():
        claim = str(r.claim).replace("|", "\\|")  # a name's own bars, e.g. |corr|
        lines.append(
            f"| {claim} | {r.system} | {r.metric} | {r.method} vs {r.baseline} ({r.kind}) "
            f"| {r.cells} | {_effect(r.effect, r.ci_low, r.ci_high)} "
            f"| {_effect(r.far_effect, r.far_ci_low, r.far_ci_high)} | {r.n_seeds} "
            f"| {r.stable_runs} | **{r.verdict}** |"
        )
    if table.empty:
        lines.append("| (no claims in the config) | | | | | | | | | |")
    return "\n".join(lines) + "\n"


def _effect(value: float, lo: float, hi: float) -> str:
    return "" if not np.isfinite(value) else f"{value:+.3f} [{lo:+.3f}, {hi:+.3f}]"


def claimed_cells(claims: list[Claim | dict], system: str, cells: list[dict]) -> set[tuple]:
    """The (method, n_train, dt) cells of ``system`` that its claims compare.

    ``cells``: every cell the system could run, as dicts of method, n_train, dt and
    temperature. The cells are picked as the claims table picks them from results
    (each kind's ``cells``; a method run in one cell compared there), so a study that
    runs only these (a system's ``runs: claimed``) has every run its claims read. A
    baseline ``reference`` is the reference data, not a cell."""
    grid = pd.DataFrame(
        [{**c, "system": system, "seed": 0, "value": 0.0} for c in cells],
        columns=["system", "method", "n_train", "dt", "temperature", "seed", "value"],
    )
    out = set()
    for claim in map(Claim.of, claims):
        if claim.system != system:
            continue
        sides = [m for m in (claim.method, claim.baseline) if m and m != REFERENCE]
        part, _ = at_temperature(claim, grid[grid.method.isin(sides)])
        if part is None or not len(part):
            continue
        fixed = fixed_cells(part)
        found = registry.get(claim.kind).cells(claim, part, fixed)
        picked = [] if isinstance(found, str) else [c for _, c in found]
        for method in sides:
            for cell in picked:
                cell = fixed.get(method, cell)
                if cell["n_train"] is not None and cell["dt"] is not None:
                    out.add((method, int(cell["n_train"]), float(cell["dt"])))
    return out
