"""Langevin simulator: Boltzmann sampling of a harmonic oscillator, and blow-up handling."""

import io

import jax.numpy as jnp
import numpy as np
import pytest

from cgflow.simulate import SimSettings, simulate_langevin


def harmonic(params, R):
    return 0.5 * params["k"] * jnp.sum(R**2)


def run(energy, params, settings, kT=1.5, mass=2.0, seed=0):
    import jax

    R0 = jnp.zeros((settings.n_replicas, 1, 1))
    return simulate_langevin(
        energy, params, R0, [mass], kT, settings, jax.random.PRNGKey(seed), log=io.StringIO()
    )


def test_harmonic_oscillator_samples_boltzmann_variance():
    """Var(x) = kT/k. BAOAB samples it exactly for a harmonic well at any stable dt,
    so at omega*dt = 0.4 a 2 % bound separates it from first-order schemes
    (Euler-Maruyama's bias here is about 10 %)."""
    k, kT, mass = 4.0, 1.5, 2.0
    dt = 0.4 / np.sqrt(k / mass)
    s = SimSettings(
        dt=dt,
        n_steps=20_000,
        equilibration_steps=500,
        save_every=5,
        n_replicas=128,
        friction=1.0,
        chunk_steps=5000,
    )
    frames, status = run(harmonic, {"k": k}, s, kT, mass)
    assert status["stable"] and status["steps_done"] == 20_500
    assert frames.shape == (4000, 128, 1, 1)
    per_replica = frames[..., 0, 0].var(axis=0)
    var, sem = per_replica.mean(), per_replica.std() / np.sqrt(128)
    assert 4 * sem < 0.02 * kT / k, "test lacks the power to detect a 2 % error"
    assert abs(var / (kT / k) - 1) < 0.02


def test_equipartition_and_mass_independence():
    """Heavier beads move slower but sample the same positions; <x^2> matches for both."""
    s = SimSettings(dt=0.05, n_steps=10_000, save_every=5, n_replicas=64, equilibration_steps=500)
    v1 = run(harmonic, {"k": 1.0}, s, kT=1.0, mass=1.0)[0].var()
    v8 = run(harmonic, {"k": 1.0}, s, kT=1.0, mass=8.0)[0].var()
    assert v1 == pytest.approx(1.0, rel=0.04) and v8 == pytest.approx(1.0, rel=0.08)


def test_blow_up_is_recorded_not_raised():
    def unbounded(params, R):  # falls off to -infinity: every replica escapes
        return -jnp.sum(R**4)

    s = SimSettings(
        dt=0.05, n_steps=4000, save_every=10, n_replicas=4, chunk_steps=200, max_position=50.0
    )
    frames, status = run(unbounded, {}, s, kT=1.0)
    assert status["stable"] is False
    assert status["failure"]["step"] < 4000
    assert status["steps_done"] < 4000
    assert np.all(np.isfinite(frames))  # only chunks that passed the check are kept


def test_nan_energy_is_detected():
    def nan_beyond(params, R):  # bowl whose force is NaN once a replica leaves |x| < 1
        return -jnp.sqrt(1.0 - jnp.sum(R**2))

    s = SimSettings(dt=0.1, n_steps=4000, save_every=10, n_replicas=4, chunk_steps=500)
    frames, status = run(nan_beyond, {}, s, kT=5.0)
    assert status["stable"] is False and status["failure"]["replicas"]


def test_same_seed_same_trajectory():
    s = SimSettings(dt=0.05, n_steps=200, save_every=10, n_replicas=3)
    a = run(harmonic, {"k": 1.0}, s, seed=1)[0]
    b = run(harmonic, {"k": 1.0}, s, seed=1)[0]
    c = run(harmonic, {"k": 1.0}, s, seed=2)[0]
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_bad_settings_rejected():
    with pytest.raises(ValueError, match="simulation.dt"):
        SimSettings(dt=-0.1, n_steps=10)


def pulls_apart(params, R):  # bead 1 is pushed away from bead 0 without bound
    return -5.0 * jnp.sum((R[1] - R[0]) ** 2)


def pulls_together(params, R):  # an attraction with no repulsive core
    return 50.0 * jnp.sum((R[1] - R[0]) ** 2)


@pytest.mark.parametrize(
    "energy, start, watch, reason",
    [
        (pulls_apart, 0.15, {"bonds": ([[0, 1]], [0.15])}, "bond longer than 2.0"),
        (pulls_together, 0.4, {"contacts": ([[0, 1]], [0.35])}, "beads closer than 0.5"),
    ],
)
def test_molecular_blow_ups_are_recorded(energy, start, watch, reason):
    import jax

    s = SimSettings(dt=0.005, n_steps=2000, save_every=10, n_replicas=4, chunk_steps=100)
    R0 = jnp.tile(jnp.array([[0.0, 0, 0], [start, 0, 0]]), (4, 1, 1))
    _, status = simulate_langevin(
        energy, {}, R0, [12.0, 12.0], 2.5, s, jax.random.PRNGKey(0), log=io.StringIO(), **watch
    )
    assert status["stable"] is False
    assert status["failure"]["reason"].startswith(reason)


@pytest.mark.parametrize("thermostat, friction", [("langevin", 1.0), ("nose_hoover", 2.0)])
def test_thermostats_hold_the_temperature(thermostat, friction):
    """Equipartition in configuration space, <sum_i r_i . grad_i U> = N dim kT, for
    8 beads in 3-D with a quartic confinement and springs between neighbours."""
    import jax

    k, q, ks, kT = 2.0, 0.5, 3.0, 1.3

    def energy(params, R):
        r2 = jnp.sum(R**2, axis=1)
        return jnp.sum(0.5 * k * r2 + 0.25 * q * r2**2) + 0.5 * ks * jnp.sum((R[1:] - R[:-1]) ** 2)

    s = SimSettings(
        dt=0.05,
        n_steps=20_000,
        equilibration_steps=2000,
        save_every=20,
        n_replicas=16,
        friction=friction,
        thermostat=thermostat,
    )
    R0 = 0.3 * jax.random.normal(jax.random.PRNGKey(1), (16, 8, 3))
    frames, status = simulate_langevin(
        energy, {}, R0, jnp.ones(8), kT, s, jax.random.PRNGKey(2), log=io.StringIO()
    )
    assert status["stable"]
    grad = jax.vmap(jax.grad(energy, argnums=1), (None, 0))
    flat = jnp.asarray(frames.reshape(-1, 8, 3))
    virial = np.asarray(jnp.sum(flat * grad({}, flat), axis=(1, 2)))
    per_replica = virial.reshape(frames.shape[0], 16).mean(axis=0)
    kT_conf = per_replica.mean() / (8 * 3)
    sem = per_replica.std() / np.sqrt(16) / (8 * 3)
    assert 4 * sem < 0.03 * kT, "test lacks the power to detect a 3 % error"
    assert abs(kT_conf / kT - 1) < 0.03


def test_unknown_thermostat_rejected():
    with pytest.raises(ValueError, match="simulation.thermostat"):
        SimSettings(dt=0.1, n_steps=10, thermostat="berendsen")
