import numpy as np
import pytest

from cgflow.analysis.fes import bin_probabilities, free_energy, js_divergence, shifted_rmse
from cgflow.systems import get_system


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
    x = system.sample_reference(3.0, 100_000, seed=2)["positions"][:, :1]
    good, _ = system.evaluate(x, 3.0)
    bad, _ = system.evaluate(1.05 * x, 3.0)
    assert good["pmf_rmse_kT"] < 0.1 and good["js_divergence"] < 5e-4
    assert bad["pmf_rmse_kT"] > 0.3 and bad["js_divergence"] > 3e-3
