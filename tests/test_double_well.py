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
    assert stats.kstest(resid, stats.norm(0.0, np.sqrt(kT / 1.5)).cdf).pvalue > 1e-3


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


@pytest.mark.parametrize("coupling,a", [("sin", 0.0), ("tanh", 0.0), ("sin", 0.4)])
def test_forces_are_minus_gradient(coupling, a):
    potential = {"c": 1.7, "d": 2.0, "coupling": coupling, "a": a}
    system = get_system("double_well", {"potential": potential})
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


VARIABLE = {"potential": {"c": 2.0, "d": 1.5, "a": 0.5}}


@pytest.mark.parametrize("kT", [1.5, 3.0])
def test_variable_stiffness_sampler_follows_its_temperature_dependent_pmf(kT):
    """With d(x1) = d (1 + a x1^2) the x1 marginal is exp(-A(x1, beta)/kT) with
    A = V + (kT/2) ln(1 + a x1^2): the KS test accepts it and rejects V alone."""
    system = get_system("double_well", VARIABLE)
    data = system.sample_exact(kT, ExactSettings(n_samples=20_000, seed=5))
    x1, x2 = data["positions"][:, 0, 0], data["positions"][:, 1, 0]
    assert stats.kstest(x1, system.exact_cdf_x1(kT)).pvalue > 1e-3
    plain = get_system("double_well", {"potential": {"c": 2.0, "d": 1.5}})
    assert stats.kstest(x1, plain.exact_cdf_x1(kT)).pvalue < 1e-6
    # x2 | x1 has variance kT / d(x1)
    z = (x2 - 2.0 * np.sin(x1)) / np.sqrt(kT / system.stiffness(x1)[0])
    assert stats.kstest(z, "norm").pvalue > 1e-3
    # the sampler's energies are the force field's
    np.testing.assert_allclose(data["energies"], system.energy(data["positions"]))


def test_conditional_energy_is_the_beta_derivative_of_beta_a():
    """<U | x1> = d(beta A)/d beta = V + kT/2 and Var(U | x1) = (kT)^2 / 2, measured
    in bins of exact samples; and d(beta A)/d beta by finite differences in beta."""
    kT = 2.0
    system = get_system("double_well", VARIABLE)
    data = system.sample_exact(kT, ExactSettings(n_samples=200_000, seed=2))
    x1, u = data["positions"][:, 0, 0], data["energies"]
    edges = np.linspace(-3.5, 3.0, 14)
    idx = np.digitize(x1, edges)
    checked = 0
    for b in range(1, len(edges)):
        sel = idx == b
        if sel.sum() < 500:
            continue
        # within a bin V varies; compare U - V(x1) with kT / 2
        resid = u[sel] - system.mean_energy_x1(x1[sel], kT)
        assert abs(resid.mean()) < 4.5 * resid.std() / np.sqrt(sel.sum())
        # U - V = (kT/2) chi^2_1: variance (kT)^2/2, the estimate's SE from its 4th moment
        centred = resid - resid.mean()
        se = np.sqrt((np.mean(centred**4) - resid.var() ** 2) / sel.sum())
        assert abs(resid.var() - 0.5 * kT**2) < 4.5 * se
        checked += 1
    assert checked >= 6
    # beta A(x1, beta) (up to an x1-independent term) differentiated in beta
    x = np.linspace(-3.0, 3.0, 7)
    beta, h = 1 / kT, 1e-5

    def beta_a(b):
        return b * system.free_energy_x1(x, 1 / b)

    fd = (beta_a(beta + h) - beta_a(beta - h)) / (2 * h)
    # d(beta A)/d beta = V + (kT/2) ln(...) - (kT/2) ln(...) = V: the kT/2 of <U|x1> is
    # the x1-independent part A leaves out (the Gaussian normaliser of x2 at d)
    np.testing.assert_allclose(fd, system.mean_energy_x1(x, kT) - 0.5 * kT, atol=1e-6)


def test_the_test_reference_has_its_own_length_and_stream(default_config, tmp_path):
    """``test_reference: {n_samples: ...}`` sets the held-out reference's size only:
    the training reference keeps its own, and the two are independent draws."""
    import copy

    from cgflow.config import validate_config
    from cgflow.io import load_dataset
    from cgflow.steps.sample import sample_step
    from cgflow.study import StudySettings

    cfg = copy.deepcopy(default_config)
    cfg["systems"]["double_well"]["reference"]["n_samples"] = 300
    cfg["systems"]["double_well"]["n_train"] = [100]
    cfg["systems"]["double_well"]["test_reference"] = {"n_samples": 1200}
    cfg = validate_config(cfg)
    train_study = StudySettings.from_config(cfg, "double_well").scoped()
    test_study = StudySettings.from_config(cfg, "double_well").scoped(["test_reference"])
    assert "test_reference" not in train_study.entry  # the training steps never see it
    sample_step(train_study, 3.0, str(tmp_path / "train.npz"))
    sample_step(test_study, 3.0, str(tmp_path / "test.npz"), part="test")
    train = load_dataset(tmp_path / "train.npz")[0]["positions"]
    test = load_dataset(tmp_path / "test.npz")[0]["positions"]
    assert train.shape[0] == 300 and test.shape[0] == 1200
    # one distribution, independent draws: no shared frames, same x1 law
    assert not np.isin(train[:, 0, 0], test[:, 0, 0]).any()
    assert stats.ks_2samp(train[:, 0, 0], test[:, 0, 0]).pvalue > 1e-3
