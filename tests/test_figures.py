"""Every figure kind, drawn at its default size from synthetic results: nothing is
clipped, axes carry units, CIs show as error bars, panels appear only where there is
an axis to show."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import QuadMesh  # noqa: E402

from cgflow.analysis import figures  # noqa: E402
from cgflow.units import MOLECULAR, REDUCED  # noqa: E402


def clipped(fig) -> list[str]:
    """What of ``fig`` lies outside it (its tight bounding box against the canvas)."""
    fig.canvas.draw()
    box = fig.get_tightbbox(fig.canvas.get_renderer())
    w, h = fig.get_size_inches()
    tol = 0.02  # inches
    out = []
    if box.x0 < -tol or box.y0 < -tol:
        out.append(f"left/bottom edge at ({box.x0:.2f}, {box.y0:.2f}) in")
    if box.x1 > w + tol or box.y1 > h + tol:
        out.append(f"right/top edge at ({box.x1:.2f}, {box.y1:.2f}) in, figure {w:.2f} x {h:.2f}")
    return out


def test_the_clipping_check_sees_clipped_text():
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.set_xlabel("a label much longer than the figure is wide " * 3)
    assert clipped(fig)
    plt.close(fig)


def table():
    rows = []
    cells = [("dw", 3.0, "pmf_wrmse_kT", [100, 1000], [0.05, 0.1, 0.2]),
             ("ala", 300.0, "fes_wrmse_kT", [400, 4000], [0.002])]  # fmt: skip
    for system, temperature, metric, sizes, dts in cells:
        for method in ("fm", "re", "fm_re"):
            for n in sizes:
                for dt in dts:
                    mean = 1.0 / np.log10(n) + dt
                    rows.append(dict(system=system, mapping="m", temperature=temperature,
                                     metric=metric, method=method, n_train=n, dt=dt, mean=mean,
                                     sd=0.05, ci_low=mean - 0.1, ci_high=mean + 0.15,
                                     n_seeds=3, n_unstable=0))  # fmt: skip
    rows.append(dict(rows[0], method="rkl", n_train=0, dt=0.0, mean=0.4))
    rows.append(dict(rows[1], method="re", n_train=100, dt=0.3, mean=np.nan, ci_low=np.nan,
                     ci_high=np.nan, n_unstable=3))  # fmt: skip
    return pd.DataFrame(rows)


UNITS = {"dw": REDUCED, "ala": MOLECULAR}


def test_error_vs_dt_draws_only_systems_with_time_steps_with_cis():
    fig = figures.error_vs_figure(table(), "dt", UNITS)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["dw, T = 3"]  # alanine ran one dt
    assert axes[0].get_xlabel() == "CG time step dt (reduced units)"
    bars = [c for c in axes[0].containers if hasattr(c, "has_yerr") and c.has_yerr]
    assert len(bars) == 6  # 3 methods x 2 sizes, each with its CI
    segments = bars[0].lines[2][0].get_segments()
    assert np.allclose([s[1, 1] - s[0, 1] for s in segments], 0.25)  # ci_high - ci_low
    assert not clipped(fig)
    plt.close(fig)


def test_error_vs_n_train_wraps_and_keeps_legends_inside_the_figure():
    many = pd.concat([table().assign(system=f"s{k}") for k in range(5)])
    fig = figures.error_vs_figure(many, "n_train", {f"s{k}": REDUCED for k in range(5)})
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 10  # 5 systems x 2 temperatures, in rows of at most 3
    assert len({round(ax.get_position().y0, 3) for ax in axes}) == 4
    assert all(ax.get_xscale() == "log" for ax in axes)
    assert not clipped(fig)
    plt.close(fig)
    # the time axis names the molecular unit
    fig = figures.error_vs_figure(table().assign(system="ala"), "dt", UNITS)
    assert [ax.get_xlabel() for ax in fig.axes if ax.get_visible()] == ["CG time step dt / ps"]
    plt.close(fig)


def test_error_vs_dt_without_time_steps_says_so():
    fig = figures.error_vs_figure(table().query("system == 'ala'"), "dt", UNITS)
    assert "no system ran more than one dt" in fig.axes[0].texts[0].get_text()
    plt.close(fig)


def runs(kind):
    return [({"method": m, "n_train": 1000, "dt": dt, "seed": 0}, kind(m)) for m in
            ("fm", "re", "fm_re") for dt in (0.002, 0.004)]  # fmt: skip


def test_free_energy_surfaces_are_drawn_coarse_and_unclipped():
    rng = np.random.default_rng(0)
    edges = np.linspace(-np.pi, np.pi, 61)
    speckled = rng.exponential(2.0, (60, 60))
    speckled[rng.random((60, 60)) < 0.3] = np.nan  # bins a short reference never visits
    profile = rng.exponential(1.0, 60)
    profile[::7] = np.nan
    ref = {"phi_edges": edges, "psi_edges": edges, "fes_reference_kT": speckled,
           "pmf_phi_reference_kT": profile, "pmf_psi_reference_kT": profile}  # fmt: skip
    models = runs(lambda m: {"fes_model_kT": speckled, "pmf_phi_model_kT": profile,
                             "pmf_psi_model_kT": profile})  # fmt: skip
    fig = figures.profile_figure("surface_2d", ref, models, "alanine / heavy_atoms / T = 300")
    meshes = [c for ax in fig.axes if ax.get_label() != "<colorbar>" for c in ax.collections
              if isinstance(c, QuadMesh)]  # fmt: skip
    assert len(meshes) == 7 and all(m.get_array().shape == (20, 20) for m in meshes)
    assert not clipped(fig)
    plt.close(fig)
    # coarsening keeps the probability: merged bins' weights add
    f = np.array([[0.0, np.log(3.0)], [np.nan, np.nan]])
    assert figures.coarsen_free_energy(f, 2) == pytest.approx(np.zeros((1, 1)))
    assert np.isnan(figures.coarsen_free_energy(np.array([0.0, 1.0, np.nan, np.nan]), 2)[1])


def test_profiles_and_structure_are_unclipped():
    x = np.linspace(-4, 4, 80)
    pmf = x**4 / 4 - 3 * x**2 + x
    models = runs(lambda m: {"centres": x, "pmf_model_kT": pmf + 0.1,
                             "pmf_quadrature_kT": pmf - 0.1})  # fmt: skip
    fig = figures.profile_figure("profile_1d", {"centres": x, "pmf_reference_kT": pmf},
                                 models, "double_well / x1 / T = 3")  # fmt: skip
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 2  # a panel per dt
    assert not clipped(fig)
    plt.close(fig)
    r, theta = np.linspace(0.2, 0.8, 50), np.linspace(0, np.pi, 45)
    ref = {
        "r": r,
        "rdf_reference": 1 + np.sin(10 * r),
        "rdf_model": 1 + np.sin(10 * r),
        "theta": theta,
        "adf_reference": np.sin(theta),
        "adf_model": np.sin(theta),
    }
    models = runs(lambda m: {"r": r, "rdf_model": 1 + np.cos(10 * r), "theta": theta,
                             "adf_model": np.cos(theta) ** 2})  # fmt: skip
    fig = figures.profile_figure("structure", ref, models, "water / com / T = 300")
    assert [ax.get_xlabel() for ax in fig.axes] == ["r / nm", "angle / rad"]
    assert not clipped(fig)
    plt.close(fig)


def test_the_claims_figure_keeps_long_names_and_its_label_inside():
    long = "RE tolerates larger CG time steps than FM (double well, BAOAB Langevin, d = 25)"
    verdicts = pd.DataFrame([
        dict(claim=long, kind="degrades_less", effect=-0.2, ci_low=-0.4, ci_high=0.1, line=0.0,
             verdict="undecided"),
        dict(claim="a latent variable tracks phi", kind="at_least", effect=0.9, ci_low=0.85,
             ci_high=0.95, line=0.8, verdict="holds"),
        dict(claim="one seed", kind="better", effect=-0.3, ci_low=np.nan, ci_high=np.nan,
             line=0.0, verdict="undecided (1 seed)"),
    ])  # fmt: skip
    fig = figures.claims_figure(verdicts)
    assert not clipped(fig)
    assert len(fig.axes[0].get_yticklabels()) == 3
    plt.close(fig)


def test_a_study_without_claims_draws_an_empty_claims_figure():
    import warnings

    columns = ["claim", "kind", "effect", "ci_low", "ci_high", "line", "verdict"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no singular axis limits
        fig = figures.claims_figure(pd.DataFrame(columns=columns))
    assert fig.axes[0].texts[0].get_text() == "no claims in the config"
    assert not clipped(fig)
    plt.close(fig)


def test_data_free_generators_get_a_colour_each():
    rows = table()
    rows = pd.concat([rows, rows.iloc[[-2]].assign(method="rkl_flow", mean=0.1)])
    fig = figures.error_vs_figure(rows, "dt", UNITS)
    lines = [ln for ln in fig.axes[0].get_lines() if "no data" in str(ln.get_label())]
    assert len(lines) == 2 and lines[0].get_color() != lines[1].get_color()
    plt.close(fig)
