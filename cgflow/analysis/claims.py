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

The CI comes from the runs' bootstrap draws (paired on the reference side, see
``cgflow.analysis.stats``): per seed the draws of the effect, then seeds resampled
(a two-level bootstrap), so it holds the seed-to-seed spread and the sampling noise.

Verdicts: ``holds`` when the CI lies below zero; ``does not hold`` when it lies
above zero, or inside (-margin, margin) for a claim with a ``margin`` (no effect as
large as the margin); otherwise ``undecided``. A ``degrades_less`` claim also
reports the plain difference at the worse end (``far_*``): a method that degrades
less but is still no better than the baseline where the axis is hardest has not
shown that it tolerates it, so ``holds`` needs that CI below zero as well, and a CI
above zero there makes it ``does not hold``.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from cgflow.analysis import stats

CLAIM_KINDS = ("better", "degrades_less")
GROUP = ["system", "mapping", "temperature", "method", "n_train", "dt"]
"""A benchmark cell: one model configuration, over seeds."""
COLUMNS = [
    "claim", "system", "metric", "method", "baseline", "kind", "cells", "effect",
    "ci_low", "ci_high", "far_effect", "far_ci_low", "far_ci_high", "n_seeds", "verdict",
]  # fmt: skip


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


def group_rng(keys) -> np.random.Generator:
    """A generator seeded by a cell's identity (reproducible tables)."""
    return np.random.default_rng(zlib.crc32("/".join(map(str, keys)).encode()))


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


def _cells(claim: dict, part: pd.DataFrame) -> list[tuple[float, dict]] | str:
    """(sign, {n_train, dt}) of the cells whose differences make up the effect, or
    why there are none."""
    n_values, dt_values = part.n_train.unique(), part.dt.unique()
    if claim["kind"] == "better":
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


def paired_effect(
    terms: list, seeds: list, metric: str, draws: dict, rng: np.random.Generator
) -> tuple[float, float, float]:
    """Mean over ``seeds`` and 95 % CI of a signed sum of runs' ``metric``.

    ``terms``: (sign, keys, value_of) with ``keys`` a cell's GROUP values as text and
    ``value_of`` its values by seed. Per seed the terms' bootstrap draws are summed
    (paired: the draws share the reference blocks), then seeds are resampled."""
    effect_draws = [np.zeros(stats.N_BOOT) for _ in seeds]
    effect = 0.0
    for sign, keys, value_of in terms:
        for i, d in enumerate(seed_draws(draws, keys, seeds, metric, value_of)):
            effect_draws[i] = effect_draws[i] + sign * d
        effect += sign * float(np.mean([value_of[s] for s in seeds]))
    lo, hi = stats.percentile_ci(stats.hierarchical_mean(effect_draws, rng))
    return effect, lo, hi


def evaluate_claim(claim: dict, df: pd.DataFrame, primary: dict, draws: dict) -> dict:
    """One row of the claims table (COLUMNS) for ``claim`` (a validated config entry)."""
    system = claim["system"]
    metric = primary.get(system, "")
    row = {k: claim.get(k) for k in ("system", "method", "baseline", "kind")}
    row.update(claim=claim["name"], metric=metric, cells="", effect=np.nan, ci_low=np.nan,
               ci_high=np.nan, far_effect=np.nan, far_ci_low=np.nan, far_ci_high=np.nan,
               n_seeds=0)  # fmt: skip
    part = df[(df.system == system) & (df.metric == metric)]
    part = part[part.method.isin([claim["method"], claim["baseline"]]) & np.isfinite(part.value)]
    part, where = _at_temperature(claim, part)
    if part is None:
        return {**row, "cells": where, "verdict": "undecided"}
    cells = _cells(claim, part) if len(part) else "no runs of these methods"
    if isinstance(cells, str):
        return {**row, "cells": cells, "verdict": "undecided"}
    row["cells"] = where + "; ".join(f"n_train {c['n_train']}, dt {c['dt']:g}" for _, c in cells)

    def runs(method, cell):
        at = (part.n_train == cell["n_train"]) & (part.dt == cell["dt"])
        return part[(part.method == method) & at]

    # seeds where every cell of both methods ran stably
    seeds = None
    for _, cell in cells:
        for m in (claim["method"], claim["baseline"]):
            hit = runs(m, cell)
            seeds = set(hit.seed) if seeds is None else seeds & set(hit.seed)
    seeds = sorted(seeds)
    if not seeds:
        return {**row, "verdict": "undecided"}
    terms = []
    for sign, cell in cells:
        for m, s2 in ((claim["method"], sign), (claim["baseline"], -sign)):
            hit = runs(m, cell)
            value_of = dict(zip(hit.seed, hit.value, strict=True))
            mapping, temperature = hit.mapping.iloc[0], hit.temperature.iloc[0]
            keys = tuple(map(str, (system, mapping, temperature, m, cell["n_train"], cell["dt"])))
            terms.append((s2, keys, value_of))
    rng = group_rng((claim["name"], system))
    effect, lo, hi = paired_effect(terms, seeds, metric, draws, rng)
    verdict_ = verdict(lo, hi, claim.get("margin", 0.0))
    if claim["kind"] == "degrades_less":
        # the worse end's cell is the first: method and baseline there
        far, flo, fhi = paired_effect(terms[:2], seeds, metric, draws, group_rng(
            (claim["name"], system, "far end")))  # fmt: skip
        row.update(far_effect=far, far_ci_low=flo, far_ci_high=fhi)
        if verdict_ == "holds" and not fhi < 0:
            verdict_ = "does not hold" if flo > 0 else "undecided"
    return {**row, "effect": effect, "ci_low": lo, "ci_high": hi, "n_seeds": len(seeds),
            "verdict": verdict_}  # fmt: skip


def claims_table(claims: list[dict], df: pd.DataFrame, primary: dict, draws: dict) -> pd.DataFrame:
    rows = [evaluate_claim(c, df, primary, draws) for c in claims]
    return pd.DataFrame(rows, columns=COLUMNS)


def claims_markdown(table: pd.DataFrame) -> str:
    lines = [
        "# Claims under test",
        "",
        "Effect: method minus baseline of the system's primary metric (an error), "
        "mean over seeds; negative favours the method. 95 % CI: seeds resampled, then "
        "each seed's paired bootstrap draws. For a degrades_less claim, 'at the worse "
        "end' is the plain method - baseline difference at the axis's hardest cell; the "
        "claim holds only when both CIs lie below zero.",
        "",
        "| claim | system | metric | method vs baseline | cells | effect [95 % CI] "
        "| at the worse end [95 % CI] | seeds | verdict |",
        "|---|---|---|---|---|---:|---:|---:|---|",
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
        lines.append(
            f"| {r.claim} | {r.system} | {r.metric} | {r.method} vs {r.baseline} ({r.kind}) "
            f"| {r.cells} | {effect} | {far} | {r.n_seeds} | **{r.verdict}** |"
        )
    if table.empty:
        lines.append("| (no claims in the config) | | | | | | | | |")
    return "\n".join(lines) + "\n"


def plot_claims(table: pd.DataFrame, path) -> None:
    """Each claim's effect with its 95 % CI (a forest plot)."""
    import matplotlib.pyplot as plt

    n = max(len(table), 1)
    fig, ax = plt.subplots(figsize=(7.5, 0.55 * n + 1.4))
    colors = {"holds": "tab:green", "does not hold": "tab:red", "undecided": "tab:gray"}
    for i, r in enumerate(table.itertuples()):
        if np.isfinite(r.effect):
            err = [[r.effect - r.ci_low], [r.ci_high - r.effect]]
            ax.errorbar(r.effect, i, xerr=err, fmt="o", color=colors[r.verdict], capsize=4)
    if table.empty:
        ax.text(0.5, 0.5, "no claims in the config", ha="center", va="center",
                transform=ax.transAxes)  # fmt: skip
    ax.axvline(0.0, color="k", lw=0.8)
    ax.set_yticks(
        range(len(table)), [f"{r.claim}\n({r.verdict})" for r in table.itertuples()], fontsize=7
    )
    ax.invert_yaxis()
    ax.set_xlabel("effect: method - baseline (negative favours the method)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
