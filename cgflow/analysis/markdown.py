"""The Markdown sections of ``benchmark.md``: the benchmark table, the paired
differences, replicas crossing, each side's CI, pressure, thermodynamics and speed."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cgflow.analysis.claims import GROUP, REFERENCE
from cgflow.analysis.names import dt_label, n_train_label
from cgflow.analysis.tables import benchmark_table


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


def failed_markdown(failed: list) -> str:
    """The runs whose scores could not be read (``FailedRun``), each with its reason
    and what to do; empty without any."""
    if not failed:
        return ""
    lines = ["## Failed runs", "",
             f"{len(failed)} run{'s' if len(failed) > 1 else ''} could not be read and "
             "{} left out of every table; the claims that may read {} are undecided. "
             "Remove each file and rerun the study to score the run again.".format(
                 "is" if len(failed) == 1 else "are", "it" if len(failed) == 1 else "them"),
             "", "| run | reason |", "|---|---|"]  # fmt: skip
    for f in failed:
        reason = f.reason.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {f.path} | {reason} |")
    return "\n".join(lines) + "\n\n"


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


def ci_sides_markdown(records: list) -> str:
    """Where each run's CI of its primary metric comes from, for systems whose
    samples and reference are both resampled: per run, the half-width of the whole
    95 % CI, and of the CI with only the model's samples (CG replicas) resampled or
    only the reference's blocks. The wider side is the one to sample more of."""
    rows = {}
    for rec in records:
        run, metric = rec.run, rec.primary_metric
        sides = rec.bootstrap.get("ci95_by_side") or {}
        whole = rec.ci95.get(metric)
        if run.method == REFERENCE or whole is None or not sides:
            continue
        half = {side: (v[metric][1] - v[metric][0]) / 2 for side, v in sides.items()}
        key = (run.system, run.mapping, float(run.temperature), metric)
        rows.setdefault(key, []).append(
            (run.method, int(run.n_train), float(run.dt), int(run.seed),
             rec.metrics[metric], whole, half)
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


def speed_markdown(records: list) -> str:
    """Sampling speed per system: the all-atom reference MD's ns/day, and each CG
    model's (method, dt) ns/day per replica and summed over its replicas, mean over
    seeds; measured where the job ran (see each run's status.json for its device)."""
    aa, cg = {}, {}
    for rec in records:
        speed, run = rec.speed, rec.run
        key = (run.system, run.mapping, float(run.temperature))
        if speed.get("kind") == "aa":
            aa[key] = speed
        elif speed.get("kind") == "cg":
            cg.setdefault(key, {}).setdefault((run.method, float(run.dt)), []).append(speed)
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
