"""What every kind of claim shares: a run's key, picking cells and temperatures, the
paired seed-level effect and its CI, and the verdict from a CI."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from cgflow.analysis import stats
from cgflow.analysis.names import dt_label, n_train_label

MIN_SEEDS = 3
"""Seeds a claim needs before its verdict can be holds or does not hold (the
default of config ``claims_min_seeds``)."""
VERDICTS = ("holds", "does not hold", "undecided")
MIN_CROSSING = 0.5
"""Share of a CG run's replicas that must visit more than one basin for a claim to
read it (the default of config ``min_replicas_crossing``)."""
REFERENCE = "reference"
GROUP = ["system", "mapping", "temperature", "method", "n_train", "dt"]
"""A benchmark cell: one model configuration, over seeds."""
COLUMNS = [
    "claim", "system", "temperature", "metric", "method", "baseline", "kind", "cells", "effect",
    "ci_low", "ci_high", "far_effect", "far_ci_low", "far_ci_high", "n_seeds", "line",
    "stable_runs", "verdict",
]  # fmt: skip
"""``line``: what the verdict compares the CI with: 0, a within claim's margin, an
at_least claim's threshold. ``stable_runs``: each side's runs that finished, of
those run, in the claim's cell (a degrades_less claim's worse end), e.g. ``re 2/2,
fm 1/2``: the effect uses only seeds where both sides ran stably, so a side that
blows up more often shows here and not in the effect."""


@dataclass(frozen=True)
class Claim:
    """A claim under test (an entry of config ``claims:``; the schema's defaults).

    Attributes:
      name: how tables and ``compare-claims`` tell it apart.
      system, method: what it is about.
      baseline: the method it is compared with, or ``reference`` (the noise floor);
        None for an ``at_least`` claim.
      kind: its kind (:mod:`cgflow.analysis.claims.registry`).
      metric: the metric compared (None: the system's primary one).
      threshold: an ``at_least`` claim's bound.
      n_train, dt, temperature: the cell compared (``min``, ``max`` or a value).
      along: the axis of a ``degrades_less`` claim (``dt`` or ``n_train``).
      margin: an effect smaller than this in size is no effect.
    """

    name: str
    system: str
    method: str
    baseline: str | None = None
    kind: str = "better"
    metric: str | None = None
    threshold: float | None = None
    n_train: int | str = "max"
    dt: float | str = "min"
    temperature: float | str = "min"
    along: str = "dt"
    margin: float = 0.0

    @classmethod
    def of(cls, claim: Claim | dict) -> Claim:
        """``claim`` as a record (a config entry's dict, defaults filled in); ValueError
        naming a key a claim does not have, or one it lacks."""
        if isinstance(claim, cls):
            return claim
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(claim) - names)
        missing = [k for k in ("name", "system", "method") if k not in claim]
        if unknown or missing:
            why = f"unknown keys {unknown}" if unknown else f"lacks {missing}"
            raise ValueError(f"claim {claim.get('name')!r}: {why}")
        return cls(**claim)

    def to_json(self) -> dict:
        """The config entry: every field but those left unset (None)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


def run_key(run: dict) -> tuple:
    """A run's place in the study: (system, mapping, temperature, method, n_train,
    dt, seed), with numbers as text so that NaN (the reference's dt) compares equal."""
    return tuple(str(run[k]) for k in GROUP) + (str(run["seed"]),)


def seed_draws(draws: dict, keys: tuple, seeds, metric: str, value_of: dict) -> list[np.ndarray]:
    """Per seed, the bootstrap draws of ``metric`` of the cell ``keys`` (GROUP values
    as text), or the point value repeated for a metric without draws (a quadrature)."""
    out = []
    for seed in seeds:
        d = draws.get(tuple(keys) + (str(seed),), {})
        out.append(d[metric] if metric in d else np.full(stats.N_BOOT, value_of[seed]))
    return out


def verdict(lo: float, hi: float, margin: float = 0.0) -> str:
    """``holds`` when the CI lies below zero; ``does not hold`` when it lies above
    zero, or inside (-margin, margin) for a margin > 0; else ``undecided``."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "undecided"
    if hi < 0:
        return "holds"
    if lo > 0 or (margin > 0 and -margin < lo and hi < margin):
        return "does not hold"
    return "undecided"


def verdict_kind(text: str) -> str:
    """holds, does not hold or undecided: a verdict without its reason."""
    return next(v for v in VERDICTS if str(text).startswith(v))


def pick(values, which):
    """``min``, ``max`` or the value of ``values`` close to ``which``; None if none."""
    values = sorted(values)
    if which == "min":
        return values[0]
    if which == "max":
        return values[-1]
    hit = [v for v in values if np.isclose(float(v), float(which))]
    return hit[0] if hit else None


def fixed_cells(part) -> dict[str, dict]:
    """{method: its one cell} for the methods of ``part`` run in a single (n_train,
    dt) cell (data-free generators, the reference)."""
    out = {}
    for method, rows in part.groupby("method"):
        cells = rows[["n_train", "dt"]].astype(str).drop_duplicates()
        if len(cells) == 1:
            out[method] = {"n_train": rows.n_train.iloc[0], "dt": rows.dt.iloc[0]}
    return out


def same(values, value):
    """values == value, NaN equal to NaN (the reference's dt)."""
    if isinstance(value, float) and np.isnan(value):
        return values.isna()
    return values == value


def at_cell(part, method: str, cell: dict):
    """The rows of ``part`` of ``method`` in ``cell`` (n_train, dt)."""
    return part[(part.method == method) & same(part.n_train, cell["n_train"])
                & same(part.dt, cell["dt"])]  # fmt: skip


def choosable(part, fixed: dict):
    """The rows a claim's cells are picked among: those of methods run in several
    cells (a method run in one, ``fixed``, is compared there)."""
    free = part[~part.method.isin(list(fixed))]
    return free if len(free) else part


def one_cell(claim: Claim, part, fixed: dict) -> list[tuple[float, dict]] | str:
    """[(1, {n_train, dt})]: the claim's ``n_train`` and ``dt`` picked among the runs,
    or why there is no such cell."""
    choose = choosable(part, fixed)
    n, dt = pick(choose.n_train.unique(), claim.n_train), pick(choose.dt.unique(), claim.dt)
    if n is None or dt is None:
        return f"no runs at n_train {claim.n_train}, dt {claim.dt}"
    return [(1.0, {"n_train": n, "dt": dt})]


def at_temperature(claim: Claim, part):
    """The rows at the claim's temperature and a prefix naming it for systems at
    several; (None, why) when there are no runs at it."""
    if not len(part):
        return part, ""
    temperature = pick(part.temperature.unique(), claim.temperature)
    if temperature is None:
        return None, f"no runs at temperature {claim.temperature}"
    where = f"T {temperature:g}, " if part.temperature.nunique() > 1 else ""
    return part[part.temperature == temperature], where


def paired_effect(terms: list, seeds: list, metric: str, draws: dict) -> tuple[float, float, float]:
    """Mean over ``seeds`` and 95 % CI of a signed sum of runs' ``metric``.

    ``terms``: (sign, keys, value_of) with ``keys`` a cell's GROUP values as text and
    ``value_of`` its values by seed. Per seed the terms' values and bootstrap draws
    are summed (paired: the draws share the reference blocks); the CI is the
    seed-level t-interval of ``stats.seed_mean_ci`` (one seed: that seed's own)."""
    effect_draws = [np.zeros(stats.N_BOOT) for _ in seeds]
    per_seed = np.zeros(len(seeds))
    for sign, keys, value_of in terms:
        for i, d in enumerate(seed_draws(draws, keys, seeds, metric, value_of)):
            effect_draws[i] = effect_draws[i] + sign * d
        per_seed += sign * np.array([value_of[s] for s in seeds], float)
    lo, hi = stats.seed_mean_ci(per_seed, effect_draws)
    return float(per_seed.mean()), lo, hi


def runs_of(terms: list, seeds: list) -> list[tuple]:
    """The run keys (``run_key``) an effect was computed from."""
    return [tuple(keys) + (str(seed),) for _, keys, _ in terms for seed in seeds]


def cell_keys(claim: Claim, hit, method: str, cell: dict) -> tuple:
    """A cell's GROUP values as text (the keys of ``draws``), from its rows ``hit``."""
    return tuple(map(str, (claim.system, hit.mapping.iloc[0], hit.temperature.iloc[0],
                           method, cell["n_train"], cell["dt"])))  # fmt: skip


def replicas_crossing(df) -> dict[tuple, float]:
    """Each CG run's ``replicas_crossing`` by ``run_key`` (generators and references
    have none)."""
    rows = df[df.metric == "replicas_crossing"]
    return {run_key(r): r["value"] for r in rows.to_dict("records")}


def cell_text(cell: dict) -> str:
    n, dt = cell["n_train"], cell["dt"]
    return ", ".join(t for t in (n_train_label(n, "n_train "), dt_label(dt, "dt ")) if t)
