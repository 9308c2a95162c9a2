"""The study's figures: free energies and structure against the reference, errors
against data-set size and time step, and the claims.

Each figure is built by a function that returns it (so tests can check its layout)
and saved by ``save``. Every figure uses matplotlib's constrained layout, puts its
legends outside the data, labels its axes with units, shows CIs where the numbers
have them, draws a panel only where there is an axis to show, and wraps its panels
into rows.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from cgflow.analysis.claims import REFERENCE, verdict_kind  # noqa: E402
from cgflow.analysis.names import dt_label, figure_name  # noqa: E402

COLUMNS_PER_ROW = 3
"""Panels per row before a figure wraps."""
PANEL = (4.6, 3.4)
"""Width and height of one panel (inches), its legend beside it not included."""
DPI = 120
FREE_COLORS = ("tab:purple", "tab:pink", "tab:olive")
"""Lines of data-free generators (one value, no axis), each its own colour."""
VERDICT_COLORS = {"holds": "tab:green", "does not hold": "tab:red", "undecided": "tab:gray"}


def save(fig, path: Path) -> None:
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _grid(n: int, legend_width: float = 0.0):
    """A constrained-layout figure of ``n`` panels, wrapped into rows of at most
    ``COLUMNS_PER_ROW``, each with ``legend_width`` inches beside it for a legend."""
    cols = max(1, min(n, COLUMNS_PER_ROW))
    rows = max(1, math.ceil(n / cols))
    fig, axes = plt.subplots(
        rows, cols, squeeze=False, layout="constrained",
        figsize=(cols * (PANEL[0] + legend_width), rows * PANEL[1] + 0.5),
    )  # fmt: skip
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _legend_beside(ax, fontsize: float = 7) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, fontsize=fontsize, loc="upper left",
                  bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, frameon=False)  # fmt: skip


def time_axis_label(units: dict | None) -> str:
    """The x label of a time-step axis in the system's time unit."""
    unit = (units or {}).get("time", "")
    if not unit:  # metrics.json of an older cgflow: the unit is not recorded
        return "CG time step dt (the system's time unit)"
    if unit == "reduced":
        return "CG time step dt (reduced units)"
    return f"CG time step dt / {unit}"


# --- errors against data-set size and time step -------------------------------------


def error_vs_figure(table: pd.DataFrame, x: str, units: dict[str, dict] | None = None,
                    references: pd.DataFrame | None = None):  # fmt: skip
    """Each system's primary metric against ``x`` (``dt`` or ``n_train``): a panel per
    (system, temperature) that ran at least two values of ``x``, a line per method
    and the other axis's value, the mean over seeds with its 95 % CI (the benchmark
    table's seed-level interval) as error bars; an x at the top where every seed was
    unstable. Data-free generators (no data, no dt) are a horizontal line, and
    ``references`` (the noise-floor rows) a dotted one.

    Args:
      table: ``benchmark_table`` output.
      units: each system's units (its metrics.json), for the time axis.
      references: rows of ``summary.csv`` with method ``reference``.
    """
    line = "n_train" if x == "dt" else "dt"
    free = (table.n_train == 0) & (table.dt == 0)
    runs = table[~free]
    panels = [key for key, part in runs.groupby(["system", "temperature"], sort=True)
              if part[x].nunique() > 1]  # fmt: skip
    fig, axes = _grid(len(panels) or 1, legend_width=1.9)
    if not panels:
        axes[0].set_axis_off()
        axes[0].text(0.5, 0.5, f"no system ran more than one {x}", ha="center", va="center",
                     transform=axes[0].transAxes)  # fmt: skip
        return fig
    for ax, (system, temperature) in zip(axes, panels, strict=True):
        part = runs[(runs.system == system) & (runs.temperature == temperature)]
        metric = part.metric.iloc[0]
        unstable = False
        for (method, value), g in part.groupby(["method", line], sort=True):
            g = g.sort_values(x)
            err = np.vstack([g["mean"] - g.ci_low, g.ci_high - g["mean"]])
            err = np.where(np.isfinite(err), np.clip(err, 0.0, None), 0.0)
            label = f"{method}, " + (f"n={value}" if line == "n_train" else dt_label(value, "dt="))
            drawn = ax.errorbar(g[x], g["mean"], yerr=err, marker="o", ms=4, capsize=3,
                                label=label)  # fmt: skip
            bad = g[g["mean"].isna() & (g.n_unstable > 0)]
            if len(bad):
                ax.plot(bad[x], np.full(len(bad), 0.97), "x", ms=7, mew=2, clip_on=False,
                        color=drawn[0].get_color(), transform=ax.get_xaxis_transform())  # fmt: skip
                unstable = True
        if unstable:
            ax.plot([], [], "x", color="0.3", mew=2, label="x: every seed unstable")
        at = table[free & (table.system == system) & (table.temperature == temperature)]
        for k, (method, g) in enumerate(at.groupby("method")):
            ax.axhline(g["mean"].mean(), ls="--", lw=1.2, color=FREE_COLORS[k % len(FREE_COLORS)],
                       label=f"{method} (no data, sampled)")  # fmt: skip
        if references is not None:
            ref = references[(references.system == system) & (references.metric == metric)
                             & (references.temperature == temperature)]  # fmt: skip
            if len(ref):
                ax.axhline(ref.value.mean(), color="k", ls=":", lw=1.0,
                           label="noise floor (reference data)")  # fmt: skip
        ticks = sorted(part[x].unique())  # the values run, not a generic scale
        if x == "n_train":
            ax.set_xscale("log")
            ax.minorticks_off()
            ax.set_xlabel("training frames n_train")
        else:
            ax.set_xlabel(time_axis_label((units or {}).get(system)))
        ax.set_xticks(ticks, [f"{v:g}" for v in ticks])
        ax.set_ylabel(f"{metric}\n(mean over seeds, 95 % CI)")
        ax.set_title(f"{system}, T = {temperature:g}", fontsize=9)
        _legend_beside(ax)
    return fig


# --- free energies and structure -----------------------------------------------------


def profile_figure(kind: str, ref: dict, models: list, title: str):
    """The reference free energy (or structure) and each model's; ``kind`` is the
    system's figure kind, ``models`` (run, curves) pairs of one seed."""
    draw = {"profile_1d": _profiles_1d, "surface_2d": _surfaces_2d,
            "structure": _structure}[kind]  # fmt: skip
    fig = draw(ref, models)
    fig.suptitle(title, fontsize=10)
    return fig


def plot_profiles(records: list, curves_of: list[dict], figures: Path) -> None:
    """Per (system, mapping, temperature): the reference free energy and each
    model's, curves of the first seed (``curves_of``: each record's ``curves.npz``)."""
    groups: dict[tuple, list] = {}
    for rec, curves in zip(records, curves_of, strict=True):
        run = rec.run.to_json()
        if "empty" not in curves:
            key = (run["system"], run["mapping"], run["temperature"], rec.figure_kind)
            groups.setdefault(key, []).append((run, curves))
    for (system, mapping, temperature, kind), items in groups.items():
        ref = next((c for r, c in items if r["method"] == REFERENCE), items[0][1])
        models = [(r, c) for r, c in items if r["method"] != REFERENCE]
        first_seed = min((r["seed"] for r, _ in models), default=None)
        models = [(r, c) for r, c in models if r["seed"] == first_seed]
        title = f"{system} / {mapping} / T = {temperature:g}" + (
            f" (seed {first_seed})" if models else "")  # fmt: skip
        fig = profile_figure(kind, ref, models, title)
        save(fig, figures / figure_name(kind, system, mapping, temperature))


def _structure(ref, models):
    """A liquid: g(r) and the triplet ADF of the test reference, the training
    reference and each model at its largest n_train."""
    fig, axes = _grid(2, legend_width=1.9)
    n_max = max((r["n_train"] for r, _ in models), default=None)
    panels = (
        ("r", "rdf", "r / nm", "g(r)"),
        ("theta", "adf", "angle / rad", "ADF density / rad⁻¹"),
    )
    for ax, (x, key, xlabel, ylabel) in zip(axes, panels, strict=True):
        ax.plot(ref[x], ref[f"{key}_reference"], "k-", lw=2.5, label="test reference")
        ax.plot(ref[x], ref[f"{key}_model"], "k:", lw=1.2, label="training reference")
        for run, c in sorted(models, key=lambda rc: (rc[0]["method"], rc[0]["dt"])):
            if run["n_train"] == n_max and f"{key}_model" in c:
                label = f"{run['method']} n={n_max} {dt_label(run['dt'], 'dt=')}"
                ax.plot(c[x], c[f"{key}_model"], lw=1.2, label=label)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        _legend_beside(ax)
    return fig


def _profiles_1d(ref, models):
    """An exact 1-D PMF and each model's: a panel per dt, a line per (method,
    n_train); solid the CG simulation's PMF, dashed the model's own by quadrature."""
    dts = sorted({r["dt"] for r, _ in models}) or [None]
    fig, axes = _grid(len(dts), legend_width=1.9)
    for ax, dt in zip(axes, dts, strict=True):
        ax.plot(ref["centres"], ref["pmf_reference_kT"], "k-", lw=2.5, label="exact")
        for run, c in sorted(models, key=lambda rc: (rc[0]["method"], rc[0]["n_train"])):
            if run["dt"] != dt:
                continue
            label = f"{run['method']} n={run['n_train']}"
            color = None
            if "pmf_model_kT" in c:  # the simulation's PMF (none when it blew up)
                (drawn,) = ax.plot(c["centres"], c["pmf_model_kT"], lw=1.2, label=label)
                color, label = drawn.get_color(), None
            if "pmf_quadrature_kT" in c:  # the model's own PMF, dashed
                ax.plot(c["centres"], c["pmf_quadrature_kT"], "--", lw=0.8, color=color,
                        label=label)  # fmt: skip
        ax.set_title(dt_label(dt, "dt = ") if dt is not None else "", fontsize=9)
        ax.set_xlabel("CG coordinate x1 (reduced units)")
        ax.set_ylabel("PMF / kT (solid: CG simulation,\ndashed: quadrature)")
        ax.set_ylim(-0.5, 10)
        _legend_beside(ax)
    return fig


def coarsen_free_energy(f: np.ndarray, factor: int) -> np.ndarray:
    """A free energy (kT; NaN where never visited) on a grid ``factor`` times
    coarser along each axis, from the summed probabilities of the merged bins:
    a display of a short reference without speckle or gaps."""
    if factor <= 1:
        return f
    p = np.exp(-(np.where(np.isfinite(f), f, np.inf) - np.nanmin(f)))
    shape = []
    for n in p.shape:
        shape += [n // factor, factor]
    p = p[tuple(slice(0, (n // factor) * factor) for n in p.shape)].reshape(shape)
    p = p.sum(axis=tuple(range(1, len(shape), 2)))
    with np.errstate(divide="ignore"):
        out = -np.log(p)
    out[~np.isfinite(out)] = np.nan
    return out - np.nanmin(out)


DISPLAY_BINS = 20
"""Bins per angle at most in a drawn surface or marginal (the scores use their own)."""


def _surfaces_2d(ref, models):
    """Top row: the reference phi/psi surface and each model's at the largest n_train
    (wrapping); bottom row: the 1-D PMFs along phi and psi, reference and models. The
    surfaces are drawn on a grid of at most ``DISPLAY_BINS`` bins per angle."""
    panels = [("reference", ref, "fes_reference_kT")]
    if models:
        n_max = max(r["n_train"] for r, _ in models)
        for run, c in sorted(models, key=lambda rc: (rc[0]["method"], rc[0]["dt"])):
            if run["n_train"] == n_max:
                panels.append((f"{run['method']} n={n_max} {dt_label(run['dt'], 'dt=')}", c,
                               "fes_model_kT"))  # fmt: skip
    names = [k[: -len("_edges")] for k in ref if k.endswith("_edges")]
    edges = np.degrees(ref[f"{names[0]}_edges"])
    factor = max(1, math.ceil((len(edges) - 1) / DISPLAY_BINS))
    shown = edges[::factor]
    cols = min(len(panels), 4)
    rows = math.ceil(len(panels) / cols)
    fig = plt.figure(figsize=(max(3.3 * cols + 1.4, 9.0), 3.2 * rows + 3.6), layout="constrained")
    grid = fig.add_gridspec(2, 1, height_ratios=[3.2 * rows, 3.4])
    top_grid, bottom_grid = grid[0].subgridspec(rows, cols), grid[1].subgridspec(1, 2)
    top = [fig.add_subplot(top_grid[k // cols, k % cols]) for k in range(len(panels))]
    for ax, (title, curves, key) in zip(top, panels, strict=True):
        mesh = ax.pcolormesh(shown, shown, coarsen_free_energy(curves[key], factor).T,
                             cmap="viridis", vmin=0, vmax=8)  # fmt: skip
        ax.set_title(title, fontsize=8)
        ax.set_xlabel(f"{names[0]} / deg")
        ax.set_ylabel(f"{names[1]} / deg")
        ax.set_aspect("equal")
        ax.set_xticks([-180, -90, 0, 90, 180])
        ax.set_yticks([-180, -90, 0, 90, 180])
    fig.colorbar(mesh, ax=top, label="free energy / kT", shrink=0.8)
    centres = 0.5 * (shown[1:] + shown[:-1])
    for k, name in enumerate(names):
        ax = fig.add_subplot(bottom_grid[0, k])
        ax.plot(centres, coarsen_free_energy(ref[f"pmf_{name}_reference_kT"], factor), "k-",
                lw=2.5, label="reference")  # fmt: skip
        for title, curves, _ in panels[1:]:
            ax.plot(centres, coarsen_free_energy(curves[f"pmf_{name}_model_kT"], factor), lw=1.2,
                    label=title)  # fmt: skip
        ax.set_xlabel(f"{name} / deg")
        ax.set_ylabel("PMF / kT")
        ax.set_ylim(-0.3, 8)
        ax.set_xticks([-180, -90, 0, 90, 180])
        if k == len(names) - 1:
            _legend_beside(ax)
    return fig


# --- claims --------------------------------------------------------------------------


def claims_figure(table: pd.DataFrame):
    """Each claim's effect with its 95 % CI against the claim's line (a forest plot),
    coloured by verdict."""
    n = max(len(table), 1)
    fig, ax = plt.subplots(figsize=(8.0, 0.6 * n + 1.6), layout="constrained")
    for i, r in enumerate(table.itertuples()):
        if np.isfinite(r.effect):  # drawn against the claim's line: left is in its favour
            sign = -1.0 if r.kind == "at_least" else 1.0
            x, lo, hi = (sign * (v - r.line) for v in (r.effect, r.ci_low, r.ci_high))
            lo, hi = min(lo, hi), max(lo, hi)
            if not (np.isfinite(lo) and np.isfinite(hi)):  # one seed: no CI over seeds
                lo = hi = x
            ax.errorbar(x, i, xerr=[[x - lo], [hi - x]], fmt="o", capsize=4,
                        color=VERDICT_COLORS[verdict_kind(r.verdict)])  # fmt: skip
    if table.empty:
        ax.text(0.5, 0.5, "no claims in the config", ha="center", va="center",
                transform=ax.transAxes)  # fmt: skip
    ax.axvline(0.0, color="k", lw=0.8)
    labels = [textwrap.fill(f"{r.claim} ({r.verdict})", 55) for r in table.itertuples()]
    ax.set_yticks(range(len(table)), labels, fontsize=7)
    ax.set_ylim(max(len(table), 1) - 0.5, -0.5)
    ax.set_xlabel(
        "effect against the claim's line, 95 % CI over seeds\n(method - baseline, less a "
        "within claim's margin; threshold - metric\nfor at_least): negative favours the claim",
        fontsize=8,
    )
    return fig


def plot_claims(table: pd.DataFrame, path) -> None:
    save(claims_figure(table), Path(path))


def plot_errors(table: pd.DataFrame, df: pd.DataFrame, units: dict, figures: Path) -> None:
    """``error_vs_dt.png`` and ``error_vs_n_train.png`` from the benchmark table."""
    refs = df[df.method == REFERENCE]
    save(error_vs_figure(table, "dt", units, refs), figures / "error_vs_dt.png")
    save(error_vs_figure(table, "n_train", units, refs), figures / "error_vs_n_train.png")
