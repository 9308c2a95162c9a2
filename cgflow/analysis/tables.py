"""The study's tables from its runs' rows: the benchmark table (each system's
primary metric by method, n_train and dt, mean over seeds with a seed-level 95 % CI),
the paired differences and ratios between methods, and the noise floors."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from cgflow.analysis import stats
from cgflow.analysis.claims import GROUP, REFERENCE, paired_effect, seed_draws
from cgflow.analysis.convergence import basin_relaxation


def _is_primary(df: pd.DataFrame, primary: dict[str, str]) -> pd.Series:
    return df.metric == df.system.map(primary)


def benchmark_table(
    df: pd.DataFrame, primary: dict[str, str], draws: dict | None = None
) -> pd.DataFrame:
    """Each system's ``primary`` metric by (method, n_train, dt) over seeds.

    Columns: system, mapping, temperature, metric, method, n_train, dt, mean, sd
    (NaN for one seed), ci_low, ci_high (95 %: the seed-level t-interval of
    ``stats.seed_mean_ci``, which holds the training's seed-to-seed spread and the
    sampling noise; with one seed that model's own bootstrap interval; NaN without
    draws), n_seeds, n_unstable. Unstable runs have no
    free-energy error; the statistics are over the stable seeds.
    """
    draws = draws or {}
    models = df[df.method != REFERENCE]
    err = models[_is_primary(models, primary)]
    stable = models[models.metric == "stable"].groupby(GROUP)["value"]
    unstable = (stable.size() - stable.sum()).astype(int).rename("n_unstable")
    rows = []
    for keys, part in err.groupby(GROUP + ["metric"], sort=True):
        ok = part[np.isfinite(part.value)]
        row = dict(zip(GROUP + ["metric"], keys, strict=True))
        row.update(
            mean=ok.value.mean(),
            sd=ok.value.std(),
            n_seeds=len(part),
            ci_low=np.nan,
            ci_high=np.nan,
        )
        run_keys = tuple(str(k) for k in keys[:-1])
        if len(ok) and all(run_keys + (str(s),) in draws for s in ok.seed):
            value_of = dict(zip(ok.seed, ok.value, strict=True))
            per_seed = seed_draws(draws, run_keys, ok.seed, keys[-1], value_of)
            row["ci_low"], row["ci_high"] = stats.seed_mean_ci(ok.value.to_numpy(), per_seed)
        rows.append(row)
    out = pd.DataFrame(
        rows, columns=GROUP + ["metric", "mean", "sd", "n_seeds", "ci_low", "ci_high"]
    )
    out = out.join(unstable, on=GROUP)
    order = ["system", "mapping", "temperature", "metric"] + GROUP[3:]
    return out[order + ["mean", "sd", "ci_low", "ci_high", "n_seeds", "n_unstable"]]


def paired_differences(df: pd.DataFrame, primary: dict[str, str], draws: dict,
                       order: list[str] = ()) -> pd.DataFrame:  # fmt: skip
    """Method minus baseline, for every pair of methods (the baseline is the one
    earlier in ``order``, e.g. the registry's, then by name), of each system's primary
    metric at the same n_train and dt, over the seeds both ran stably: mean and 95 %
    CI (the seed-level t-interval of the per-seed paired differences, whose draws
    share the reference blocks), and whether it excludes zero; beside it the ratio
    of the baseline's mean error to the method's (> 1: the method is better), with
    Fieller's 95 % CI over the same seeds.

    Columns: system, mapping, temperature, metric, method, baseline, n_train, dt,
    mean, ci_low, ci_high, n_seeds, excludes_zero, ratio, ratio_ci_low, ratio_ci_high.
    """
    models = df[(df.method != REFERENCE) & _is_primary(df, primary)]
    models = models[np.isfinite(models.value)]
    rows = []
    cell = ["system", "mapping", "temperature", "n_train", "dt", "metric"]
    for keys, part in models.groupby(cell, sort=True):
        by_method = {m: g.set_index("seed").value for m, g in part.groupby("method")}
        names = [m for m in order if m in by_method] + sorted(set(by_method) - set(order))
        for baseline, method in itertools.combinations(names, 2):
            seeds = sorted(set(by_method[method].index) & set(by_method[baseline].index))
            if not seeds:
                continue
            k = dict(zip(cell, keys, strict=True))
            where = tuple(str(k[c]) for c in ("system", "mapping", "temperature"))
            terms = [
                (sign, where + (m, str(k["n_train"]), str(k["dt"])), by_method[m].to_dict())
                for sign, m in ((1.0, method), (-1.0, baseline))
            ]
            mean, lo, hi = paired_effect(terms, seeds, k["metric"], draws)
            ratio = _paired_ratio(terms, seeds, k["metric"], draws)
            rows.append(
                {**k, "method": method, "baseline": baseline, "mean": mean, "ci_low": lo,
                 "ci_high": hi, "n_seeds": len(seeds),
                 "excludes_zero": bool(len(seeds) > 1 and (lo > 0 or hi < 0)),
                 **ratio}
            )  # fmt: skip
    columns = ["system", "mapping", "temperature", "metric", "method", "baseline", "n_train", "dt",
               "mean", "ci_low", "ci_high", "n_seeds", "excludes_zero", "ratio", "ratio_ci_low",
               "ratio_ci_high"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def _paired_ratio(terms: list, seeds: list, metric: str, draws: dict) -> dict:
    """Baseline mean over ``seeds`` / method mean, with a 95 % CI (``terms`` as for
    ``paired_effect``: the method's with sign +1, the baseline's with -1): Fieller's
    interval over seeds (``stats.seed_ratio_ci``), with an infinite end when the
    method's mean error is not surely above zero."""
    (_, method_keys, method_of), (_, baseline_keys, baseline_of) = terms
    method = seed_draws(draws, method_keys, seeds, metric, method_of)
    baseline = seed_draws(draws, baseline_keys, seeds, metric, baseline_of)
    lo, hi = stats.seed_ratio_ci([baseline_of[s] for s in seeds], [method_of[s] for s in seeds],
                                 baseline, method)  # fmt: skip
    num = float(np.mean([baseline_of[s] for s in seeds]))
    den = float(np.mean([method_of[s] for s in seeds]))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = float(np.divide(num, den))
    return {"ratio": ratio, "ratio_ci_low": lo, "ratio_ci_high": hi}


def noise_floors(df: pd.DataFrame, primary: dict[str, str], records=()) -> dict[tuple, str]:
    """Each system's noise floor (the ``reference`` rows of its primary metric) as
    text, by (system, mapping, temperature, metric), with the basin relaxation time
    of the reference runs where they are time series (``records``: metrics.json)."""
    rows = df[(df.method == REFERENCE) & _is_primary(df, primary)]
    relaxation = {
        (r.run.system, r.run.mapping, r.run.temperature): r.bootstrap
        for r in records
        if r.run.method == REFERENCE
    }
    out = {}
    for r in rows.itertuples():
        ci = f" [{r.ci_low:.2f}, {r.ci_high:.2f}]" if np.isfinite(r.ci_low) else ""
        what = f"the training reference, {int(r.n_train)} frames, scored as a model"
        text = f"{r.value:.2f}{ci} ({what})"
        info = relaxation.get((r.system, r.mapping, r.temperature), {})
        text += _relaxation_text(info)
        out[(r.system, r.mapping, r.temperature, r.metric)] = text
    return out


def _relaxation_text(bootstrap: dict) -> str:
    """The reference runs' basin relaxation time, as a clause (empty when the
    reference is not a time series or visits one basin only)."""
    parts = []
    for label, br in basin_relaxation(bootstrap).items():
        tau = br.get("tau")
        if tau is None or not np.isfinite(tau):
            continue
        parts.append(
            f"{label} run: tau = {tau:.3g} ps ({br['slowest_basin']}), "
            f"{br['independent_samples']:.0f} independent basin samples"
        )
    if not parts:
        return ""
    return "; basin occupancy autocorrelation time, " + "; ".join(parts)
