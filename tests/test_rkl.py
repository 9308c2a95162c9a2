"""Reverse KL (data-free): the bound, its reparametrised gradient, and training, on
targets whose ln Z and moments are known in closed form."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cgflow.methods import rkl
from cgflow.systems import get_system
from cgflow.systems.double_well import pmf_x1

M, S = 1.5, 0.5  # the 1-D Gaussian target N(M, S^2) at beta = 1


def gaussian_energy(x):
    return jnp.sum((x - M) ** 2) / (2 * S**2)


LOG_Z = 0.5 * math.log(2 * math.pi) + math.log(S)


def fixed_generator(mu: float, sigma: float):
    """A decoder that ignores z (N(mu, sigma^2)) and an encoder equal to q(z): then
    L = KL(N(mu, sigma^2) || N(M, S^2)) - ln Z exactly."""
    settings = rkl.RKLSettings(latent_dim=1, hidden=4)
    gen = rkl.make_generator(settings, 1)
    params = rkl.init_generator(gen, jax.random.PRNGKey(0))
    for part, (mean, log_sigma) in (("decoder", (mu, math.log(sigma))), ("encoder", (0.0, 0.0))):
        heads = sorted(k for k in params[part]["params"] if k.startswith("Dense"))[-2:]
        for head, value in zip(heads, (mean, log_sigma), strict=True):
            layer = params[part]["params"][head]
            layer["kernel"] = jnp.zeros_like(layer["kernel"])
            layer["bias"] = jnp.full_like(layer["bias"], value)
    return gen, params


def gaussian_kl(mu, sigma, m, s):
    return math.log(s / sigma) + (sigma**2 + (mu - m) ** 2) / (2 * s**2) - 0.5


def test_the_bound_equals_its_closed_form_and_its_gap_is_the_kl():
    gen, params = fixed_generator(1.0, 0.8)
    terms = rkl.bound_terms(gen, gaussian_energy, params, jax.random.PRNGKey(1), 200_000, 1.0)
    l = np.asarray(terms["l"])
    exact = gaussian_kl(1.0, 0.8, M, S) - LOG_Z
    assert abs(l.mean() - exact) < 4.5 * l.std() / math.sqrt(l.size)
    # at the target itself the bound is tight: L = -ln Z with no variance
    gen, params = fixed_generator(M, S)
    terms = rkl.bound_terms(gen, gaussian_energy, params, jax.random.PRNGKey(2), 1000, 1.0)
    np.testing.assert_allclose(np.asarray(terms["l"]), -LOG_Z, atol=1e-4)
    log_z, ess = rkl.log_z_and_ess(terms)
    assert float(log_z) == pytest.approx(LOG_Z, abs=1e-4) and float(ess) == pytest.approx(1000)


def test_the_reparametrised_gradient_matches_finite_differences():
    """With the noise held fixed, L is a smooth function of the parameters: its
    gradient by reparametrisation (through the energy's forces) equals a central
    difference along a random direction."""
    with jax.enable_x64(True):
        settings = rkl.RKLSettings(latent_dim=1, hidden=8)
        gen = rkl.make_generator(settings, 1)
        params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64),
                              rkl.init_generator(gen, jax.random.PRNGKey(3)))  # fmt: skip
        key = jax.random.PRNGKey(4)

        def bound(p):
            return jnp.mean(rkl.bound_terms(gen, gaussian_energy, p, key, 64, 1.0)["l"])

        grad = jax.grad(bound)(params)
        leaves, tree = jax.tree.flatten(params)
        rng = np.random.default_rng(0)
        direction = jax.tree.unflatten(tree, [rng.standard_normal(a.shape) for a in leaves])
        h = 1e-5

        def shifted(sign):
            return jax.tree.map(lambda a, d: a + sign * h * d, params, direction)

        fd = (bound(shifted(1)) - bound(shifted(-1))) / (2 * h)
        analytic = sum(
            jnp.sum(g * d)
            for g, d in zip(jax.tree.leaves(grad), jax.tree.leaves(direction), strict=True)
        )
        assert float(analytic) == pytest.approx(float(fd), rel=1e-6, abs=1e-8)


def test_training_recovers_a_gaussian_target():
    settings = rkl.RKLSettings(latent_dim=1, hidden=16, samples_per_step=256, steps=3000,
                               learning_rate=3e-3, log_every=500)  # fmt: skip
    gen, params, history = rkl.train_rkl(gaussian_energy, 1, 1.0, settings, jax.random.PRNGKey(5))
    x = rkl.sample(gen, params, jax.random.PRNGKey(6), 20_000)["x"][:, 0]
    # sampling error of the mean S / sqrt(n) = 0.0035; of the variance ~1 %
    assert abs(x.mean() - M) < 0.03 and abs(x.var() / S**2 - 1) < 0.08
    gap = history[-1]["bound"] + LOG_Z
    assert -0.02 < gap < 0.02
    assert history[-1]["beta"] == pytest.approx(1.0)
    assert history[0]["beta"] < 1.0  # annealed in
    assert history[-1]["energy_evaluations"] == 3000 * 256
    assert history[-1]["ess_fraction"] > 0.9


def test_the_double_well_bound_lies_above_minus_ln_z():
    """The exact ln Z of the coupled double well (kT 3, d = 1) matches the issue's
    5.7519, and a briefly trained generator's bound lies above -ln Z (the gap is a KL)."""
    kT, d = 3.0, 1.0
    x = np.linspace(-12.0, 12.0, 400_001)
    log_z = math.log(np.trapezoid(np.exp(-pmf_x1(x) / kT), x)) + 0.5 * math.log(
        2 * math.pi * kT / d
    )
    assert log_z == pytest.approx(5.7519, abs=1e-4)
    system = get_system("double_well", {"potential": {"c": 2.0, "d": d}})

    def energy(flat):
        x1, x2 = flat[0], flat[1]
        return 0.25 * x1**4 - 3.0 * x1**2 + x1 + 0.5 * d * (x2 - 2.0 * jnp.sin(x1)) ** 2

    probe = np.random.default_rng(0).normal(size=(5, 2))
    np.testing.assert_allclose(
        np.asarray(jax.vmap(energy)(jnp.asarray(probe))),
        system.energy(probe.reshape(5, 2, 1)), rtol=1e-5,
    )  # fmt: skip
    settings = rkl.RKLSettings(latent_dim=1, hidden=32, samples_per_step=256, steps=1500,
                               learning_rate=3e-3, log_every=500)  # fmt: skip
    _, _, history = rkl.train_rkl(energy, 2, 1.0 / kT, settings, jax.random.PRNGKey(7),
                                  x_scale=2.0)  # fmt: skip
    gap = history[-1]["bound"] + log_z
    assert gap > -0.05  # a bound: L >= -ln Z up to the sampling noise of a check's mean
    assert history[-1]["log_z_estimate"] < log_z + 0.05
