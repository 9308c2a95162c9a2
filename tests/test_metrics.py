import numpy as np
import pytest

from cgflow.analysis.fes import (
    bin_probabilities,
    free_energy,
    js_divergence,
    weighted_shifted_rms,
)
from cgflow.systems import get_system
from cgflow.systems.double_well import ExactSettings


def test_js_divergence_bounds():
    p = np.array([0.2, 0.3, 0.5])
    assert js_divergence(p, p) == pytest.approx(0.0, abs=1e-15)
    assert js_divergence([1, 0], [0, 1]) == pytest.approx(np.log(2))
    assert js_divergence(p, p[::-1]) == pytest.approx(js_divergence(p[::-1], p))


def test_js_divergence_is_scipys_squared_jensen_shannon_distance():
    """Unnormalised counts with empty bins, one pair and a batch of rows against one."""
    from scipy.spatial.distance import jensenshannon

    rng = np.random.default_rng(3)
    p = rng.poisson(2.0, (50, 40)).astype(float)
    q = rng.poisson(3.0, 40).astype(float)
    assert (p == 0).any() and (q == 0).any()
    np.testing.assert_allclose(js_divergence(p, q), jensenshannon(p, q[None], axis=-1) ** 2,
                               rtol=1e-12, atol=1e-15)  # fmt: skip
    assert js_divergence(p[0], q) == pytest.approx(jensenshannon(p[0], q) ** 2, rel=1e-12)
    assert isinstance(js_divergence(p[0], q), float)
    assert np.isnan(js_divergence(np.zeros(40), q))  # nothing sampled: no divergence


def test_shifted_rmse_ignores_constant():
    f = np.linspace(0, 5, 20)
    mask = np.ones(20)
    assert weighted_shifted_rms(f + 3.0 - f, mask) == pytest.approx(0.0, abs=1e-12)
    noise = np.tile([0.1, -0.1], 10)
    assert weighted_shifted_rms(f + noise - f, mask) == pytest.approx(0.1)


def test_free_energy_of_empty_bins():
    p, out = bin_probabilities(np.array([[0.1], [0.2], [5.0]]), [np.array([0.0, 0.5, 1.0])])
    assert p.tolist() == [2 / 3, 0.0] and out == pytest.approx(1 / 3)
    f = free_energy(p, n_samples=3)
    assert f[1] == pytest.approx(-np.log(0.5 / 3))
    assert np.isinf(free_energy(p)[1])


def score_x1(x, groups, kT=3.0):
    from cgflow.analysis.fes import score_profile
    from cgflow.steps.evaluate import exact_target

    system = get_system("double_well", {})
    target = exact_target(system, system.evaluation_settings(), kT)
    return score_profile(x, groups, target, np.random.default_rng(0), n_boot=300)[:4]


def test_pmf_metric_separates_right_from_wrong_samples():
    """Exact samples score at the histogram noise floor (the weighted RMSE of n
    exact samples in B bins is about sqrt(B / n) = 0.028 kT); 5 % stretched ones
    score far above it, with CIs that do not overlap."""
    system = get_system("double_well", {})
    x = system.sample_exact(3.0, ExactSettings(n_samples=100_000, seed=2))["positions"][:, 0, 0]
    groups = np.arange(x.size) // 500  # 200 groups of independent samples
    good, good_ci, draws, _ = score_x1(x, groups)
    bad, bad_ci, _, _ = score_x1(1.05 * x, groups)
    assert good["pmf_rmse_kT"] < 0.1 and good["js_divergence"] < 5e-4
    assert good["pmf_wrmse_kT"] < 0.035 and good_ci["pmf_wrmse_kT"][1] < 0.06
    assert good_ci["dF_right_err_kT"][0] < 0 < good_ci["dF_right_err_kT"][1]
    assert bad["pmf_rmse_kT"] > 0.3 and bad["js_divergence"] > 3e-3
    assert bad["pmf_wrmse_kT"] > 0.1 and bad_ci["pmf_wrmse_kT"][0] > good_ci["pmf_wrmse_kT"][1]
    assert draws["pmf_wrmse_kT"].shape == (300,)


def test_well_free_energy_error_sees_a_shifted_population():
    """Moving 5 % of the samples from the left well to the right changes dF_right
    by ln((p_r + 0.05) / p_r) - ln((p_l - 0.05) / p_l) = the measured error, with
    the CI around it."""
    from cgflow.systems.double_well import BARRIER_X1

    system = get_system("double_well", {})
    x = system.sample_exact(3.0, ExactSettings(n_samples=100_000, seed=3))["positions"][:, 0, 0]
    left = np.flatnonzero(x < BARRIER_X1)
    x[left[:5000]] = 2.3  # the right well's bottom
    p_left = left.size / x.size
    p_right = 1 - p_left
    expect = -np.log((p_right + 0.05) / p_right) + np.log((p_left - 0.05) / p_left)
    m, ci, _, _ = score_x1(x, np.arange(x.size) // 500)
    assert m["dF_right_err_kT"] == pytest.approx(expect, abs=0.03)
    assert ci["dF_right_err_kT"][1] < -0.05


def test_surface_metrics_of_a_sample_against_itself_and_a_shifted_one():
    """Two independent samples of one 2-D distribution score near zero on the
    weighted coarse metric and their CI touches zero; shifting the model's psi by
    30 degrees gives a clear error; basin errors follow the moved population."""
    from cgflow.analysis.fes import SurfaceGrid, score_surface
    from cgflow.systems.alanine_dipeptide import AlanineDipeptide

    rng = np.random.default_rng(0)

    def draw(n):  # 70 % beta (psi near 150 deg), 30 % alpha_R (psi near -40 deg)
        psi_centre = np.where(rng.uniform(size=n) < 0.7, 2.6, -0.7)
        phi = rng.normal(-1.4, 0.3, n)
        psi = np.angle(np.exp(1j * rng.normal(psi_centre, 0.3)))  # wrapped to (-pi, pi]
        return np.stack([phi, psi], axis=1)

    grid = SurfaceGrid(60, 24, 5.0, AlanineDipeptide.basins, AlanineDipeptide.basin_names)
    a, b = draw(40_000), draw(40_000)
    groups = np.arange(40_000) // 400
    same, same_ci, *_ = score_surface(a, groups, b, groups, grid, rng, n_boot=200)
    shifted = a.copy()
    shifted[:, 1] = np.angle(np.exp(1j * (a[:, 1] + np.radians(30))))
    off, off_ci, *_ = score_surface(shifted, groups, b, groups, grid, rng, n_boot=200)
    assert same["fes_wrmse_kT"] < 0.1 and same_ci["fes_wrmse_kT"][0] < 0.1
    assert abs(same["dF_alpha_R_err_kT"]) < 0.05
    assert np.isnan(same["dF_alpha_L_err_kT"])  # never visited: no free energy to compare
    assert off["fes_wrmse_kT"] > 0.5 and off_ci["fes_wrmse_kT"][0] > same_ci["fes_wrmse_kT"][1]
    # 40 % of the model's samples moved to alpha_L, where the reference never goes:
    # the shift-invariant FES error barely moves, mass_outside sees it
    assert same["mass_outside"] < 0.01
    moved = a.copy()
    moved[:16_000] = np.stack([rng.normal(1.0, 0.2, 16_000), rng.normal(0.5, 0.3, 16_000)], 1)
    away, away_ci, *_ = score_surface(moved, groups, b, groups, grid, rng, n_boot=200)
    assert away["mass_outside"] == pytest.approx(0.4, abs=0.02)
    assert away_ci["mass_outside"][0] > 0.25  # whole groups moved: the CI is wide
    assert away["fes_wrmse_kT"] < 0.2


def test_the_ci_of_each_side_shows_which_side_limits_it():
    """A model whose groups each sit in one basin (few independent basin samples)
    against a reference of many short blocks: resampling the model's groups alone
    gives nearly the whole CI of fes_wrmse_kT, the reference's alone a narrow one;
    with the roles swapped, so are the widths."""
    from cgflow.analysis.fes import SurfaceGrid, score_surface
    from cgflow.systems.alanine_dipeptide import AlanineDipeptide

    rng = np.random.default_rng(1)
    grid = SurfaceGrid(60, 24, 5.0, AlanineDipeptide.basins, AlanineDipeptide.basin_names)

    def draw(n, n_groups, mixed):  # beta or alpha_R; mixed: within each group
        per = n // n_groups
        in_beta = (
            rng.uniform(size=n) < 0.7 if mixed else np.repeat(rng.uniform(size=n_groups) < 0.7, per)
        )
        psi = np.angle(np.exp(1j * rng.normal(np.where(in_beta, 2.6, -0.7), 0.3)))
        return np.stack([rng.normal(-1.4, 0.3, n), psi], axis=1), np.arange(n) // per

    clumped, clumped_groups = draw(20_000, 20, mixed=False)
    spread, spread_groups = draw(20_000, 200, mixed=True)
    half = {}
    for name, (x, g, y, h) in {
        "model clumped": (clumped, clumped_groups, spread, spread_groups),
        "reference clumped": (spread, spread_groups, clumped, clumped_groups),
    }.items():
        _, ci, _, _, _, sides = score_surface(x, g, y, h, grid, rng, n_boot=300)
        half[name] = {side: np.diff(sides[side]["fes_wrmse_kT"])[0] / 2 for side in sides}
        half[name]["both"] = np.diff(ci["fes_wrmse_kT"])[0] / 2
        assert max(half[name]["samples"], half[name]["reference"]) <= 1.2 * half[name]["both"]
    assert half["model clumped"]["samples"] > 3 * half["model clumped"]["reference"]
    assert half["reference clumped"]["reference"] > 3 * half["reference clumped"]["samples"]


def test_benchmark_table_averages_seeds_and_counts_unstable_runs():
    import pandas as pd

    from cgflow.analysis.markdown import benchmark_markdown
    from cgflow.analysis.tables import benchmark_table, noise_floors

    run = {"system": "dw", "mapping": "x1", "temperature": 3.0, "run_dir": "r"}
    rows = []
    for method, n, dt, seed, err in [
        ("fm", 100, 0.1, 0, 1.0),
        ("fm", 100, 0.1, 1, 2.0),
        ("re", 100, 0.1, 0, 0.5),
        ("re", 100, 0.1, 1, None),  # unstable
    ]:
        key = {**run, "method": method, "n_train": n, "dt": dt, "seed": seed}
        rows.append({**key, "metric": "stable", "value": float(err is not None)})
        rows.append({**key, "metric": "pmf_rmse_kT", "value": np.nan if err is None else err})
    ref = {**run, "method": "reference", "n_train": 500, "dt": np.nan, "seed": 0}
    rows.append({**ref, "metric": "pmf_rmse_kT", "value": 0.1, "ci_low": 0.05, "ci_high": 0.2})
    table = benchmark_table(pd.DataFrame(rows), {"dw": "pmf_rmse_kT"}, {}).set_index("method")
    assert table.loc["fm", "mean"] == 1.5 and table.loc["fm", "sd"] == pytest.approx(0.7071, 1e-3)
    assert table.loc["re", "mean"] == 0.5 and table.loc["re", "n_unstable"] == 1
    assert (table.n_seeds == 2).all() and "reference" not in table.index
    relaxation = {"tau": 52.0, "slowest_basin": "alpha_R", "independent_samples": 24.0}
    record = {"run": ref, "bootstrap": {"samples": {"basin_relaxation": relaxation}}}
    floors = noise_floors(pd.DataFrame(rows), {"dw": "pmf_rmse_kT"}, [as_record(record)])
    text = benchmark_markdown(table.reset_index(), floors)
    assert "Noise floor: 0.10 [0.05, 0.20] (the training reference, 500 frames" in text
    assert "training run: tau = 52 ps (alpha_R), 24 independent basin samples" in text
    assert "| fm | 100 | 1.50 (n=2) |" in text  # no bootstrap draws: no CI
    assert "| re | 100 | 0.50 (n=2), 1 unstable |" in text


def test_the_crossing_table_averages_the_stable_seeds():
    import pandas as pd

    from cgflow.analysis.markdown import crossing_markdown

    run = {"system": "dw", "mapping": "x1", "temperature": 3.0, "run_dir": "r"}
    rows = [{**run, "method": m, "n_train": 100, "dt": dt, "seed": seed,
             "metric": "replicas_crossing", "value": v}
            for m, dt, seed, v in [("fm", 0.1, 0, 0.1), ("fm", 0.1, 1, 0.3),
                                   ("re", 0.1, 0, 0.9), ("re", 0.1, 1, np.nan),
                                   ("re", 0.2, 0, 0.7)]]  # fmt: skip
    text = crossing_markdown(pd.DataFrame(rows))
    assert "## dw / x1 / T = 3: share of CG replicas" in text
    assert "| fm | 100 | 0.20 (n=2) |  |" in text
    assert "| re | 100 | 0.90 (n=1) | 0.70 (n=1) |" in text
    assert crossing_markdown(pd.DataFrame(rows[:0], columns=list(rows[0]))) == ""


def test_the_ci_sides_table_names_the_wider_side_of_each_run():
    from cgflow.analysis.markdown import ci_sides_markdown

    def record(method, seed, ci, cg, ref):
        run = {"system": "ala", "mapping": "heavy", "temperature": 300.0, "method": method,
               "n_train": 400, "dt": 0.002, "seed": seed}  # fmt: skip
        sides = {"samples": {"fes_wrmse_kT": cg}, "reference": {"fes_wrmse_kT": ref}}
        return {"run": run, "primary_metric": "fes_wrmse_kT", "metrics": {"fes_wrmse_kT": 0.5},
                "ci95": {"fes_wrmse_kT": ci}, "bootstrap": {"ci95_by_side": sides}}  # fmt: skip

    records = [
        record("re", 1, [0.2, 0.8], [0.25, 0.75], [0.4, 0.6]),
        record("fm", 0, [0.4, 0.6], [0.45, 0.55], [0.42, 0.58]),
        {**record("reference", 0, [0.0, 0.1], [0.0, 0.1], [0.0, 0.1])},
        {**record("re", 2, [0.3, 0.7], [0.3, 0.7], [0.4, 0.6]), "bootstrap": {}},  # 1-D
    ]
    records = [as_record(r) for r in records]
    text = ci_sides_markdown(records)
    assert "## ala / heavy / T = 300: fes_wrmse_kT, each run's 95 % CI" in text
    assert "Widest half-width 0.30, median 0.20; the CG side is the wider in 1 of 2 runs" in text
    assert "| fm | 400 | 0.002 | 0 | 0.50 [0.40, 0.60] | 0.10 | 0.05 | 0.08 |" in text
    assert "| re | 400 | 0.002 | 1 | 0.50 [0.20, 0.80] | 0.30 | 0.25 | 0.10 |" in text
    assert text.index("| fm |") < text.index("| re |")
    assert ci_sides_markdown(records[3:]) == ""


def test_the_thermodynamics_table_averages_seeds_with_their_draws():
    import pandas as pd

    from cgflow.analysis.markdown import thermodynamics_markdown

    run = {"system": "ala", "mapping": "heavy", "method": "em", "n_train": 300, "dt": 0.002}
    rows, draws = [], {}
    for t, seed, err in [(300.0, 0, 0.1), (300.0, 1, 0.3), (330.0, 0, -0.2)]:
        key = {**run, "temperature": t, "seed": seed, "run_dir": f"r{seed}"}
        rows.append({**key, "metric": "stable", "value": 1.0})
        rows.append({**key, "metric": "mean_energy_err_kT", "value": err})
        rows.append({**key, "metric": "heat_capacity_err", "value": 2 * err})
        k = tuple(str(key[c]) for c in ("system", "mapping", "temperature", "method",
                                         "n_train", "dt", "seed"))  # fmt: skip
        draws[k] = {
            "mean_energy_err_kT": np.full(100, err),
            "heat_capacity_err": np.full(100, 2 * err),
        }
    text = thermodynamics_markdown(pd.DataFrame(rows), draws)
    # two seeds, 0.1 and 0.3: mean 0.2 +- t(0.975, 1 dof) x sd / sqrt(2) = 0.2 +- 1.27
    assert "| 300 | em | 300 | dt = 0.002 | 0.20 [-1.07, 1.47] | 0.40 [-2.14, 2.94] |" in text, text
    assert "| 330 | em | 300 | dt = 0.002 | -0.20 [-0.20, -0.20] | -0.40 [-0.40, -0.40] |" in text
    assert "<U> error (kT) | C error (k_B) |" in text
    assert thermodynamics_markdown(pd.DataFrame(rows[:1]), {}) == ""


@pytest.mark.slow
def test_quadrature_pmf_of_a_model_matches_its_simulated_pmf(tmp_path):
    """A double-well model (harmonic prior plus a random MLP) scored two ways: by
    quadrature of its energy, and by histograms of its Langevin simulation at a
    small time step. Both are scored against the exact double well, so they must
    agree on every metric: the weighted PMF error within 0.03 kT, and the
    quadrature's well free-energy error inside the simulation's CI."""
    import io

    import jax

    from cgflow.io import save_dataset
    from cgflow.models import load_model
    from cgflow.models.energy import init_params, save_model
    from cgflow.simulate.langevin import CGSystem, simulate_langevin
    from cgflow.simulate.settings import IntegratorSettings, RunSettings
    from cgflow.steps.evaluate import evaluate_step
    from cgflow.study import StudySettings

    desc = {
        "n_beads": 1, "dim": 1, "kT": 3.0, "mapping": "x1", "method": "fm", "seed": 0,
        "n_train": 100, "bead_masses": [1.0], "species_index": [0], "species_names": ["X1"],
        "system": "double_well", "units": {"time": "reduced"},
        "prior": {"type": "harmonic_position", "k": [[0.6]], "x0": [[-0.5]], "kT": 3.0},
        "network": {"type": "mlp", "hidden": [32, 32], "activation": "softplus",
                    "input_scale": [[2.0]], "input_shift": [[0.0]]},
    }  # fmt: skip
    params = init_params(desc, jax.random.PRNGKey(3))
    save_model(tmp_path / "model", desc, params)
    energy_fn, params, _ = load_model(tmp_path / "model")
    run = RunSettings(n_steps=20_000, equilibration_steps=2_000, save_every=20, n_replicas=128)
    frames, _ = simulate_langevin(
        CGSystem(energy_fn, params, [1.0], 3.0), np.full((128, 1, 1), -0.5),
        IntegratorSettings(dt=0.005, thermostat="langevin", friction=1.0), run,
        jax.random.PRNGKey(0), log=io.StringIO(),
    )  # fmt: skip
    n_t = frames.shape[0]
    samples = frames.transpose(1, 0, 2, 3).reshape(-1, 1, 1)
    replica = np.repeat(np.arange(128), n_t)
    save_dataset(tmp_path / "samples.npz", {"positions": samples, "replica": replica}, {"kT": 3.0})
    config = {"systems": {"double_well": {}}, "methods": {}, "seeds": [0], "val_fraction": 0.1}
    study = StudySettings.from_config(config, "double_well")
    ident = {"system": "double_well", "mapping": "x1", "method": "fm", "n_train": 100, "seed": 0,
             "dt": 0.005, "temperature": 3.0, "run_dir": str(tmp_path)}  # fmt: skip
    evaluate_step(study, str(tmp_path / "samples.npz"), ident, str(tmp_path / "metrics.json"),
                  model_dir=str(tmp_path / "model"))  # fmt: skip
    rec = __import__("json").loads((tmp_path / "metrics.json").read_text())
    m, ci = rec["metrics"], rec["ci95"]
    assert m["pmf_wrmse_kT"] > 0.3  # the model is not the double well: a real error to match
    assert abs(m["quad_pmf_wrmse_kT"] - m["pmf_wrmse_kT"]) < 0.03
    lo, hi = ci["dF_right_err_kT"]
    assert lo - 0.01 < m["quad_dF_right_err_kT"] < hi + 0.01


def test_rmse_is_corrected_for_histogram_noise():
    """Samples of a 5 % stretched double well, 2,000 at a time: the raw weighted
    RMSE carries the histogram noise (about sqrt(80 bins / 2,000) = 0.2 kT) on top
    of the true error, which quadrature of the stretched density gives exactly
    (0.225 kT). The corrected RMSE is unbiased to within 0.03 kT (measured: 0.212)
    where the raw one is not (0.304), and its CI holds the true error in at least 17
    of 20 repeats (measured: 20). The same for the JS divergence, on its own scale:
    true 0.00815, corrected 0.00808, raw 0.0129, CI coverage 19 of 20."""
    from cgflow.analysis.fes import score_profile
    from cgflow.steps.evaluate import exact_target

    system = get_system("double_well", {})
    kT, stretch = 3.0, 1.05
    target = exact_target(system, system.evaluation_settings(), kT)
    grid, _, cdf = system.exact_profile(kT)
    stretched = np.diff(np.interp(target.edges / stretch, grid, cdf, left=0.0, right=1.0))
    p_true = {
        "bins": np.append(stretched, 1 - stretched.sum())[None],
        "basins": target.p_basins[None],
    }
    truth = float(target.metrics(p_true)["pmf_wrmse_kT"][0])
    x_all = (
        stretch
        * system.sample_exact(kT, ExactSettings(n_samples=100_000, seed=4))["positions"][:, 0, 0]
    )
    js_truth = float(target.metrics(p_true)["js_divergence"][0])
    rng = np.random.default_rng(0)
    corrected, raw, covered = [], [], 0
    js, js_raw, js_covered = [], [], 0
    for x in x_all.reshape(50, 2000)[:20]:
        m, ci, _, _, r = score_profile(x, np.arange(2000) // 20, target, rng, n_boot=300)
        corrected.append(m["pmf_wrmse_kT"])
        raw.append(r["pmf_wrmse_kT"])
        covered += ci["pmf_wrmse_kT"][0] <= truth <= ci["pmf_wrmse_kT"][1]
        js.append(m["js_divergence"])
        js_raw.append(r["js_divergence"])
        js_covered += ci["js_divergence"][0] <= js_truth <= ci["js_divergence"][1]
    assert 0.1 < truth < 0.3
    assert abs(np.mean(corrected) - truth) < 0.03 and np.mean(raw) > truth + 0.05
    assert covered >= 17
    assert abs(np.mean(js) - js_truth) < 0.15 * js_truth and np.mean(js_raw) > 1.3 * js_truth
    assert js_covered >= 17


def test_replicas_crossing_counts_the_replicas_that_visit_two_basins():
    """Of four double-well replicas, two stay in their start well (one left, one
    right) and two cross the barrier: 0.5. An alanine replica that visits beta and
    alpha_R crosses; one that stays in alpha_L does not."""
    from cgflow.steps.evaluate import replicas_crossing

    dw = get_system("double_well", {})
    x = np.array([-2.0, -2.1, -1.9, 2.0, 2.1, 1.9, -2.0, 0.5, 2.0, 2.0, 2.2, -2.3])
    replica = np.repeat(np.arange(4), 3)
    assert replicas_crossing(dw, x[:, None], replica) == 0.5
    assert replicas_crossing(dw, x[:6, None], replica[:6]) == 0.0
    ala = get_system("alanine_dipeptide", {})
    angles = np.radians([[-70, 140], [-70, -40], [60, 40], [70, 30]])
    assert replicas_crossing(ala, angles, np.array([0, 0, 1, 1])) == 0.5


def test_a_liquid_has_no_replicas_crossing():
    """Water has no basins: its CG replicas are grouped without a crossing share."""
    from cgflow.steps.evaluate import groups_of

    water = get_system("water", {})
    replica = np.repeat(np.arange(3), 4)
    groups, info = groups_of(water, {"replica": replica}, np.zeros((12, 1)))
    assert info == {"groups": "replicas", "n_groups": 3} and (groups == replica).all()


def as_record(d: dict):
    """A MetricsRecord of a test's partial metrics.json dict (the rest filled in)."""
    from cgflow.analysis.records import MetricsRecord

    run = {"mapping": "m", "n_train": 0, "seed": 0, "dt": float("nan"), "run_dir": "r",
           **d["run"]}  # fmt: skip
    return MetricsRecord.from_json({"metrics": {}, "primary_metric": "x",
                                    "figure_kind": "surface_2d", **d, "run": run})  # fmt: skip


def test_a_metrics_json_of_before_the_records_reads_and_writes_back_unchanged():
    """A metrics.json as cgflow wrote it before MetricsRecord (the reference's dt
    NaN, no speed) with a key this version does not know: it loads, keeps every key
    and writes back the same dict; one that lacks a key is refused naming it."""
    from cgflow.analysis.records import MetricsRecord

    old = {"run": {"system": "dw", "mapping": "x1", "method": "reference", "n_train": 500,
                   "seed": 0, "dt": None, "temperature": 3.0, "run_dir": "r"},
           "metrics": {"stable": 1.0, "pmf_rmse_kT": 0.1}, "ci95": {"pmf_rmse_kT": [0.05, 0.2]},
           "bootstrap": {"n_boot": 1000}, "unstable_reason": None,
           "primary_metric": "pmf_rmse_kT", "figure_kind": "profile_1d", "units": None,
           "scored_by": "a later cgflow"}  # fmt: skip
    record = MetricsRecord.from_json(old, "old/metrics.json")
    assert np.isnan(record.run.dt) and record.extra == {"scored_by": "a later cgflow"}
    back = record.to_json()
    assert {k: v for k, v in back.items() if k not in ("run", "speed")} == {
        k: v for k, v in old.items() if k != "run"}  # fmt: skip
    assert np.isnan(back["run"]["dt"]) and back["speed"] == {}
    with pytest.raises(ValueError, match=r"old/metrics.json: not a metrics.json .*\['metrics'\]"):
        MetricsRecord.from_json(
            {k: v for k, v in old.items() if k != "metrics"}, "old/metrics.json"
        )
