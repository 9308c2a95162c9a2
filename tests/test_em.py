"""Energy matching: the temperature-aware model, d(beta A)/d beta by jax.jvp, and the
EM loss on the variable-stiffness double well, whose A(x1, beta) is known exactly."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cgflow.methods import em
from cgflow.methods.base import Problem
from cgflow.models import (
    ModelDescription,
    at_temperature,
    build_energy,
    build_free_energy,
    init_params,
)
from cgflow.systems import get_system
from cgflow.systems.double_well import ExactSettings, pmf_x1

A_SLOPE = 0.5
SYSTEM = {"potential": {"c": 2.0, "d": 1.5, "a": A_SLOPE}}


def mlp_description(kT=2.0, temperature=True):
    net = {"type": "mlp", "hidden": [16, 16], "activation": "softplus",
           "input_shift": [0.0], "input_scale": [2.0]}  # fmt: skip
    if temperature:
        net["temperature"] = {"kT_shift": 3.0, "kT_scale": 1.0}
    prior = {"type": "harmonic_position", "x0": [[0.0]], "k": [[0.1]]}
    return {"kT": kT, "n_beads": 1, "dim": 1, "prior": prior, "network": net}


def test_a_temperature_aware_model_reads_kt_and_its_energy_fixes_it():
    desc = mlp_description()
    params = init_params(desc, jax.random.PRNGKey(0))
    A = build_free_energy(desc)
    R = jnp.array([[0.7]])
    assert float(A(params, R, 2.0)) != pytest.approx(float(A(params, R, 4.0)))
    assert float(build_energy(desc)(params, R)) == pytest.approx(float(A(params, R, 2.0)))
    at4 = at_temperature(desc, 4.0)
    assert float(build_energy(at4)(params, R)) == pytest.approx(float(A(params, R, 4.0)))
    plain = mlp_description(temperature=False)
    with pytest.raises(ValueError, match="does not read the temperature"):
        at_temperature(plain, 4.0)
    assert at_temperature(plain, 2.0) == ModelDescription.from_json(plain)


@pytest.mark.slow
def test_schnet_takes_the_temperature_as_an_input():
    desc = {
        "kT": 2.5, "n_beads": 3, "dim": 3, "prior": {"type": "none"},
        "species_names": ["A", "B"], "species_index": [0, 1, 0],
        "network": {"type": "schnet", "features": 8, "interactions": 1, "rbf": 4,
                    "cutoff": 0.6, "temperature": {"kT_shift": 2.5, "kT_scale": 0.5}},
    }  # fmt: skip
    params = init_params(desc, jax.random.PRNGKey(1))
    A = build_free_energy(desc)
    R = jnp.array([[0.0, 0.0, 0.0], [0.3, 0.0, 0.0], [0.3, 0.3, 0.1]])
    a2, a3 = float(A(params, R, 2.0)), float(A(params, R, 3.0))
    assert np.isfinite(a2) and a2 != pytest.approx(a3)


@pytest.mark.parametrize("network", ["mlp", "schnet"])
def test_the_entropy_form_is_linear_in_kt_and_its_beta_derivative_is_the_energy(network):
    """form: entropy gives A = prior + E(R) - kT S(R): A is linear in kT, and
    d(beta A)/d beta = prior + E(R), which is A extrapolated to kT = 0."""
    if network == "mlp":
        desc = mlp_description()
        R = jnp.array([[0.7]])
    else:
        desc = {"kT": 2.5, "n_beads": 3, "dim": 3, "prior": {"type": "none"},
                "species_names": ["A", "B"], "species_index": [0, 1, 0],
                "network": {"type": "schnet", "features": 8, "interactions": 1, "rbf": 4,
                            "cutoff": 0.6}}  # fmt: skip
        R = jnp.array([[0.0, 0.0, 0.0], [0.3, 0.0, 0.0], [0.3, 0.3, 0.1]])
    desc["network"]["temperature"] = {"form": "entropy", "kT_shift": 3.0, "kT_scale": 1.0}
    params = init_params(desc, jax.random.PRNGKey(3))
    A = build_free_energy(desc)
    a1, a2, a4 = (float(A(params, R, t)) for t in (1.0, 2.0, 4.0))
    assert a2 - a1 != pytest.approx(0.0, abs=1e-6)
    assert a4 - a2 == pytest.approx(2 * (a2 - a1), rel=1e-4, abs=1e-6)  # linear in kT
    energy = a1 - (a2 - a1)  # A at kT = 0
    d = em.beta_derivative(A)
    for kT in (1.5, 3.0):
        assert float(d(params, R, kT)) == pytest.approx(energy, rel=1e-4, abs=1e-5)


def test_beta_derivative_by_jvp_equals_a_finite_difference():
    desc = mlp_description()
    params = init_params(desc, jax.random.PRNGKey(2))
    A = build_free_energy(desc)
    d_beta_a = jax.jit(em.beta_derivative(A))
    for x, kT in ((-1.3, 2.0), (0.4, 3.0), (2.1, 4.5)):
        R = jnp.array([[x]])
        beta, h = 1.0 / kT, 1e-3

        def beta_a(b, R=R):
            return b * float(A(params, R, 1.0 / b))

        fd = (beta_a(beta + h) - beta_a(beta - h)) / (2 * h)
        assert float(d_beta_a(params, R, kT)) == pytest.approx(fd, rel=2e-3, abs=2e-3)
        # not A itself: the derivative carries beta dA/dbeta
        assert abs(float(A(params, R, kT)) - fd) > 1e-2
        # the second derivative, by jvp over jvp, against a second difference
        g, dg = em.beta_derivatives(A)(params, R, kT)
        assert float(g) == pytest.approx(float(d_beta_a(params, R, kT)), rel=1e-5, abs=1e-5)
        h2 = 1e-2
        fd2 = (beta_a(beta + h2) - 2 * beta_a(beta) + beta_a(beta - h2)) / h2**2
        assert float(dg) == pytest.approx(fd2, rel=2e-2, abs=2e-2)


def exact_frames(kTs, n, seed=0):
    """Exact variable-stiffness samples at each kT, as EM's Frames (x1 only)."""
    system = get_system("double_well", SYSTEM)
    parts = []
    for g, kT in enumerate(kTs):
        d = system.sample_exact(kT, ExactSettings(n_samples=n, seed=seed + g))
        parts.append((d["positions"][:, :1], d["forces"][:, :1], d["energies"],
                      np.full(n, kT), np.full(n, g)))  # fmt: skip
    return em.frames_of(*(np.concatenate(x) for x in zip(*parts, strict=True)))


def exact_free_energy(params, R, kT):
    """The exact A(x1, beta) as a model (params: an energetic error's size)."""
    x = R[0, 0]
    v = 0.25 * x**4 - 3.0 * x**2 + x  # pmf_x1, in JAX
    return v + 0.5 * kT * jnp.log1p(A_SLOPE * x**2) + params["err"] * x**2


def test_the_exact_free_energy_has_zero_em_loss_in_expectation():
    """On exact samples the exact A leaves only label noise: the force and energy
    residuals have zero mean in every x1 bin and the energy residual's variance is
    (kT)^2/2. An energetic error of 0.3 x1^2 is detected; d(beta A)/d beta is V."""
    kTs = (2.0, 4.0)
    frames = exact_frames(kTs, 40_000)
    grad_r = jax.vmap(jax.grad(exact_free_energy, argnums=1), (None, 0, 0))
    d_beta_a = jax.vmap(em.beta_derivative(exact_free_energy), (None, 0, 0))
    x = np.asarray(frames.R[:, 0, 0])

    def binned_means(params, exact=False):
        force = np.asarray(frames.F + grad_r(params, frames.R, frames.kT))[:, 0, 0]
        r = np.asarray(frames.U - d_beta_a(params, frames.R, frames.kT))
        out = []
        for g, kT in enumerate(kTs):
            sel = np.asarray(frames.group) == g
            r_g = r[sel] - r[sel].mean()
            edges = np.quantile(x[sel], np.linspace(0, 1, 9))
            idx = np.clip(np.digitize(x[sel], edges) - 1, 0, 7)
            for b in range(8):
                m = idx == b
                for res in (force[sel][m], r_g[m]):
                    out.append(res.mean() / (res.std() / np.sqrt(m.sum())))
            if exact:
                assert r_g.var() == pytest.approx(0.5 * kT**2, rel=0.05)
        return np.array(out)

    z = binned_means({"err": 0.0}, exact=True)
    assert np.all(np.abs(z) < 4.5), z
    assert np.max(np.abs(binned_means({"err": 0.3}))) > 10
    grid = jnp.linspace(-3.0, 3.0, 13).reshape(-1, 1, 1)
    for kT in kTs:
        d = d_beta_a({"err": 0.0}, grid, jnp.full(13, kT))
        np.testing.assert_allclose(np.asarray(d), pmf_x1(np.asarray(grid[:, 0, 0])), atol=2e-4)
    # the loss: the exact model sits at the noise floor, an error lifts it
    loss = jax.jit(em.em_loss_fn(exact_free_energy, 2, 1.0, 1.0, 1.0, 1.0))
    assert float(loss({"err": 0.3}, frames)[0]) > float(loss({"err": 0.0}, frames)[0]) + 0.5


def exact_free_energy_with_its_beta_part(params, R, kT):
    """The exact A with its R-independent part too: beta A gains (1/2) ln beta, so
    that d^2(beta A)/d beta^2 = -kT^2 / 2 = -Var(U | x1)."""
    return exact_free_energy(params, R, kT) - 0.5 * kT * jnp.log(kT)


def test_the_variance_term_is_zero_in_expectation_for_the_exact_free_energy():
    """The optional second-derivative term: for the fully exact A, r'^2 + dg has zero
    mean in every x1 bin (r' the centred energy residual); without the beta part of
    A (dg = 0) the term sees the whole variance, and the loss says so."""
    kTs = (2.0, 4.0)
    frames = exact_frames(kTs, 40_000, seed=5)
    x = np.asarray(frames.R[:, 0, 0])
    both = jax.vmap(em.beta_derivatives(exact_free_energy_with_its_beta_part), (None, 0, 0))
    g, dg = (np.asarray(a) for a in both({"err": 0.0}, frames.R, frames.kT))
    np.testing.assert_allclose(dg, -0.5 * np.asarray(frames.kT) ** 2, rtol=1e-4)
    for k, kT in enumerate(kTs):
        sel = np.asarray(frames.group) == k
        r = np.asarray(frames.U)[sel] - g[sel]
        v = (r - r.mean()) ** 2 + dg[sel]
        edges = np.quantile(x[sel], np.linspace(0, 1, 9))
        idx = np.clip(np.digitize(x[sel], edges) - 1, 0, 7)
        z = [v[idx == b].mean() / (v[idx == b].std() / np.sqrt(np.sum(idx == b)))
             for b in range(8)]  # fmt: skip
        assert np.all(np.abs(z) < 4.5), (kT, z)

    def variance_term(fn):
        loss = jax.jit(em.em_loss_fn(fn, 2, 1.0, 1.0, 0.0, 0.0, variance_weight=1.0))
        total, (_, _, variance) = loss({"err": 0.0}, frames)
        assert float(total) == pytest.approx(float(variance))
        return float(variance)

    # U - <U | x1> is (kT/2) times a chi-square of 1 degree of freedom: variance
    # kT^2/2, fourth central moment 60 (kT/2)^4. So E[(r'^2 - kT^2/2)^2] against
    # E[r'^4] is 14/15 at every kT (a flipped sign of dg would give 18/15)
    ratio = variance_term(exact_free_energy_with_its_beta_part) / variance_term(exact_free_energy)
    assert ratio == pytest.approx(14 / 15, abs=0.015)


@pytest.mark.slow
@pytest.mark.parametrize("variance_weight", [0.0, 1.0])
def test_em_training_is_finite_and_repeatable(variance_weight):
    kTs = (2.0, 4.0)
    train, val = exact_frames(kTs, 300, seed=0), exact_frames(kTs, 100, seed=10)
    desc = mlp_description(kT=3.0)
    params = init_params(desc, jax.random.PRNGKey(0))
    problem = Problem(
        energy_fn=build_energy(desc), params=params,
        R_train=np.asarray(train.R), F_train=np.asarray(train.F),
        R_val=np.asarray(val.R), F_val=np.asarray(val.F), masses=np.ones(1), kT=3.0,
        free_energy_fn=build_free_energy(desc),
        U_train=np.asarray(train.U), U_val=np.asarray(val.U),
        kT_train=np.asarray(train.kT), kT_val=np.asarray(val.kT),
    )  # fmt: skip
    settings = em.EMSettings(max_steps=200, eval_every=50, batch_size=64,
                             variance_weight=variance_weight)  # fmt: skip
    a = em.train(problem, settings, jax.random.PRNGKey(5))
    b = em.train(problem, settings, jax.random.PRNGKey(5))
    leaves_a, leaves_b = jax.tree.leaves(a.params), jax.tree.leaves(b.params)
    assert all(np.array_equal(x, y) for x, y in zip(leaves_a, leaves_b, strict=True))
    assert all(np.all(np.isfinite(x)) for x in leaves_a)
    h = a.history
    assert {"force_loss", "energy_loss", "val_loss"} <= set(h[0])
    assert ("variance_loss" in h[0]) == (variance_weight > 0)
    assert h[-1]["train_loss"] < h[0]["train_loss"]
    assert a.info["kT_train"] == [2.0, 4.0] and a.info["n_fit_per_kT"] == [300, 300]
    with pytest.raises(ValueError, match="both 0"):
        em.EMSettings(force_weight=0.0, energy_weight=0.0)


def test_the_offset_between_training_temperatures_is_linear_in_kt():
    offsets = [[4.0, 2.5], [2.0, 1.5]]
    assert em.mean_energy_offset(offsets, 3.0) == pytest.approx(2.0)
    assert em.mean_energy_offset(offsets, 6.0) == pytest.approx(3.5)  # extrapolated
    assert em.mean_energy_offset([[2.0, 1.5]], 3.0) == pytest.approx(1.5)


def test_mean_energy_and_heat_capacity_of_the_exact_free_energy():
    """The exact A with the exact offset c = kT/2 predicts <U>(T) and C = d<U>/dT of
    the variable-stiffness double well at a held-out kT; a constant offset (what a
    single temperature would give) misses C by the bath's 1/2."""
    from cgflow.steps.evaluate import thermodynamics

    system = get_system("double_well", SYSTEM)
    exact = thermodynamics(exact_free_energy, {"err": 0.0}, system, 3.0, [[2.0, 1.0], [4.0, 2.0]])
    assert abs(exact["quad_mean_energy_err_kT"]) < 1e-3
    assert abs(exact["quad_heat_capacity_err"]) < 1e-2
    flat = thermodynamics(exact_free_energy, {"err": 0.0}, system, 3.0, [[2.0, 1.5], [4.0, 1.5]])
    assert flat["quad_heat_capacity_err"] == pytest.approx(-0.5, abs=1e-2)
    wrong = thermodynamics(exact_free_energy, {"err": 0.3}, system, 3.0, [[2.0, 1.0], [4.0, 2.0]])
    assert abs(wrong["quad_mean_energy_err_kT"]) > 0.1


def test_mean_energy_and_heat_capacity_from_samples_of_the_exact_free_energy():
    """The sampled form (cgflow.analysis.thermo), as evaluate applies it to molecules:
    exact samples of the variable-stiffness double well at a held-out kT stand for
    the model's CG samples, the exact all-atom energies of an independent sample for
    the reference. The exact A and offsets give <U> and C within their CIs; a
    constant offset misses C by the bath's 1/2, an energetic error misses <U>."""
    from cgflow.analysis.thermo import ModelEnergies, ReferenceEnergies, score_thermodynamics

    system = get_system("double_well", SYSTEM)
    kT, n = 3.0, 20000
    model = system.sample_exact(kT, ExactSettings(n_samples=n, seed=11))
    ref = system.sample_exact(kT, ExactSettings(n_samples=n, seed=12))
    groups = np.arange(n) % 40
    R = jnp.asarray(model["positions"][:, :1], jnp.float32)  # x1: (n, 1, 1)
    both = jax.jit(jax.vmap(em.beta_derivatives(exact_free_energy), (None, 0, None)))

    def scored(err, offsets, positions=R, same_frames=False):
        g, dg = (np.asarray(a, float) for a in both({"err": err}, positions, kT))
        offset = (em.mean_energy_offset(offsets, kT), em.mean_energy_offset_slope(offsets, kT))
        return score_thermodynamics(
            ModelEnergies(g, dg, groups, *offset),
            ReferenceEnergies(ref["energies"], groups),
            kT,
            np.random.default_rng(0),
            same_frames=same_frames,
        )

    exact_offsets = [[2.0, 1.0], [4.0, 2.0]]  # c = kT / 2, slope 1/2
    values, cis, _ = scored(0.0, exact_offsets)
    independent = cis["mean_energy_err_kT"]
    for k in ("mean_energy_err_kT", "heat_capacity_err"):
        lo, hi = cis[k]
        assert lo < 0 < hi, (k, values[k], cis[k])
        assert hi - lo < 0.2, (k, cis[k])  # narrow enough that the misses below show
    # C = beta^2 Var(U): Var(V) / kT^2 plus the harmonic bath's 1/2
    assert values["heat_capacity_model"] == pytest.approx(values["heat_capacity_ref"], abs=0.1)
    values, cis, _ = scored(0.0, [[2.0, 1.5], [4.0, 1.5]])
    assert values["heat_capacity_err"] == pytest.approx(-0.5, abs=0.08)
    assert cis["heat_capacity_err"][1] < 0
    values, cis, _ = scored(0.3, exact_offsets)
    assert cis["mean_energy_err_kT"][0] > 0.1
    # on the reference's own frames (same draws on both sides) the spread of V over
    # the sample cancels: only the bath's noise is left, and the CI narrows
    on_ref = jnp.asarray(ref["positions"][:, :1], jnp.float32)
    _, paired, _ = scored(0.0, exact_offsets, on_ref, same_frames=True)
    lo, hi = paired["mean_energy_err_kT"]
    assert lo < 0 < hi and hi - lo < 0.75 * (independent[1] - independent[0]), (paired, independent)
