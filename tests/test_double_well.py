"""The double-well reference: exact sampler, forces, and the mean force along x1."""

import numpy as np
import pytest
from scipy import stats

from cgflow.systems import get_map, get_system
from cgflow.systems.double_well import ExactSettings, dpmf_x1


@pytest.mark.parametrize("c", [0.0, 2.0])
def test_exact_sampler_matches_exact_density(c):
    kT = 3.0
    system = get_system("double_well", {"potential": {"c": c, "d": 1.5}})
    data = system.sample_exact(kT, ExactSettings(n_samples=20_000, seed=7))
    x1, x2 = data["positions"][:, 0, 0], data["positions"][:, 1, 0]
    # x1 follows exp(-A/kT): Kolmogorov-Smirnov against the exact CDF.
    assert stats.kstest(x1, system.exact_cdf_x1(kT)).pvalue > 1e-3
    # x2 - c g(x1) is Gaussian with variance kT/d.
    resid = x2 - c * np.sin(x1)
    assert stats.kstest(resid, "norm", args=(0.0, np.sqrt(kT / 1.5))).pvalue > 1e-3


def test_ks_test_rejects_wrong_temperature():
    """The statistical test above has power: samples at 0.9 kT are rejected."""
    system = get_system("double_well", {})
    x1 = system.sample_exact(2.7, ExactSettings(n_samples=20_000, seed=7))["positions"][:, 0, 0]
    assert stats.kstest(x1, system.exact_cdf_x1(3.0)).pvalue < 1e-6


def test_same_seed_same_samples():
    system = get_system("double_well", {"potential": {"c": 1.0}})
    a = system.sample_exact(3.0, ExactSettings(n_samples=100, seed=3))["positions"]
    b = system.sample_exact(3.0, ExactSettings(n_samples=100, seed=3))["positions"]
    c = system.sample_exact(3.0, ExactSettings(n_samples=100, seed=4))["positions"]
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


@pytest.mark.parametrize("coupling", ["sin", "tanh"])
def test_forces_are_minus_gradient(coupling):
    system = get_system("double_well", {"potential": {"c": 1.7, "d": 2.0, "coupling": coupling}})
    rng = np.random.default_rng(0)
    x = rng.normal(0, 2, size=(50, 2, 1))
    h = 1e-5
    fd = np.zeros_like(x)
    for a in range(2):
        e = np.zeros_like(x)
        e[:, a, 0] = h
        fd[:, a, 0] = -(system.energy(x + e) - system.energy(x - e)) / (2 * h)
    np.testing.assert_allclose(system.forces(x), fd, rtol=1e-6, atol=1e-6)


def test_mapped_force_mean_is_exact_mean_force():
    """With c > 0 the mapped force is noisy but its mean given x1 is -A'(x1)."""
    kT = 3.0
    system = get_system("double_well", {"potential": {"c": 2.0}})
    data = system.sample_exact(kT, ExactSettings(n_samples=200_000, seed=1))
    cg_map = get_map(system, "x1")
    assert cg_map.force_map == "slice"
    x1 = data["positions"][:, 0, 0]
    f1 = (cg_map.force_matrix @ data["forces"][..., 0].T)[0]
    edges = np.linspace(-3.0, 3.0, 13)
    idx = np.digitize(x1, edges)
    for b in range(1, len(edges)):
        sel = idx == b
        if sel.sum() < 200:
            continue
        resid = f1[sel] + dpmf_x1(x1[sel])  # zero-mean noise if the map is right
        sem = resid.std() / np.sqrt(sel.sum())
        assert abs(resid.mean()) < 4.5 * sem
