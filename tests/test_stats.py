"""Bootstrap confidence intervals and BAR: tests a wrong estimator fails."""

import numpy as np
import pytest
from scipy.signal import lfilter

from cgflow.analysis import stats


def ar1(rng, phi, n):
    """A stationary AR(1) series with zero mean and unit innovations."""
    e = rng.normal(size=n)
    e[0] /= np.sqrt(1 - phi**2)  # start in the stationary distribution
    return lfilter([1.0], [1.0, -phi], e)


def mean_ci(x, rng, length, n_boot):
    labels = stats.block_labels(len(x), length)
    sums, counts = np.bincount(labels, x), np.bincount(labels)
    w = stats.resample_weights(len(counts), n_boot, rng)
    return stats.percentile_ci(w @ sums / (w @ counts))


def test_statistical_inefficiency_of_ar1():
    # g = (1 + phi) / (1 - phi) = 19 for phi = 0.9
    g = stats.statistical_inefficiency(ar1(np.random.default_rng(0), 0.9, 200_000))
    assert 17 < g < 21


@pytest.mark.parametrize("blocked, low, high", [(True, 0.90, 0.99), (False, 0.0, 0.6)])
def test_block_bootstrap_covers_the_mean_of_a_correlated_series(blocked, low, high):
    """200 AR(1) series (phi = 0.9): the 95 % block-bootstrap CI of the mean covers
    the true mean (0) in 90-99 % of them; resampling single frames, as if they were
    independent, covers it far less often (about 35 %), so this test can fail."""
    rng = np.random.default_rng(1)
    covered = 0
    for _ in range(200):
        x = ar1(rng, 0.9, 5000)
        if blocked:
            lo, hi = mean_ci(x, rng, stats.block_length(x), n_boot=1000)
        else:  # 5,000 groups of one: fewer draws keep it quick
            lo, hi = mean_ci(x, rng, 1, n_boot=100)
        covered += lo <= 0.0 <= hi
    assert low <= covered / 200 <= high


def test_group_counts_and_resampling_of_whole_groups():
    bins = np.array([0, 1, 1, -1, 2, 2])
    groups = np.array([0, 0, 0, 1, 1, 1])
    counts = stats.group_counts(bins, groups, 3)
    np.testing.assert_array_equal(counts, [[1, 2, 0, 0], [0, 0, 2, 1]])
    w = stats.resample_weights(2, 500, np.random.default_rng(0))
    assert w.shape == (500, 2) and np.all(w.sum(axis=1) == 2)
    # every draw is a sum of whole groups: 6 frames in total, 1 of them outside
    # per copy of group 1
    draws = w @ counts
    np.testing.assert_array_equal(draws.sum(axis=1), 6)
    np.testing.assert_array_equal(draws[:, 3], w[:, 1])


def test_hierarchical_mean_spreads_with_the_units():
    rng = np.random.default_rng(0)
    tight = [np.full(1000, 1.0), np.full(1000, 3.0)]
    draws = stats.hierarchical_mean(tight, rng)
    # resampling the two units gives means 1, 2 or 3; the CI spans them
    assert set(np.unique(draws)) == {1.0, 2.0, 3.0}
    assert stats.percentile_ci(draws) == (1.0, 3.0)
    one = stats.hierarchical_mean([np.arange(1000.0)], rng)
    assert 400 < one.mean() < 600 and one.std() > 250


def test_hierarchical_ratio_pairs_the_draws():
    """Numerator = 2 x denominator draw by draw (two runs scored on the same reference
    blocks): the paired ratio is exactly 2 in every draw, where resampling the two
    independently would spread it."""
    rng = np.random.default_rng(0)
    den = [1.0 + rng.random(1000), 5.0 + rng.random(1000), 0.2 + rng.random(1000)]
    num = [2.0 * d for d in den]
    ratio = stats.hierarchical_ratio(num, den, rng)
    np.testing.assert_allclose(ratio, 2.0)
    unpaired = stats.hierarchical_mean(num, rng) / stats.hierarchical_mean(den, rng)
    assert unpaired.std() > 0.1
    with np.errstate(divide="ignore"):
        inf = stats.hierarchical_ratio([np.ones(10)], [np.zeros(10)], rng)
    assert np.isinf(inf).all()
    # a tenth of the draws infinite: the upper end is inf, or left out by default
    some = np.r_[np.arange(900.0), np.full(100, np.inf), np.nan]
    assert stats.percentile_ci(some, keep_inf=True) == (
        np.quantile(np.arange(1000.0), 0.025),
        np.inf,
    )
    assert stats.percentile_ci(some)[1] == np.quantile(np.arange(900.0), 0.975)
    with pytest.raises(ValueError, match="differ"):
        stats.hierarchical_ratio(num, den[:2], rng)


def test_bar_matches_two_harmonic_wells():
    """u_i = k_i x^2 / 2 in kT: f1 - f0 = ln(k1 / k0) / 2 exactly."""
    rng = np.random.default_rng(0)
    k0, k1 = 1.0, 4.0
    x0 = rng.normal(0, 1 / np.sqrt(k0), 20_000)
    x1 = rng.normal(0, 1 / np.sqrt(k1), 20_000)
    df, ddf = stats.bar(0.5 * (k1 - k0) * x0**2, 0.5 * (k0 - k1) * x1**2)
    exact = 0.5 * np.log(k1 / k0)
    assert ddf < 0.02
    assert abs(df - exact) < 4 * ddf + 1e-3
    # one-sided exponential averaging from the narrow well is off by more
    fwd_from_1 = -np.log(np.mean(np.exp(-0.5 * (k0 - k1) * x1[:200] ** 2)))
    assert abs(-fwd_from_1 - exact) > abs(df - exact)


def test_percentile_ci_ignores_nan_draws():
    assert np.isnan(stats.percentile_ci(np.array([np.nan, np.nan]))).all()
    lo, hi = stats.percentile_ci(np.r_[np.arange(101.0), np.nan])
    assert (lo, hi) == (2.5, 97.5)


def test_basin_relaxation_time_of_a_two_state_chain():
    """A two-state Markov chain that switches with probability p per frame has
    indicator autocorrelation (1 - 2p)^k, so tau_int = (1 - 2p) / (2p): 49 frames at
    p = 0.01. A wrong estimator (e.g. one reporting g instead of tau, 99 frames, or
    the mean dwell time, 100) fails the bound."""
    from types import SimpleNamespace

    from cgflow.steps.evaluate import basin_relaxation

    rng = np.random.default_rng(3)
    switches = rng.random(200_000) < 0.01
    state = np.cumsum(switches) % 2
    system = SimpleNamespace(basin_names=("a", "b"), basins=lambda cv: cv[:, 0].astype(int))
    out = basin_relaxation(system, state[:, None].astype(float), interval=0.5)
    assert out["tau_frames"] == pytest.approx(49.0, rel=0.2)
    assert out["tau"] == pytest.approx(0.5 * out["tau_frames"])
    assert out["independent_samples"] == pytest.approx(200_000 / (2 * out["tau_frames"] + 1))
    one_basin = basin_relaxation(system, np.zeros((100, 1)), interval=None)
    assert np.isnan(one_basin["tau_frames"]) and one_basin["slowest_basin"] is None


def test_bar_tries_the_other_solvers_before_giving_up(monkeypatch):
    """pymbar's default solver can fail to converge (it did in an RE run at the
    edge of stability): the others are tried, and when all fail the error says so."""
    pymbar = stats._pymbar()
    real = pymbar.other_estimators.bar
    tried = []

    def flaky(w_f, w_r, method="false-position", **kw):
        tried.append(method)
        if method != "bisection":
            raise pymbar.utils.ConvergenceError("no")
        return real(w_f, w_r, method=method, **kw)

    monkeypatch.setattr(pymbar.other_estimators, "bar", flaky)
    rng = np.random.default_rng(0)
    # Gaussian work of variance 1 that obeys Crooks: forward mean dF + 1/2, reverse
    # mean -dF + 1/2, here with dF = 0.5
    df, _ = stats.bar(rng.normal(1.0, 1.0, 4000), rng.normal(0.0, 1.0, 4000))
    assert tried == ["false-position", "self-consistent-iteration", "bisection"]
    assert df == pytest.approx(0.5, abs=0.1)

    def broken(*args, **kw):
        raise pymbar.utils.BoundsError("no")

    monkeypatch.setattr(pymbar.other_estimators, "bar", broken)
    with pytest.raises(ValueError, match="BAR did not converge"):
        stats.bar(np.zeros(10), np.zeros(10))


def test_re_lnz_falls_back_to_the_exponential_average(monkeypatch):
    from cgflow.methods import re as re_method

    def no_bar(*args):
        raise ValueError("BAR did not converge")

    w = np.random.default_rng(1).normal(2.0, 1.0, 5000)
    with_bar, se = re_method.lnz_difference(w, np.random.default_rng(2).normal(-1.0, 1.0, 5000))
    assert with_bar == pytest.approx(-1.5, abs=0.1) and np.isfinite(se)
    monkeypatch.setattr(re_method, "bar", no_bar)
    fallback, se = re_method.lnz_difference(w, w)
    assert fallback == pytest.approx(-1.5, abs=0.1) and np.isnan(se)  # -dF, dF = 2 - 1/2
