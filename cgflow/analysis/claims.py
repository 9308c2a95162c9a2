"""Claims under test: paired comparisons of two methods, with a 95 % CI and a verdict.

A claim (config ``claims:``) compares a ``method`` with a ``baseline`` on a system's
primary metric (an error: lower is better), over the seeds both ran stably:

- ``kind: better``: the difference method - baseline at one (n_train, dt) cell
  (``n_train``, ``dt``: ``min``, ``max`` or a value). Negative: the method is better.
- for a system at several temperatures, ``temperature`` (``min``, ``max`` or a
  value) picks the one compared.
- ``kind: degrades_less``: how much more the method's error grows than the
  baseline's along an axis: along ``dt`` from its smallest to its largest value
  (at ``n_train``), along ``n_train`` from its largest to its smallest (at ``dt``):
  [m(worse end) - m(better end)] - [b(worse end) - b(better end)]. Negative: the
  method degrades less.

The CI is a statement about the method, not one trained model: a Student-t
interval over the seeds' paired effects (``stats.seed_mean_ci``), which holds the
spread between independent trainings and each seed's sampling noise, plus the
sampling noise of the test reference that all seeds share (from the runs' bootstrap
draws, paired on the reference side, see ``cgflow.analysis.stats``).

Two more kinds test a method on its own:

- ``kind: within``: the method's error exceeds the baseline's by less than
  ``margin`` (non-inferiority; e.g. a data-free generator against ``reference``,
  the training reference's own score, i.e. the noise floor, or against FM trained
  on data). ``holds`` when the CI of method - baseline lies below the margin,
  ``does not hold`` when it lies above it.
- ``kind: at_least``: the method's ``metric`` (default the primary one; e.g.
  ``latent_corr_x1``, how well a generator's latent variable tracks the CV) is at
  least ``threshold``: ``holds`` when its CI lies above it, ``does not hold`` when
  below.

And one compares how often two methods' CG runs blow up:

- ``kind: more_stable``: the share of the method's runs (seeds) in the claim's
  (n_train, dt) cell that blew up, minus the baseline's, with Newcombe's score
  interval for a difference of proportions (``stats.proportion_difference_ci``).
  Negative: the method blows up less often. It is read at the claim's ``dt``; a
  time-step claim sets ``dt: max``, the system's largest. The seeds are the unit: a
  run blows up as a whole (``cgflow.simulate.langevin``), so ``n_seeds`` is the
  smaller side's number of runs, and neither the reference's convergence nor the
  replicas' crossing bears on it.

A method (or ``reference``) run in only one (n_train, dt) cell, as a data-free
generator (n_train 0, dt 0) or the reference, is compared in that cell whatever
the claim's ``n_train`` and ``dt``, which then pick the other side's cell; a
single-seed ``reference`` is paired with every seed of the other side.

Verdicts: ``holds`` when the CI lies below zero; ``does not hold`` when it lies
above zero, or inside (-margin, margin) for a claim with a ``margin`` (no effect as
large as the margin); otherwise ``undecided``. A ``degrades_less`` claim also
reports the plain difference at the worse end (``far_*``): a method that degrades
less but is still no better than the baseline where the axis is hardest has not
shown that it tolerates it, so ``holds`` needs that CI below zero as well, and a CI
above zero there makes it ``does not hold``.

A claim read on fewer seeds than ``min_seeds`` (config ``claims_min_seeds``) is
``undecided (n seeds)`` whatever its CI: the spread between trainings is not
measured well enough to say anything about the method. A claim read on a reference
that is not converged (``cgflow.analysis.convergence``) is ``undecided (reference
not converged)``, and one that reads a CG run whose replicas mostly stayed in their
start basins (``replicas_crossing`` below ``min_crossing``, config
``min_replicas_crossing``) is ``undecided (replicas did not cross)``: such a run's
basin populations are its start frames', not the model's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cgflow.analysis import stats
from cgflow.analysis.names import dt_label, n_train_label

CLAIM_KINDS = ("better", "degrades_less", "within", "at_least", "more_stable")
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
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "undecided"
    if hi < 0:
        return "holds"
    if lo > 0 or (margin > 0 and -margin < lo and hi < margin):
        return "does not hold"
    return "undecided"


def _pick(values, which):
    values = sorted(values)
    if which == "min":
        return values[0]
    if which == "max":
        return values[-1]
    hit = [v for v in values if np.isclose(float(v), float(which))]
    return hit[0] if hit else None


def _fixed_cells(part: pd.DataFrame) -> dict[str, dict]:
    """{method: its one cell} for the methods of ``part`` run in a single (n_train,
    dt) cell (data-free generators, the reference)."""
    out = {}
    for method, rows in part.groupby("method"):
        cells = rows[["n_train", "dt"]].astype(str).drop_duplicates()
        if len(cells) == 1:
            out[method] = {"n_train": rows.n_train.iloc[0], "dt": rows.dt.iloc[0]}
    return out


def _same(values: pd.Series, value) -> pd.Series:
    """values == value, NaN equal to NaN (the reference's dt)."""
    if isinstance(value, float) and np.isnan(value):
        return values.isna()
    return values == value


def _cells(claim: dict, part: pd.DataFrame, fixed: dict) -> list[tuple[float, dict]] | str:
    """(sign, {n_train, dt}) of the cells whose differences make up the effect, or
    why there are none. Cells are picked among the runs of methods run in several
    (a method run in one, ``fixed``, is compared there, see :func:`_fixed_cells`)."""
    free = part[~part.method.isin(list(fixed))]
    choose = free if len(free) else part
    n_values, dt_values = choose.n_train.unique(), choose.dt.unique()
    if claim["kind"] != "degrades_less":
        n, dt = _pick(n_values, claim["n_train"]), _pick(dt_values, claim["dt"])
        if n is None or dt is None:
            return f"no runs at n_train {claim['n_train']}, dt {claim['dt']}"
        return [(1.0, {"n_train": n, "dt": dt})]
    if claim["along"] == "dt":
        n = _pick(n_values, claim["n_train"])
        worse, better = _pick(dt_values, "max"), _pick(dt_values, "min")
        cells = [{"n_train": n, "dt": worse}, {"n_train": n, "dt": better}]
    else:
        dt = _pick(dt_values, claim["dt"])
        worse, better = _pick(n_values, "min"), _pick(n_values, "max")
        cells = [{"n_train": worse, "dt": dt}, {"n_train": better, "dt": dt}]
    if worse == better or any(v is None for c in cells for v in c.values()):
        return f"needs two values of {claim['along']}"
    return [(1.0, cells[0]), (-1.0, cells[1])]


def _at_temperature(claim: dict, part: pd.DataFrame):
    """The rows at the claim's temperature and a prefix naming it for systems at
    several; (None, why) when there are no runs at it."""
    if not len(part):
        return part, ""
    temperature = _pick(part.temperature.unique(), claim.get("temperature", "min"))
    if temperature is None:
        return None, f"no runs at temperature {claim['temperature']}"
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


def _empty_row(claim: dict, metric: str) -> dict:
    row = {k: claim.get(k) for k in ("system", "method", "baseline", "kind")}
    row["baseline"] = row["baseline"] or ""
    line = {"within": claim.get("margin"), "at_least": claim.get("threshold")}
    row.update(claim=claim["name"], temperature=np.nan, metric=metric, cells="",
               effect=np.nan, ci_low=np.nan, ci_high=np.nan, far_effect=np.nan,
               far_ci_low=np.nan, far_ci_high=np.nan, n_seeds=0,
               line=line.get(claim["kind"], 0.0), stable_runs="")  # fmt: skip
    return row


def evaluate_claim(claim: dict, df: pd.DataFrame, primary: dict, draws: dict,
                   min_seeds: int = MIN_SEEDS, unconverged=frozenset(),
                   min_crossing: float = 0.0, crossing: dict | None = None) -> dict:  # fmt: skip
    """One row of the claims table (COLUMNS) for ``claim`` (a validated config entry):
    its verdict from the CI, then ``undecided (n seeds)`` below ``min_seeds`` seeds,
    ``undecided (reference not converged)`` where its (system, temperature) is in
    ``unconverged``, and ``undecided (replicas did not cross)`` where a run it reads
    has ``replicas_crossing`` below ``min_crossing`` (``crossing``: the runs' values,
    ``replicas_crossing(df)`` when not given)."""
    row = _evaluate(claim, df, primary, draws)
    runs = row.pop("_runs", [])
    n = int(row["n_seeds"])
    reasons = [f"{n} seed{'s' if n > 1 else ''}"] if 0 < n < min_seeds else []
    if claim["kind"] != "more_stable" and (row["system"], row["temperature"]) in unconverged:
        reasons.append("reference not converged")
    if min_crossing > 0:
        crossing = replicas_crossing(df) if crossing is None else crossing
        if any(crossing.get(r, 1.0) < min_crossing for r in runs):
            reasons.append("replicas did not cross")
    if reasons:
        row["verdict"] = f"undecided ({'; '.join(reasons)})"
    return row


def verdict_kind(text: str) -> str:
    """holds, does not hold or undecided: a verdict without its reason."""
    return next(v for v in VERDICTS if str(text).startswith(v))


def _evaluate(claim: dict, df: pd.DataFrame, primary: dict, draws: dict) -> dict:
    system = claim["system"]
    row = _empty_row(claim, claim.get("metric") or primary.get(system, ""))
    if claim["kind"] == "at_least":
        return _at_least(claim, df, draws, row)
    if claim["kind"] == "more_stable":
        return _more_stable(claim, df, row)
    metric = row["metric"]
    part = df[(df.system == system) & (df.metric == metric)]
    part = part[part.method.isin([claim["method"], claim["baseline"]])]
    part, where = _at_temperature(claim, part)
    if part is None:
        return {**row, "cells": where, "verdict": "undecided"}
    if len(part):
        row["temperature"] = float(part.temperature.iloc[0])
    # which methods run in one cell only is a matter of the study, not of which runs
    # were stable: an unstable cell must not move the comparison to another one
    fixed = _fixed_cells(part)
    row["stable_runs"] = _stable_runs(claim, part, fixed)
    none = where + ("no stable runs of these methods" if len(part) else "no runs of these methods")
    part = part[np.isfinite(part.value)]
    cells = _cells(claim, part, fixed) if len(part) else none
    if isinstance(cells, str):
        return {**row, "cells": cells, "verdict": "undecided"}
    shown = [] if set(fixed) >= {claim["method"], claim["baseline"]} else [
        _cell_text(c) for _, c in cells]  # fmt: skip
    shown += [f"{m}: {_cell_text(c)}" for m, c in fixed.items()]
    row["cells"] = where + "; ".join(shown)
    found = _paired_terms(claim, part, cells, fixed, draws)
    if found is None:  # a side has no stable run in a cell (unstable or not run)
        return {
            **row,
            "cells": row["cells"] + " (no seed with stable runs of both)",
            "verdict": "undecided",
        }
    terms, seeds, draws = found
    effect, lo, hi = paired_effect(terms, seeds, metric, draws)
    if claim["kind"] == "within":
        verdict_ = verdict(lo - claim["margin"], hi - claim["margin"])  # against the margin
    else:
        verdict_ = verdict(lo, hi, claim.get("margin", 0.0))
    if claim["kind"] == "degrades_less":
        # the worse end's cell is the first: method and baseline there
        far, flo, fhi = paired_effect(terms[:2], seeds, metric, draws)
        row.update(far_effect=far, far_ci_low=flo, far_ci_high=fhi)
        if verdict_ == "holds" and not fhi < 0:
            verdict_ = "does not hold" if flo > 0 else "undecided"
    return {**row, "effect": effect, "ci_low": lo, "ci_high": hi, "n_seeds": len(seeds),
            "verdict": verdict_, "_runs": _runs_of(terms, seeds)}  # fmt: skip


def _runs_of(terms: list, seeds: list) -> list[tuple]:
    """The run keys (``run_key``) an effect was computed from."""
    return [tuple(keys) + (str(seed),) for _, keys, _ in terms for seed in seeds]


def replicas_crossing(df: pd.DataFrame) -> dict[tuple, float]:
    """Each CG run's ``replicas_crossing`` by ``run_key`` (generators and references
    have none)."""
    rows = df[df.metric == "replicas_crossing"]
    return {run_key(r): r["value"] for r in rows.to_dict("records")}


def _stable_runs(claim: dict, part: pd.DataFrame, fixed: dict) -> str:
    """'method s/n, baseline s/n': each side's runs with a finite metric (stable), of
    all its runs, in the claim's cell (a degrades_less claim's worse end)."""
    cells = _cells(claim, part, fixed) if len(part) else ""
    if isinstance(cells, str):
        return ""
    out = []
    for method in (claim["method"], claim["baseline"]):
        cell = fixed.get(method, cells[0][1])
        at = _same(part.n_train, cell["n_train"]) & _same(part.dt, cell["dt"])
        hit = part[(part.method == method) & at]
        if len(hit):
            out.append(f"{method} {int(np.isfinite(hit.value).sum())}/{len(hit)}")
    return ", ".join(out)


def _paired_terms(claim: dict, part: pd.DataFrame, cells, fixed: dict, draws: dict):
    """The signed terms of a claim's effect over the seeds where every cell of both
    sides ran stably, as (terms, seeds, draws); None without such seeds. A reference
    of one seed pairs with every seed of the other side (its draws repeated)."""

    def runs(method, cell):
        cell = fixed.get(method, cell)
        at = _same(part.n_train, cell["n_train"]) & _same(part.dt, cell["dt"])
        return part[(part.method == method) & at]

    sides = (claim["method"], claim["baseline"])
    broadcast = sides[1] == REFERENCE and part[part.method == REFERENCE].seed.nunique() == 1
    seeds = None
    for _, cell in cells:
        for m in sides[: 1 if broadcast else 2]:
            hit = set(runs(m, cell).seed)
            seeds = hit if seeds is None else seeds & hit
    seeds = sorted(seeds)
    if not seeds:
        return None
    terms = []
    for sign, cell in cells:
        for m, s2 in ((sides[0], sign), (sides[1], -sign)):
            hit, c = runs(m, cell), fixed.get(m, cell)
            keys = tuple(map(str, (claim["system"], hit.mapping.iloc[0], hit.temperature.iloc[0],
                                   m, c["n_train"], c["dt"])))  # fmt: skip
            value_of = dict(zip(hit.seed, hit.value, strict=True))
            if m == REFERENCE and broadcast:
                ((ref_seed, value),) = value_of.items()
                value_of = dict.fromkeys(seeds, value)
                if keys + (str(ref_seed),) in draws:
                    found = draws[keys + (str(ref_seed),)]
                    draws = {**draws, **{keys + (str(s),): found for s in seeds}}
            terms.append((s2, keys, value_of))
    return terms, seeds, draws


def _cell_text(cell: dict) -> str:
    n, dt = cell["n_train"], cell["dt"]
    return ", ".join(t for t in (n_train_label(n, "n_train "), dt_label(dt, "dt ")) if t)


def _at_least(claim: dict, df: pd.DataFrame, draws: dict, row: dict) -> dict:
    """An ``at_least`` claim: the method's ``metric`` mean over seeds, its CI, and
    whether the CI lies above ``threshold``."""
    metric = claim.get("metric") or row["metric"]
    row = {**row, "metric": metric, "baseline": f">= {claim['threshold']:g}"}
    part = df[(df.system == claim["system"]) & (df.metric == metric)
              & (df.method == claim["method"]) & np.isfinite(df.value)]  # fmt: skip
    part, where = _at_temperature(claim, part)
    if part is None or not len(part):
        return {**row, "cells": where or f"no runs with {metric}", "verdict": "undecided"}
    row["temperature"] = float(part.temperature.iloc[0])
    cell = _at_least_cell(claim, part)
    hit = part[_same(part.n_train, cell["n_train"]) & _same(part.dt, cell["dt"])]
    row["cells"] = where + _cell_text(cell)
    seeds = sorted(hit.seed)
    if not seeds:
        return {**row, "verdict": "undecided"}
    keys = tuple(map(str, (claim["system"], hit.mapping.iloc[0], hit.temperature.iloc[0],
                           claim["method"], cell["n_train"], cell["dt"])))  # fmt: skip
    value_of = dict(zip(hit.seed, hit.value, strict=True))
    effect, lo, hi = paired_effect([(1.0, keys, value_of)], seeds, metric, draws)
    t = claim["threshold"]
    verdict_ = "undecided" if not (np.isfinite(lo) and np.isfinite(hi)) else (
        "holds" if lo > t else "does not hold" if hi < t else "undecided")  # fmt: skip
    return {**row, "effect": effect, "ci_low": lo, "ci_high": hi, "n_seeds": len(seeds),
            "verdict": verdict_, "_runs": _runs_of([(1.0, keys, value_of)], seeds)}  # fmt: skip


UNSTABLE = "unstable_fraction"
"""The metric column of a ``more_stable`` claim: the share of runs that blew up."""


def _more_stable(claim: dict, df: pd.DataFrame, row: dict) -> dict:
    """A ``more_stable`` claim: the method's share of blown-up runs minus the
    baseline's in the claim's cell, with Newcombe's CI; holds when the CI lies below
    zero."""
    row = {**row, "metric": UNSTABLE}
    part = df[(df.system == claim["system"]) & (df.metric == "stable")
              & df.method.isin([claim["method"], claim["baseline"]])]  # fmt: skip
    part, where = _at_temperature(claim, part)
    if part is None or not len(part):
        return {**row, "cells": where or "no runs of these methods", "verdict": "undecided"}
    row["temperature"] = float(part.temperature.iloc[0])
    fixed = _fixed_cells(part)
    cells = _cells(claim, part, fixed)
    if isinstance(cells, str):
        return {**row, "cells": where + cells, "verdict": "undecided"}
    (_, cell), runs, counts = cells[0], [], []
    for method in (claim["method"], claim["baseline"]):
        c = fixed.get(method, cell)
        hit = part[(part.method == method) & _same(part.n_train, c["n_train"])
                   & _same(part.dt, c["dt"])]  # fmt: skip
        counts.append((int((hit.value < 0.5).sum()), len(hit)))
        runs.append(f"{method} {len(hit) - counts[-1][0]}/{len(hit)}")
    row.update(cells=where + _cell_text(cell), stable_runs=", ".join(runs))
    if min(n for _, n in counts) == 0:
        return {**row, "cells": row["cells"] + " (a side has no runs)", "verdict": "undecided"}
    (x1, n1), (x2, n2) = counts
    lo, hi = stats.proportion_difference_ci(x1, n1, x2, n2)
    verdict_ = verdict(lo, hi, claim.get("margin", 0.0))
    return {**row, "effect": x1 / n1 - x2 / n2, "ci_low": lo, "ci_high": hi,
            "n_seeds": min(n1, n2), "verdict": verdict_}  # fmt: skip


def claimed_cells(claims: list[dict], system: str, cells: list[dict]) -> set[tuple]:
    """The (method, n_train, dt) cells of ``system`` that its claims compare.

    ``cells``: every cell the system could run, as dicts of method, n_train, dt and
    temperature. The cells are picked as the claims table picks them from results
    (``min``/``max``/values, a degrades_less claim's two ends, a method run in one
    cell compared there), so a study that runs only these (a system's
    ``runs: claimed``) has every run its claims read. A baseline ``reference`` is
    the reference data, not a cell."""
    grid = pd.DataFrame(
        [{**c, "system": system, "seed": 0, "value": 0.0} for c in cells],
        columns=["system", "method", "n_train", "dt", "temperature", "seed", "value"],
    )
    out = set()
    for claim in claims:
        if claim["system"] != system:
            continue
        sides = [m for m in (claim["method"], claim.get("baseline")) if m and m != REFERENCE]
        part, _ = _at_temperature(claim, grid[grid.method.isin(sides)])
        if part is None or not len(part):
            continue
        fixed = _fixed_cells(part)
        if claim["kind"] == "at_least":
            picked = [_at_least_cell(claim, part)]
        else:
            found = _cells(claim, part, fixed)
            picked = [] if isinstance(found, str) else [c for _, c in found]
        for method in sides:
            for cell in picked:
                cell = fixed.get(method, cell)
                if cell["n_train"] is not None and cell["dt"] is not None:
                    out.add((method, int(cell["n_train"]), float(cell["dt"])))
    return out


def _at_least_cell(claim: dict, part: pd.DataFrame) -> dict:
    """The cell an ``at_least`` claim reads among its method's runs ``part``: the one
    it runs in, or the claim's ``n_train`` and ``dt`` picked among them."""
    fixed = _fixed_cells(part)
    if claim["method"] in fixed:
        return fixed[claim["method"]]
    return {"n_train": _pick(part.n_train.unique(), claim["n_train"]),
            "dt": _pick(part.dt.unique(), claim["dt"])}  # fmt: skip


def claims_table(claims: list[dict], df: pd.DataFrame, primary: dict, draws: dict,
                 min_seeds: int = MIN_SEEDS, unconverged=frozenset(),
                 min_crossing: float = 0.0) -> pd.DataFrame:  # fmt: skip
    crossing = replicas_crossing(df)
    rows = [evaluate_claim(c, df, primary, draws, min_seeds, unconverged, min_crossing, crossing)
            for c in claims]  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)


def claims_markdown(table: pd.DataFrame, min_seeds: int = MIN_SEEDS) -> str:
    lines = [
        "# Claims under test",
        "",
        "Effect: method minus baseline of the system's primary metric (an error), mean "
        "over seeds; negative favours the method. 95 % CI: a Student-t interval over the "
        "seeds' paired effects, plus the test reference's sampling noise that every seed "
        "shares; it is about the method, not one trained model. A claim on fewer than "
        f"{min_seeds} seeds is undecided whatever its CI. For a degrades_less claim, 'at "
        "the worse end' is the plain method - baseline difference at the axis's hardest "
        "cell; the claim holds only when both CIs lie below zero. A within claim holds "
        "when the CI lies below its margin; an at_least claim's effect is the metric "
        "itself, and it holds when the CI lies above the threshold (baseline column). "
        "A more_stable claim's effect is the share of the method's runs that blew up "
        "minus the baseline's (metric unstable_fraction), with Newcombe's score CI. "
        "Stable runs: each side's runs that finished without blowing up, of those run, in"
        " the claim's cell (at the worse end); the effect uses the seeds where both sides"
        " were stable.",
        "",
        "| claim | system | metric | method vs baseline | cells | effect [95 % CI] "
        "| at the worse end [95 % CI] | seeds | stable runs | verdict |",
        "|---|---|---|---|---|---:|---:|---:|---|---|",
    ]
    for r in table.itertuples():
        effect = (
            ""
            if not np.isfinite(r.effect)
            else f"{r.effect:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}]"
        )
        far = (
            ""
            if not np.isfinite(r.far_effect)
            else f"{r.far_effect:+.3f} [{r.far_ci_low:+.3f}, {r.far_ci_high:+.3f}]"
        )
        claim = str(r.claim).replace("|", "\\|")  # a name's own bars, e.g. |corr|
        lines.append(
            f"| {claim} | {r.system} | {r.metric} | {r.method} vs {r.baseline} ({r.kind}) "
            f"| {r.cells} | {effect} | {far} | {r.n_seeds} | {r.stable_runs} "
            f"| **{r.verdict}** |"
        )
    if table.empty:
        lines.append("| (no claims in the config) | | | | | | | | | |")
    return "\n".join(lines) + "\n"


def compare_verdicts(first: pd.DataFrame, second: pd.DataFrame) -> pd.DataFrame:
    """Two runs' claims tables (claims.csv) side by side, by claim name, with how each
    verdict moved: ``same``, ``flipped`` (holds <-> does not hold: the run decided
    the claim both ways), ``to undecided`` or ``from undecided``; a claim in one table
    only is ``only in first`` / ``only in second``.

    Columns: claim, verdict_first, verdict_second, effect_first, ci_first,
    effect_second, ci_second, moved.
    """
    a, b = first.set_index("claim"), second.set_index("claim")
    rows = []
    for claim in list(a.index) + [c for c in b.index if c not in a.index]:
        row = {"claim": claim}
        for side, table in (("first", a), ("second", b)):
            if claim in table.index:
                r = table.loc[claim]
                row[f"verdict_{side}"] = str(r.verdict)
                row[f"effect_{side}"] = float(r.effect)
                row[f"ci_{side}"] = (float(r.ci_low), float(r.ci_high))
            else:
                row.update({f"verdict_{side}": "", f"effect_{side}": np.nan,
                            f"ci_{side}": (np.nan, np.nan)})  # fmt: skip
        row["moved"] = _moved(row["verdict_first"], row["verdict_second"])
        rows.append(row)
    return pd.DataFrame(rows)


def _moved(first: str, second: str) -> str:
    if not first or not second:
        return "only in first" if first else "only in second"
    one, two = verdict_kind(first), verdict_kind(second)
    if one == two:
        return "same"
    if "undecided" not in (one, two):
        return "flipped"
    return "to undecided" if two == "undecided" else "from undecided"


def comparison_markdown(table: pd.DataFrame, first: str, second: str) -> str:
    """``compare_verdicts`` as Markdown, with the counts of each kind of move."""

    def effect(value, ci):
        if not np.isfinite(value):
            return ""
        return f"{value:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]"

    counts = table.moved.value_counts()
    summary = ", ".join(f"{counts.get(k, 0)} {k}" for k in
                        ("same", "flipped", "to undecided", "from undecided"))  # fmt: skip
    lines = [
        "# Verdicts of two runs",
        "",
        f"First: `{first}`. Second: `{second}`. Flipped: the two runs decided the claim "
        f"in opposite ways. Of {len(table)} claims: {summary}.",
        "",
        "| claim | first [95 % CI] | verdict | second [95 % CI] | verdict | moved |",
        "|---|---:|---|---:|---|---|",
    ]
    for r in table.itertuples():
        name = str(r.claim).replace("|", "\\|")
        moved = f"**{r.moved}**" if r.moved == "flipped" else r.moved
        one, two = effect(r.effect_first, r.ci_first), effect(r.effect_second, r.ci_second)
        lines.append(f"| {name} | {one} | {r.verdict_first} | {two} | {r.verdict_second} "
                     f"| {moved} |")  # fmt: skip
    return "\n".join(lines) + "\n"
