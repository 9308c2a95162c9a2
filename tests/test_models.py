"""CG energy models: priors, forces from autodiff, serialisation, and force matching."""

import io

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cgflow.integrity import sha256_of
from cgflow.io import write_json
from cgflow.methods.base import Problem
from cgflow.methods.data import split_indices
from cgflow.methods.fm import FMSettings, force_loss_fn, train_fm
from cgflow.models import (
    ModelDescription,
    build_energy,
    fit_prior,
    init_params,
    load_model,
    save_model,
)
from cgflow.systems import get_system
from cgflow.systems.double_well import ExactSettings, pmf_x1


def describe(prior, hidden=(16, 16), n_beads=2, dim=3):
    return {
        "n_beads": n_beads,
        "dim": dim,
        "kT": 1.0,
        "prior": prior,
        "network": {
            "type": "mlp",
            "hidden": list(hidden),
            "activation": "softplus",
            "input_shift": np.zeros((n_beads, dim)).tolist(),
            "input_scale": np.ones((n_beads, dim)).tolist(),
        },
    }


def fm_problem(energy, params, train, val) -> Problem:
    """A force-matching problem of one 1-D bead: training and held-out (R, F)."""
    return Problem(energy, params, train[0], np.ones(1), 1.0, F_train=train[1], R_val=val[0],
                   F_val=val[1], log=io.StringIO())  # fmt: skip


def test_harmonic_prior_recovers_parameters():
    rng = np.random.default_rng(0)
    kT, k_true, x0_true = 2.5, np.array([[4.0], [0.5]]), np.array([[1.0], [-2.0]])
    R = x0_true + rng.standard_normal((100_000, 2, 1)) * np.sqrt(kT / k_true)
    prior = fit_prior("harmonic_position", R, kT)
    # relative standard error of a variance from 1e5 samples is sqrt(2/1e5) = 0.45 %
    np.testing.assert_allclose(prior["k"], k_true, rtol=0.02)
    np.testing.assert_allclose(prior["x0"], x0_true, atol=0.02)


def test_prior_fit_fails_loudly_on_frozen_coordinate():
    R = np.ones((10, 1, 1))
    with pytest.raises(ValueError, match="not finite and positive"):
        fit_prior("harmonic_position", R, 1.0)
    with pytest.raises(ValueError, match="unknown prior"):
        fit_prior("bonds", R, 1.0)


def test_forces_are_minus_gradient_of_energy():
    desc = describe({"type": "harmonic_position", "k": [[1.0] * 3] * 2, "x0": [[0.0] * 3] * 2})
    energy = build_energy(desc)
    params = init_params(desc, jax.random.PRNGKey(0))
    R = jax.random.normal(jax.random.PRNGKey(1), (2, 3))
    force = -jax.grad(energy, argnums=1)(params, R)
    h = 1e-3
    fd = np.zeros((2, 3))
    for i in range(2):
        for a in range(3):
            e = jnp.zeros((2, 3)).at[i, a].set(h)
            fd[i, a] = -(energy(params, R + e) - energy(params, R - e)) / (2 * h)
    np.testing.assert_allclose(force, fd, rtol=2e-2, atol=2e-3)


def test_force_loss_is_zero_for_own_forces():
    desc = describe({"type": "none"})
    energy = build_energy(desc)
    params = init_params(desc, jax.random.PRNGKey(0))
    R = jax.random.normal(jax.random.PRNGKey(1), (8, 2, 3))
    F = jax.vmap(lambda r: -jax.grad(energy, argnums=1)(params, r))(R)
    loss = force_loss_fn(energy)
    assert float(loss(params, R, F)) < 1e-10
    assert float(loss(params, R, F + 1.0)) == pytest.approx(1.0, rel=1e-5)


def test_save_and_load_model_round_trip(tmp_path):
    desc = describe({"type": "none"})
    params = init_params(desc, jax.random.PRNGKey(3))
    save_model(tmp_path / "m", desc, params)
    energy2, params2, desc2 = load_model(tmp_path / "m")
    R = jnp.ones((2, 3))
    assert float(energy2(params2, R)) == pytest.approx(float(build_energy(desc)(params, R)))
    written = sha256_of((tmp_path / "m" / "params.msgpack").read_bytes())
    assert desc2 == ModelDescription.from_json(desc).replace(params_sha256=written)


def test_split_is_deterministic_and_disjoint():
    tr, va = split_indices(1000, 200, 0.1, seed=5)
    tr2, va2 = split_indices(1000, 200, 0.1, seed=5)
    np.testing.assert_array_equal(tr, tr2)
    np.testing.assert_array_equal(va, va2)
    assert len(tr) == 180 and len(va) == 20 and not set(tr) & set(va)
    assert not np.array_equal(split_indices(1000, 200, 0.1, seed=6)[0], tr)
    with pytest.raises(ValueError, match="n_train"):
        split_indices(100, 200, 0.1, seed=0)


@pytest.mark.slow
def test_force_matching_learns_double_well_pmf():
    """FM on exact separable data recovers A(x1) = x1^4/4 - 3x1^2 + x1 (quadrature check)."""
    kT = 3.0
    system = get_system("double_well", {})
    data = system.sample_exact(kT, ExactSettings(n_samples=2000, seed=0))
    R, F = data["positions"][:, :1], data["forces"][:, :1]
    prior = fit_prior("harmonic_position", R[200:], kT)
    desc = describe(prior, hidden=(32, 32), n_beads=1, dim=1)
    desc["network"]["input_shift"] = [[float(R.mean())]]
    desc["network"]["input_scale"] = [[float(R.std())]]
    energy = build_energy(desc)
    params = init_params(desc, jax.random.PRNGKey(0))
    settings = FMSettings(max_steps=4000, eval_every=200, patience=10, batch_size=128)
    params, hist = train_fm(
        fm_problem(energy, params, (R[200:], F[200:]), (R[:200], F[:200])),
        settings,
        jax.random.PRNGKey(1),
    )
    assert hist[-1]["val_loss"] < hist[0]["val_loss"]
    x = np.linspace(-3.5, 3.5, 301)
    u = np.asarray(jax.vmap(lambda r: energy(params, r.reshape(1, 1)))(jnp.asarray(x)))
    a = pmf_x1(x)
    weight = np.exp(-(a - a.min()) / kT) > 1e-3
    d = (u - a)[weight] / kT
    assert np.sqrt(np.mean((d - d.mean()) ** 2)) < 0.1


def test_load_model_rejects_mismatched_parameters(tmp_path):
    desc = describe({"type": "none"})
    save_model(tmp_path / "m", desc, init_params(desc, jax.random.PRNGKey(0)))
    wider = describe({"type": "none"}, hidden=(32, 16))
    save_model(tmp_path / "w", wider, init_params(wider, jax.random.PRNGKey(0)))
    (tmp_path / "m" / "params.msgpack").write_bytes(
        (tmp_path / "w" / "params.msgpack").read_bytes()
    )
    with pytest.raises(ValueError, match="SHA-256 is not the one model.json records"):
        load_model(tmp_path / "m")
    # a model.json written before the checksum was recorded: the shapes catch it
    write_json(tmp_path / "m" / "model.json", desc)
    with pytest.raises(ValueError, match="do not match"):
        load_model(tmp_path / "m")


@pytest.mark.parametrize("keep", ["best", "last"])
def test_force_matching_keeps_the_best_or_the_last_average(keep):
    """``keep: best`` returns the average of the check with the lowest validation loss,
    ``keep: last`` that of the last check. The validation forces are the starting
    model's own, so learning the training forces worsens the validation loss and the
    two differ."""
    system = get_system("double_well", {"potential": {"c": 1.0}})
    data = system.sample_exact(3.0, ExactSettings(n_samples=600, seed=0))
    R, F = data["positions"][:, :1], data["forces"][:, :1]
    desc = describe(fit_prior("harmonic_position", R, 3.0), hidden=(8,), n_beads=1, dim=1)
    energy = build_energy(desc)
    settings = FMSettings(max_steps=600, eval_every=100, patience=6, batch_size=64, keep=keep)
    start = init_params(desc, jax.random.PRNGKey(0))
    R_val = jnp.asarray(R[:100])
    val = (R_val, -jax.vmap(jax.grad(energy, argnums=1), (None, 0))(start, R_val))
    params, hist = train_fm(
        fm_problem(energy, start, (R[100:], F[100:]), val), settings, jax.random.PRNGKey(1)
    )
    losses = [h["val_loss"] for h in hist]
    assert len(losses) == 6 and int(np.argmin(losses)) < 5  # the best is not the last
    kept = float(force_loss_fn(energy)(params, *val))
    want = min(losses) if keep == "best" else losses[-1]
    np.testing.assert_allclose(kept, want, rtol=1e-5)


def test_force_matching_is_repeatable_with_same_seed():
    system = get_system("double_well", {"potential": {"c": 1.0}})
    data = system.sample_exact(3.0, ExactSettings(n_samples=500, seed=0))
    R, F = data["positions"][:, :1], data["forces"][:, :1]
    desc = describe(fit_prior("harmonic_position", R, 3.0), hidden=(8,), n_beads=1, dim=1)
    energy = build_energy(desc)
    settings = FMSettings(max_steps=400, eval_every=100, patience=4, batch_size=64)

    def fit(seed):
        key = jax.random.PRNGKey(seed)
        params = init_params(desc, jax.random.fold_in(key, 1))
        out, _ = train_fm(
            fm_problem(energy, params, (R[50:], F[50:]), (R[:50], F[:50])),
            settings,
            jax.random.fold_in(key, 2),
        )
        return np.concatenate([np.ravel(x) for x in jax.tree.leaves(out)])

    a, b, c = fit(0), fit(0), fit(1)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_a_model_json_of_before_the_records_loads_and_writes_back_unchanged(tmp_path):
    """A model.json as cgflow wrote it before ModelDescription (the keys, no usable
    flag) and one with a key this version does not know: both load, rebuild their
    energy, and write back every key they had (plus ``usable``)."""
    from cgflow.io import read_json, write_json
    from cgflow.models import ModelDescription, load_model

    old = {"system": "double_well", "mapping": "x1", "kT": 3.0, "n_beads": 1, "dim": 1,
           "bead_masses": [1.0], "species_names": ["X"], "species_index": [0],
           "prior": {"type": "harmonic_position", "k": [[0.5]], "x0": [[0.0]]},
           "network": {"type": "none"}, "method": "prior", "n_train": 100, "seed": 0,
           "units": {"time": "tau"}, "training": {"steps": 0},
           "written_by": "a later cgflow"}  # fmt: skip
    save_model(tmp_path / "m", old, {})
    write_json(tmp_path / "m" / "model.json", old)  # as the older version wrote it
    energy_fn, _, desc = load_model(tmp_path / "m")
    assert isinstance(desc, ModelDescription) and desc.extra == {"written_by": "a later cgflow"}
    assert float(energy_fn({}, jnp.array([[2.0]]))) == pytest.approx(0.5 * 0.5 * 4.0)
    back = desc.to_json()
    assert {k: back[k] for k in old} == old and back["usable"] is True
    save_model(tmp_path / "again", desc, {})
    written = sha256_of((tmp_path / "again" / "params.msgpack").read_bytes())
    assert read_json(tmp_path / "again" / "model.json") == {**back, "params_sha256": written}
    with pytest.raises(ValueError, match=r"lacks \['network'\]"):
        ModelDescription.from_json({k: v for k, v in old.items() if k != "network"})
