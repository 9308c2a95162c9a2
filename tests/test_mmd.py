"""The sample-based held-out score of RE (squared MMD, weighted)."""

import numpy as np
import pytest

from cgflow.analysis import mmd


def test_squared_distances_are_scipys_and_the_expansion_they_replaced():
    """scipy's cdist gives the squared distances of |a|^2 + |b|^2 - 2 a.b (the
    hand-written form before) to rounding, and of explicit differences exactly."""
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 2, (50, 4)), rng.normal(1, 1, (70, 4))
    d = mmd._sq_dists(a, b)
    expanded = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    np.testing.assert_allclose(d, np.maximum(expanded, 0.0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(d, ((a[:, None] - b[None]) ** 2).sum(-1), rtol=1e-15)


def test_mmd_separates_equal_from_shifted_samples():
    rng = np.random.default_rng(0)
    y = rng.normal(0, 1, (800, 1))
    score = mmd.MMDScore(y, mmd.bandwidth(y))
    score.set_samples(rng.normal(0, 1, (800, 1)))
    same = score()
    score.set_samples(rng.normal(0.5, 1, (800, 1)))
    shifted = score()
    assert abs(same) < 0.01 and shifted > 5 * max(same, 0.005)


def test_weighted_mmd_scores_the_reweighted_distribution():
    """Samples of N(0, 1) reweighted by exp(0.5 x) represent N(0.5, 1): against
    frames of N(0.5, 1) their weighted MMD is as small as that of fresh N(0.5, 1)
    samples, and far below the unweighted one (a score ignoring the weights fails)."""
    rng = np.random.default_rng(1)
    y = rng.normal(0.5, 1, (1000, 1))
    score = mmd.MMDScore(y, mmd.bandwidth(y))
    x = rng.normal(0, 1, (1000, 1))
    score.set_samples(x)
    weighted, unweighted = score(np.exp(0.5 * x[:, 0])), score()
    score.set_samples(rng.normal(0.5, 1, (1000, 1)))
    fresh = score()
    assert weighted == pytest.approx(fresh, abs=0.01)
    assert unweighted > weighted + 0.02


def test_held_out_sample_score_reuses_kernels_until_the_samples_change():
    rng = np.random.default_rng(2)
    R_val = rng.normal(0, 1, (300, 1, 1))
    calls = []

    def features(R):
        calls.append(len(R))
        return np.asarray(R).reshape(len(R), -1)

    score = mmd.HeldOutSampleScore(R_val, features)
    X = rng.normal(0, 1, (5000, 1, 1))
    w = np.full(5000, 1 / 5000)
    first = score(X, w)
    assert score(X, w + 0.0) == first and calls == [300, mmd.MAX_SAMPLES]
    score(X.copy(), w)
    assert calls == [300, mmd.MAX_SAMPLES, mmd.MAX_SAMPLES]
    assert np.isnan(score(X, np.full(5000, np.nan)))  # weights of diverged energies
