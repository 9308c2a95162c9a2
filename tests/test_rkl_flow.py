"""The data-free flow: its exact log-density, its bound (the reverse KL itself),
and training on a target whose moments are known."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cgflow.methods import rkl_flow


def random_flow(dim=3, seed=0):
    """A flow with random (not identity) couplings."""
    settings = rkl_flow.FlowSettings(n_layers=4, hidden=8, init_scale=1.5)
    flow = rkl_flow.make_flow(settings, dim)
    params = rkl_flow.init_flow(flow, jax.random.PRNGKey(seed))
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(seed + 1), len(leaves))
    leaves = [
        leaf + 0.3 * jax.random.normal(k, leaf.shape) for leaf, k in zip(leaves, keys, strict=True)
    ]
    return flow, jax.tree.unflatten(tree, leaves)


@pytest.mark.slow
def test_the_log_density_is_the_base_density_less_the_log_jacobian():
    """ln q(x) from the couplings' log-determinants equals the change of variables
    with the Jacobian computed by jax.jacfwd."""
    flow, params = random_flow()
    eps = flow.base_scale * jax.random.normal(jax.random.PRNGKey(5), (6, 3))
    x, log_q = rkl_flow.push(flow, params, eps)
    assert not np.allclose(np.asarray(x), np.asarray(eps))  # not the identity
    for i in range(6):
        jac = jax.jacfwd(lambda e: rkl_flow.push(flow, params, e[None])[0][0])(eps[i])
        _, log_det = jnp.linalg.slogdet(jac)
        base = np.sum(-0.5 * (np.asarray(eps[i]) / flow.base_scale) ** 2
                      - math.log(flow.base_scale) - 0.5 * math.log(2 * math.pi))  # fmt: skip
        assert float(log_q[i]) == pytest.approx(base - float(log_det), rel=1e-4)  # float32


def test_the_flow_starts_as_the_base_gaussian_and_odd_layers_are_refused():
    settings = rkl_flow.FlowSettings(n_layers=2, hidden=4, init_scale=2.0)
    flow = rkl_flow.make_flow(settings, 2)
    params = rkl_flow.init_flow(flow, jax.random.PRNGKey(0))
    eps = jnp.ones((3, 2))
    x, _ = rkl_flow.push(flow, params, eps)
    np.testing.assert_allclose(np.asarray(x), np.asarray(eps))
    with pytest.raises(ValueError, match="n_layers: 3 is odd"):
        rkl_flow.FlowSettings(n_layers=3)


@pytest.mark.slow
def test_a_trained_flow_recovers_a_correlated_gaussian_and_its_ln_z():
    """Target N(m, C) with correlation 0.9 (which a diagonal decoder cannot hold):
    the bound's gap (the reverse KL) falls below 0.01 nats, and the samples' mean
    and covariance match within bounds set by the sample size (4000 draws)."""
    m = jnp.array([1.0, -2.0])
    cov = jnp.array([[1.0, 0.9 * 0.5], [0.9 * 0.5, 0.25]])
    prec = jnp.linalg.inv(cov)
    log_z = float(0.5 * jnp.linalg.slogdet(2 * math.pi * cov)[1])

    def energy(x):
        d = x - m
        return 0.5 * d @ prec @ d

    settings = rkl_flow.FlowSettings(n_layers=4, hidden=32, steps=3000, samples_per_step=256,
                                     learning_rate=3e-3, log_every=500, init_scale=1.0)  # fmt: skip
    flow = rkl_flow.make_flow(settings, 2)
    k_init, k_train = jax.random.split(jax.random.PRNGKey(2))

    def terms_fn(p, k, n, beta):
        return rkl_flow.bound_terms(flow, energy, p, k, n, beta)

    from cgflow.methods.base import GeneratorProblem
    from cgflow.methods.rkl import fit_generator

    start = rkl_flow.init_flow(flow, k_init)
    params, history = fit_generator(GeneratorProblem(energy, 2, 1.0), terms_fn, start, settings,
                                    k_train)  # fmt: skip
    terms = rkl_flow.bound_terms(flow, energy, params, jax.random.PRNGKey(9), 4000, 1.0)
    gap = float(jnp.mean(terms["l"])) + log_z
    assert -0.01 < gap < 0.01
    x = np.asarray(terms["x"])
    se = np.sqrt(np.diag(np.asarray(cov)) / len(x))
    np.testing.assert_array_less(np.abs(x.mean(0) - np.asarray(m)), 5 * se)
    np.testing.assert_allclose(np.cov(x.T), np.asarray(cov), atol=0.05)
    assert history[-1]["energy_evaluations"] == 3000 * 256


@pytest.mark.slow
def test_a_flow_proposes_alanine_dipeptide_in_internal_coordinates(tmp_path):
    """The DAG's steps on alanine in vacuum: the flow works in the molecule's 60
    internal coordinates, and its samples come out as whole molecules (bonded heavy
    atoms at bond lengths), mapped to the 10 heavy-atom beads with finite weights."""
    from cgflow.config import validate_config
    from cgflow.steps.generate import generate_step, train_generator
    from cgflow.study import StudySettings

    config = {
        "seeds": [0], "val_fraction": 0.1,
        "methods": {"rkl_flow": {"n_layers": 2, "hidden": 8, "steps": 20,
                                 "samples_per_step": 16, "log_every": 10}},
        "systems": {"ala": {"type": "alanine_dipeptide",
                            "potential": {"solvent": "vacuum", "constraints": "none"},
                            "temperatures": [300], "mappings": ["heavy_atoms"],
                            "simulation": {"dt": [0.002], "n_steps": 100, "save_every": 10,
                                           "n_replicas": 20}}},
    }  # fmt: skip
    study = StudySettings.from_config(validate_config(config), "ala")
    desc = train_generator(study, "rkl_flow", 300.0, "heavy_atoms", 0, tmp_path / "model")
    assert desc.generator["data_dim"] == 60  # 3 x 22 - 6
    status = generate_step(study, tmp_path / "model", None, tmp_path / "dt0")
    assert status.stable and status.n_samples == 200
    assert sum(status.basin_fractions.values()) == pytest.approx(1.0)
    samples = np.load(tmp_path / "dt0" / "samples.npz")
    cg = samples["positions"]
    assert cg.shape == (200, 10, 3) and np.all(np.isfinite(samples["log_weight"]))
    ca_cb = np.linalg.norm(cg[:, 4] - cg[:, 5], axis=-1)  # ALA CA-CB, 0.153 nm
    assert np.all(np.abs(ca_cb - 0.153) < 0.02), (ca_cb.min(), ca_cb.max())
