"""Collect every run's metrics into ``summary.csv`` (long format, with each run's 95 %
CI), the benchmark table (``benchmark.csv``, ``benchmark.md``: each system's main
metric by method, n_train and dt, mean over seeds with a 95 % CI), the paired
differences between methods (``differences.csv``) and figures."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd

from cgflow.analysis import stats
from cgflow.analysis.claims import (
    GROUP,
    MIN_CROSSING,
    MIN_SEEDS,
    claims_markdown,
    claims_table,
    paired_effect,
    run_key,
    seed_draws,
)
from cgflow.analysis.convergence import (
    MIN_BASIN_SAMPLES,
    basin_relaxation,
    convergence_markdown,
    reference_checks,
    unconverged,
)
from cgflow.analysis.figures import plot_claims, plot_errors, plot_profiles
from cgflow.analysis.names import dt_label, n_train_label
from cgflow.io import atomic_write, load_dataset, read_json

COLUMNS = [
    "system", "mapping", "method", "n_train", "seed", "dt", "temperature", "metric", "value",
    "run_dir", "ci_low", "ci_high",
]  # fmt: skip

REFERENCE = "reference"
"""The ``method`` of rows that score the reference data themselves (the noise floor)."""


def collect(records: list[dict]) -> pd.DataFrame:
    """One row per (run, metric), columns as in DESIGN.md, from metrics.json records."""
    rows = []
    for rec in records:
        cis = rec.get("ci95", {})
        for metric, value in rec["metrics"].items():
            lo, hi = cis.get(metric, (np.nan, np.nan))
            rows.append(
                {**rec["run"], "metric": metric, "value": value, "ci_low": lo, "ci_high": hi}
            )
    df = pd.DataFrame(rows, columns=COLUMNS)
    return df.sort_values(
        ["system", "mapping", "method", "n_train", "seed", "dt", "metric"],
        na_position="first",
        kind="stable",
    )


def primary_metrics(records: list[dict]) -> dict[str, str]:
    """Each system's primary metric, as its evaluation declared it."""
    return {rec["run"]["system"]: rec["primary_metric"] for rec in records}


def load_draws(metric_files: list[str], records: list[dict]) -> dict[tuple, dict]:
    """Each run's bootstrap draws of its metrics (``bootstrap.npz`` beside its
    metrics.json), by ``run_key``; runs without draws are left out."""
    out = {}
    for f, rec in zip(metric_files, records, strict=True):
        path = Path(f).with_name("bootstrap.npz")
        if path.is_file():
            draws, _ = load_dataset(path)
            if "empty" not in draws:
                out[run_key(rec["run"])] = draws
    return out


RECORD_KEYS = ("run", "metrics", "primary_metric", "figure_kind")
"""What every metrics.json of cgflow evaluate holds."""


def _metrics_record(path: str) -> dict:
    """A metrics.json, checked to be one (ValueError naming the file)."""
    record = read_json(path)
    missing = [k for k in RECORD_KEYS if not isinstance(record, dict) or k not in record]
    if missing:
        raise ValueError(f"{path}: not a metrics.json of cgflow evaluate (lacks {missing})")
    return record


def aggregate_step(metric_files: list[str], out_csv: str, figures_dir: str,
                   order: list[str] = (), claims: list[dict] = (), min_seeds: int = MIN_SEEDS,
                   min_basin_samples: int = MIN_BASIN_SAMPLES,
                   min_replicas_crossing: float = MIN_CROSSING) -> pd.DataFrame:  # fmt: skip
    records = [_metrics_record(f) for f in metric_files]
    df = collect(records)
    draws = load_draws(metric_files, records)
    primary = primary_metrics(records)
    out_csv = Path(out_csv)
    atomic_write(out_csv, lambda fh: df.to_csv(fh, index=False))
    figures = Path(figures_dir)
    figures.mkdir(parents=True, exist_ok=True)
    plot_profiles(metric_files, records, figures)
    table = benchmark_table(df, primary, draws)
    units = {rec["run"]["system"]: rec.get("units") for rec in records}
    plot_errors(table, df, units, figures)
    atomic_write(out_csv.with_name("benchmark.csv"), lambda fh: table.to_csv(fh, index=False))
    diffs = paired_differences(df, primary, draws, order)
    atomic_write(out_csv.with_name("differences.csv"), lambda fh: diffs.to_csv(fh, index=False))
    checks = reference_checks(df, records, min_basin_samples)
    verdicts = claims_table(list(claims), df, primary, draws, min_seeds, unconverged(checks),
                            min_replicas_crossing)  # fmt: skip
    atomic_write(out_csv.with_name("claims.csv"), lambda fh: verdicts.to_csv(fh, index=False))
    claims_text = claims_markdown(verdicts, min_seeds).encode()
    atomic_write(out_csv.with_name("claims.md"), lambda fh: fh.write(claims_text))
    plot_claims(verdicts, figures / "claims.png")
    text = (
        benchmark_markdown(table, noise_floors(df, primary, records))
        + convergence_markdown(checks)
        + differences_markdown(diffs)
        + crossing_markdown(df, min_replicas_crossing)
        + ci_sides_markdown(records)
        + pressure_markdown(df, draws)
        + thermodynamics_markdown(df, draws)
        + speed_markdown(records)
    ).encode()
    atomic_write(out_csv.with_name("benchmark.md"), lambda fh: fh.write(text))
    return df


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
        (r["run"]["system"], r["run"]["mapping"], r["run"]["temperature"]): r["bootstrap"]
        for r in records
        if r["run"]["method"] == REFERENCE
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


def benchmark_markdown(table: pd.DataFrame, floors: dict | None = None) -> str:
    """The benchmark table as Markdown: per system, rows (method, n_train), columns dt,
    cells mean [95 % CI] over seeds, and the system's noise floor (``floors``)."""
    lines = []
    floors = floors or {}
    groups = table.groupby(["system", "mapping", "temperature", "metric"], sort=True)
    for key, part in groups:
        system, mapping, temperature, metric = key
        lines += [
            f"## {system} / {mapping} / T = {temperature:g}: {metric} "
            f"(mean over seeds [95 % CI]; lower is better)",
            "",
        ]
        if key in floors:
            lines += [f"Noise floor: {floors[key]}.", ""]
        lines += _dt_table(part, _cell)
    return "\n".join(lines)


def _dt_table(part: pd.DataFrame, cell) -> list[str]:
    """Markdown lines of one benchmark-table group: rows (method, n_train), columns
    dt, each cell ``cell(row)`` of its benchmark_table row (empty where none), and a
    blank line."""
    dts = sorted(part.dt.unique())
    lines = ["| method | n_train | " + " | ".join(map(dt_label, dts)) + " |",
             "|---|---:|" + "---:|" * len(dts)]  # fmt: skip
    for (method, n_train), row in part.groupby(["method", "n_train"], sort=True):
        hits = [row[row.dt == dt] for dt in dts]
        cells = [cell(hit.iloc[0]) if len(hit) else "" for hit in hits]
        lines.append(f"| {method} | {n_train_label(n_train)} | " + " | ".join(cells) + " |")
    return lines + [""]


def crossing_markdown(df: pd.DataFrame, threshold: float = 0.0) -> str:
    """Per system, the share of each model's CG replicas that visited more than one
    basin (``replicas_crossing``), mean over its stable seeds: near 0, its basin
    populations are its start frames'. A cell where some seed's run fell below
    ``threshold`` is flagged (its claims are undecided). Empty without it."""
    rows = df[df.metric == "replicas_crossing"].dropna(subset=["value"])
    lines = []
    for (system, mapping, temperature), part in rows.groupby(
        ["system", "mapping", "temperature"], sort=True
    ):
        cells = part.groupby(GROUP[3:], sort=True).value.agg(["mean", "size", "min"])
        cells = cells.reset_index()
        flag = (
            (
                f"; **below {threshold:g}**: some seed's replicas mostly stayed in their "
                "start basins, and claims reading the cell are undecided"
            )
            if threshold
            else ""
        )
        lines += [f"## {system} / {mapping} / T = {temperature:g}: share of CG replicas that "
                  "visited more than one basin (mean over stable seeds; near 0, the basin "
                  f"populations are the start frames'{flag})", ""]  # fmt: skip

        def cell(r):
            low = " **below**" if threshold and r["min"] < threshold else ""
            return f"{r['mean']:.2f} (n={r['size']}){low}"

        lines += _dt_table(cells, cell)
    return "\n".join(lines)


def pressure_markdown(df: pd.DataFrame, draws: dict) -> str:
    """The virial pressure of the models of periodic systems (bar): per system,
    rows (method, n_train), columns dt, mean over seeds [95 % CI], under the test
    reference's pressure and the training reference's. Empty without pressures."""
    rows = df[df.metric == "pressure_bar"]
    if rows.empty:
        return ""
    table = benchmark_table(df, {s: "pressure_bar" for s in rows.system.unique()}, draws)
    refs = df[(df.method == REFERENCE) & df.metric.isin(["pressure_bar", "reference_pressure_bar"])]
    lines = []
    for (system, mapping, temperature), part in table.groupby(
        ["system", "mapping", "temperature"], sort=True
    ):
        lines += [f"## {system} / {mapping} / T = {temperature:g}: virial pressure (bar; "
                  "mean over seeds [95 % CI])", ""]  # fmt: skip
        here = refs[(refs.system == system) & (refs.mapping == mapping)
                    & (refs.temperature == temperature)]  # fmt: skip
        for metric, label in (("reference_pressure_bar", "test reference"),
                              ("pressure_bar", "training reference")):  # fmt: skip
            for r in here[here.metric == metric].itertuples():
                lines.append(f"- {label}: {r.value:.0f} [{r.ci_low:.0f}, {r.ci_high:.0f}]")
        lines += [""] + _dt_table(part, _pressure_cell)
    return "\n".join(lines)


def _ci_cell(r, digits: int = 2) -> str:
    """``mean [low, high]`` of a benchmark-table row ('' without a mean)."""
    if not np.isfinite(r["mean"]):
        return ""
    return f"{r['mean']:.{digits}f} [{r.ci_low:.{digits}f}, {r.ci_high:.{digits}f}]"


def _pressure_cell(r) -> str:
    return _ci_cell(r, digits=0)


THERMODYNAMICS = (
    ("mean_energy_model_kT", "<U>/kT, model"),
    ("mean_energy_ref_kT", "<U>/kT, reference"),
    ("mean_energy_err_kT", "<U> error (kT)"),
    ("heat_capacity_model", "C, model (k_B)"),
    ("heat_capacity_ref", "C, reference"),
    ("heat_capacity_err", "C error (k_B)"),
    ("mean_energy_err_kT_on_reference", "<U> error on the reference's frames"),
    ("heat_capacity_err_on_reference", "C error on the reference's frames"),
)
"""Metrics of a free energy's thermodynamics from its CG samples (steps.evaluate)."""


def thermodynamics_markdown(df: pd.DataFrame, draws: dict) -> str:
    """The mean all-atom energy and heat capacity that temperature-aware models
    predict from their CG samples, against the test reference's: per system, a row
    per (temperature, method, n_train, dt), mean over seeds [95 % CI]. Empty
    without them."""
    present = [(m, label) for m, label in THERMODYNAMICS if (df.metric == m).any()]
    if not present:
        return ""
    systems = df[df.metric == present[0][0]].system.unique()
    table = pd.concat([benchmark_table(df, {s: m for s in systems}, draws) for m, _ in present])
    keys = ["temperature", "method", "n_train", "dt"]
    lines = []
    for (system, mapping), part in table.groupby(["system", "mapping"], sort=True):
        lines += [f"## {system} / {mapping}: mean all-atom energy and heat capacity "
                  "predicted from the CG samples (mean over seeds [95 % CI])", "",
                  "| T | method | n_train | dt | " + " | ".join(lb for _, lb in present) + " |",
                  "|---:|---|---:|---:|" + "---:|" * len(present)]  # fmt: skip
        for (t, method, n_train, dt), rows in part.groupby(keys, sort=True):
            cells = []
            for metric, _ in present:
                hit = rows[rows.metric == metric]
                cells.append(_ci_cell(hit.iloc[0]) if len(hit) else "")
            lines.append(f"| {t:g} | {method} | {n_train_label(n_train)} | {dt_label(dt)} | "
                         + " | ".join(cells) + " |")  # fmt: skip
        lines.append("")
    return "\n".join(lines)


def ci_sides_markdown(records: list[dict]) -> str:
    """Where each run's CI of its primary metric comes from, for systems whose
    samples and reference are both resampled: per run, the half-width of the whole
    95 % CI, and of the CI with only the model's samples (CG replicas) resampled or
    only the reference's blocks. The wider side is the one to sample more of."""
    rows = {}
    for rec in records:
        run, boot = rec["run"], rec.get("bootstrap") or {}
        metric = rec["primary_metric"]
        sides = boot.get("ci95_by_side") or {}
        whole = (rec.get("ci95") or {}).get(metric)
        if run["method"] == REFERENCE or whole is None or not sides:
            continue
        half = {side: (v[metric][1] - v[metric][0]) / 2 for side, v in sides.items()}
        key = (run["system"], run["mapping"], float(run["temperature"]), metric)
        rows.setdefault(key, []).append(
            (run["method"], int(run["n_train"]), float(run["dt"]), int(run["seed"]),
             rec["metrics"][metric], whole, half)
        )  # fmt: skip
    lines = []
    for (system, mapping, temperature, metric), runs in sorted(rows.items()):
        widths = [(r[5][1] - r[5][0]) / 2 for r in runs]
        cg_wider = sum(r[6]["samples"] > r[6]["reference"] for r in runs)
        lines += [
            f"## {system} / {mapping} / T = {temperature:g}: {metric}, each run's 95 % CI "
            "half-width and its two sides",
            "",
            f"Widest half-width {max(widths):.2f}, median {np.median(widths):.2f}; the CG "
            f"side is the wider in {cg_wider} of {len(runs)} runs (more replicas narrow "
            "those; a longer test reference the others).",
            "",
            "| method | n_train | dt | seed | value [95 % CI] | half-width | CG side | "
            "reference side |",
            "|---|---:|---:|---:|---|---:|---:|---:|",
        ]
        for method, n, dt, seed, value, (lo, hi), half in sorted(runs):
            lines.append(
                f"| {method} | {n} | {dt:g} | {seed} | {value:.2f} [{lo:.2f}, {hi:.2f}] | "
                f"{(hi - lo) / 2:.2f} | {half['samples']:.2f} | {half['reference']:.2f} |"
            )
        lines.append("")
    return "\n".join(lines)


def speed_markdown(records: list[dict]) -> str:
    """Sampling speed per system: the all-atom reference MD's ns/day, and each CG
    model's (method, dt) ns/day per replica and summed over its replicas, mean over
    seeds; measured where the job ran (see each run's status.json for its device)."""
    aa, cg = {}, {}
    for rec in records:
        speed, run = rec.get("speed") or {}, rec["run"]
        key = (run["system"], run["mapping"], float(run["temperature"]))
        if speed.get("kind") == "aa":
            aa[key] = speed
        elif speed.get("kind") == "cg":
            cg.setdefault(key, {}).setdefault((run["method"], float(run["dt"])), []).append(speed)
    if not cg:
        return ""
    lines = []
    for key in sorted(cg):
        system, mapping, temperature = key
        lines += [f"## {system} / {mapping} / T = {temperature:g}: sampling speed", ""]
        if key in aa:
            n = aa[key].get("n_atoms_simulated")
            atoms = f" ({n} atoms)" if n else ""
            lines += [f"All-atom reference MD{atoms}: {aa[key]['ns_per_day']:.3g} ns/day.", ""]
        lines += ["| method | dt | ns/day per replica | ns/day summed over replicas |",
                  "|---|---:|---:|---:|"]  # fmt: skip
        for (method, dt), runs in sorted(cg[key].items()):
            per = np.mean([r["ns_per_day_per_replica"] for r in runs])
            total = np.mean([r["ns_per_day_all_replicas"] for r in runs])
            lines.append(f"| {method} | {dt:g} | {per:.3g} | {total:.3g} |")
        lines.append("")
    return "\n".join(lines)


def _cell(r) -> str:
    if r.n_unstable == r.n_seeds:
        return f"unstable ({r.n_seeds}/{r.n_seeds})"
    text = f"{r['mean']:.2f}" + (
        f" [{r.ci_low:.2f}, {r.ci_high:.2f}]" if np.isfinite(r.ci_low) else ""
    )
    text += f" (n={r.n_seeds})"
    if r.n_unstable:
        text += f", {r.n_unstable} unstable"
    return text


def differences_markdown(diffs: pd.DataFrame) -> str:
    """Paired differences as Markdown: per system, rows (method - baseline, n_train),
    columns dt; a star marks a 95 % CI that excludes zero. Below each, the ratio of the
    baseline's mean error to the method's, laid out the same way."""
    if diffs.empty:
        return ""
    lines = []
    for (system, mapping, temperature, metric), part in diffs.groupby(
        ["system", "mapping", "temperature", "metric"]
    ):
        dts = sorted(part.dt.unique())
        head = [
            "| method - baseline | n_train | " + " | ".join(map(dt_label, dts)) + " |",
            "|---|---:|" + "---:|" * len(dts),
        ]
        where = f"## {system} / {mapping} / T = {temperature:g}: "
        lines += [
            where + f"paired difference of {metric} (method - baseline, mean over seeds "
            "[95 % CI over seeds]; * the CI excludes 0; negative: method better; "
            "(1 seed): the CI holds one trained model's sampling noise, not the spread "
            "between trainings, and gets no star)",
            "",
            *head,
            *_by_dt_rows(part, dts, _difference_cell),
            "",
            where + f"ratio of mean {metric}, baseline / method [95 % CI, Fieller over "
            "seeds]; > 1: method better",
            "",
            *head,
            *_by_dt_rows(part, dts, _ratio_cell),
            "",
        ]
    return "\n".join(lines)


def _by_dt_rows(part: pd.DataFrame, dts: list, cell) -> list[str]:
    lines = []
    for (method, baseline, n_train), row in part.groupby(["method", "baseline", "n_train"]):
        cells = []
        for dt in dts:
            hit = row[row.dt == dt]
            cells.append(cell(hit.iloc[0]) if len(hit) else "")
        lines.append(
            f"| {method} - {baseline} | {n_train_label(n_train)} | " + " | ".join(cells) + " |"
        )
    return lines


def _difference_cell(r) -> str:
    mark = " *" if r.excludes_zero else " (1 seed)" if r.n_seeds == 1 else ""
    return f"{r['mean']:+.2f} [{r.ci_low:+.2f}, {r.ci_high:+.2f}]" + mark


def _ratio_cell(r) -> str:
    mark = " (1 seed)" if r.n_seeds == 1 else ""
    lo, hi = _ratio_text(r.ratio_ci_low), _ratio_text(r.ratio_ci_high)
    return f"{_ratio_text(r.ratio)} [{lo}, {hi}]{mark}"


def _ratio_text(x: float) -> str:
    """Two decimals below 10, one below 1,000, else three significant digits."""
    if not np.isfinite(x) or abs(x) >= 1000:
        return f"{x:.3g}"
    return f"{x:.2f}" if abs(x) < 10 else f"{x:.1f}"
