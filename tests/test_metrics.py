import numpy as np
import pytest

from cgflow.analysis.fes import bin_probabilities, free_energy, js_divergence, shifted_rmse
from cgflow.systems import get_map, get_system
from cgflow.systems.double_well import ExactSettings


def test_js_divergence_bounds():
    p = np.array([0.2, 0.3, 0.5])
    assert js_divergence(p, p) == pytest.approx(0.0, abs=1e-15)
    assert js_divergence([1, 0], [0, 1]) == pytest.approx(np.log(2))
    assert js_divergence(p, p[::-1]) == pytest.approx(js_divergence(p[::-1], p))


def test_shifted_rmse_ignores_constant():
    f = np.linspace(0, 5, 20)
    mask = np.ones(20, bool)
    assert shifted_rmse(f + 3.0, f, mask) == pytest.approx(0.0, abs=1e-12)
    noise = np.tile([0.1, -0.1], 10)
    assert shifted_rmse(f + noise, f, mask) == pytest.approx(0.1)


def test_free_energy_of_empty_bins():
    p, out = bin_probabilities(np.array([[0.1], [0.2], [5.0]]), [np.array([0.0, 0.5, 1.0])])
    assert p.tolist() == [2 / 3, 0.0] and out == pytest.approx(1 / 3)
    f = free_energy(p, n_samples=3)
    assert f[1] == pytest.approx(-np.log(0.5 / 3))
    assert np.isinf(free_energy(p)[1])


def test_pmf_metric_separates_right_from_wrong_samples():
    """Exact samples score near the histogram noise floor; 5 % stretched ones do not."""
    system = get_system("double_well", {})
    from cgflow.steps.evaluate import score

    x = system.sample_exact(3.0, ExactSettings(n_samples=100_000, seed=2))["positions"][:, :1]
    cg_map, settings = get_map(system, "x1"), system.evaluation_settings()
    good, _ = score(system, cg_map, settings, x, 3.0)
    bad, _ = score(system, cg_map, settings, 1.05 * x, 3.0)
    assert good["pmf_rmse_kT"] < 0.1 and good["js_divergence"] < 5e-4
    assert bad["pmf_rmse_kT"] > 0.3 and bad["js_divergence"] > 3e-3


def test_benchmark_table_averages_seeds_and_counts_unstable_runs():
    import pandas as pd

    from cgflow.analysis.aggregate import benchmark_markdown, benchmark_table

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
    rows.append({**ref, "metric": "pmf_rmse_kT", "value": 0.1})
    table = benchmark_table(pd.DataFrame(rows), {"dw": "pmf_rmse_kT"}).set_index("method")
    assert table.loc["fm", "mean"] == 1.5 and table.loc["fm", "sd"] == pytest.approx(0.7071, 1e-3)
    assert table.loc["re", "mean"] == 0.5 and table.loc["re", "n_unstable"] == 1
    assert (table.n_seeds == 2).all() and "reference" not in table.index
    text = benchmark_markdown(table.reset_index())
    assert "| fm | 100 | 1.50 +- 0.71 (n=2) |" in text
    assert "| re | 100 | 0.50 (n=2), 1 unstable |" in text
