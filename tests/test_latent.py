"""CV discovery scores: correlation and mutual information of latent variables
with known collective variables, against cases with known answers."""

import numpy as np
import pytest

from cgflow.analysis.latent import latent_scores


def scores(z, cv, periodic=False, seed=0):
    groups = np.arange(len(z)) % 100
    return latent_scores(z, cv, ["q"], periodic, groups, np.random.default_rng(seed), n_boot=200)


def test_a_latent_variable_that_is_the_cv_plus_noise_has_the_known_correlation():
    """z = x + s e with x, e standard normal: corr = 1 / sqrt(1 + s^2); a second
    latent dimension of pure noise does not lower the largest."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(50_000)
    for s in (0.5, 2.0):
        z = np.stack([x + s * rng.standard_normal(x.size), rng.standard_normal(x.size)], 1)
        values, cis, _ = scores(z, x[:, None])
        exact = 1 / np.sqrt(1 + s**2)
        assert values["latent_corr_q"] == pytest.approx(exact, abs=0.01)
        assert cis["latent_corr_q"][0] < exact + 0.005 and exact - 0.005 < cis["latent_corr_q"][1]
        # Gaussian MI = -ln(1 - r^2) / 2; the histogram estimate lies a little below
        mi = -0.5 * np.log(1 - exact**2)
        assert values["latent_mi_q"] == pytest.approx(mi, rel=0.15)


def test_an_unrelated_latent_variable_scores_near_zero():
    rng = np.random.default_rng(1)
    values, cis, _ = scores(rng.standard_normal((50_000, 1)), rng.standard_normal((50_000, 1)))
    assert values["latent_corr_q"] < 0.02 and cis["latent_corr_q"][0] < 0.02
    assert values["latent_mi_q"] < 0.01


def test_an_angle_is_scored_by_circular_linear_correlation():
    """z = cos(theta - 1) is perfectly determined by the angle theta but has no
    linear correlation with theta's value near the wrap; the circular-linear
    correlation is 1, and a z unrelated to theta scores near 0."""
    rng = np.random.default_rng(2)
    theta = rng.uniform(-np.pi, np.pi, 50_000)
    values, _, draws = scores(np.cos(theta - 1.0)[:, None], theta[:, None], periodic=True)
    assert values["latent_corr_q"] == pytest.approx(1.0, abs=1e-6)
    assert draws["latent_corr_q"].shape == (200,)
    values, _, _ = scores(rng.standard_normal((50_000, 1)), theta[:, None], periodic=True)
    assert values["latent_corr_q"] < 0.03
