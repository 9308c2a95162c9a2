"""Langevin simulator: Boltzmann sampling of a harmonic oscillator, and blow-up handling."""

import io
from dataclasses import replace

import jax.numpy as jnp
import numpy as np
import pytest

from cgflow.simulate.langevin import CGSystem, simulate_langevin
from cgflow.simulate.settings import IntegratorSettings, RunSettings


def SimSettings(dt, thermostat="langevin", friction=1.0, **run):
    """(integrator, run) settings from one flat set of keywords, as in a config block."""
    return IntegratorSettings(dt=dt, thermostat=thermostat, friction=friction), RunSettings(**run)


def harmonic(params, R):
    return 0.5 * params["k"] * jnp.sum(R**2)


def run(energy, params, settings, kT=1.5, mass=2.0, seed=0):
    import jax

    R0 = jnp.zeros((settings[1].n_replicas, 1, 1))
    system = CGSystem(energy, params, [mass], kT)
    return simulate_langevin(system, R0, *settings, jax.random.PRNGKey(seed), log=io.StringIO())


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
    assert status.stable and status.steps_done == 20_500
    assert frames.shape == (4000, 128, 1, 1)
    per_replica = frames[..., 0, 0].var(axis=0)
    var, sem = per_replica.mean(), per_replica.std() / np.sqrt(128)
    assert 4 * sem < 0.02 * kT / k, "test lacks the power to detect a 2 % error"
    assert abs(var / (kT / k) - 1) < 0.02


def test_brownian_integrator_has_euler_maruyama_variance():
    """Euler-Maruyama on U = k x^2 / 2 with h = k dt / (m gamma) is the AR(1) chain
    x' = (1 - h) x + sqrt(2 kT dt / (m gamma)) xi, whose stationary variance is
    (kT / k) / (1 - h / 2), exactly. At h = 0.2 that is 11 % above kT / k: a 2 %
    bound tells Euler-Maruyama from an exact sampler (or BAOAB), and from one that
    drops the mass (h = 0.4 here, 25 % above)."""
    k, kT, mass, gamma = 4.0, 1.5, 2.0, 5.0
    h = 0.2
    dt = h * mass * gamma / k
    s = SimSettings(dt=dt, thermostat="brownian", friction=gamma, n_steps=20_000,
                    equilibration_steps=100, save_every=5, n_replicas=128)  # fmt: skip
    frames, status = run(harmonic, {"k": k}, s, kT, mass)
    assert status.stable and frames.shape == (4000, 128, 1, 1)
    per_replica = frames[..., 0, 0].var(axis=0)
    var, sem = per_replica.mean(), per_replica.std() / np.sqrt(128)
    expected = (kT / k) / (1 - h / 2)
    assert 4 * sem < 0.02 * expected, "test lacks the power to detect a 2 % error"
    assert abs(var / expected - 1) < 0.02


@pytest.mark.slow
def test_masses_set_the_dynamics():
    """Same positions, mass-dependent dynamics: for an underdamped harmonic well the
    position autocorrelation at lag tau is
    C(tau) = exp(-gamma tau/2) [cos(w tau) + gamma/(2 w) sin(w tau)], w^2 = k/m - gamma^2/4.
    At tau = 1.6, k = 1, gamma = 0.5 it is 0.19 for m = 1 and 0.76 for m = 4, so a
    simulator that ignored masses fails the m = 4 case by 0.57 (the bound is 0.04,
    about 4 standard errors with 256 replicas). <x^2> = kT/k holds for both masses."""
    k, kT, gamma, tau = 1.0, 1.0, 0.5, 1.6
    s = SimSettings(dt=0.02, n_steps=16_000, save_every=80, n_replicas=256,
                    equilibration_steps=800, friction=gamma)  # fmt: skip
    for mass in (1.0, 4.0):
        x = run(harmonic, {"k": k}, s, kT=kT, mass=mass)[0][..., 0, 0]  # (frames, replicas)
        var = np.mean(x**2)
        corr = np.mean(x[1:] * x[:-1]) / var
        w = np.sqrt(k / mass - gamma**2 / 4)
        expected = np.exp(-gamma * tau / 2) * (np.cos(w * tau) + gamma / (2 * w) * np.sin(w * tau))
        assert var == pytest.approx(kT / k, rel=0.05), mass
        assert abs(corr - expected) < 0.04, (mass, corr, expected)


def test_blow_up_is_recorded_not_raised():
    def unbounded(params, R):  # falls off to -infinity: every replica escapes
        return -jnp.sum(R**4)

    s = SimSettings(
        dt=0.05, n_steps=4000, save_every=10, n_replicas=4, chunk_steps=200, max_position=50.0
    )
    frames, status = run(unbounded, {}, s, kT=1.0)
    assert status.stable is False
    assert status.failure.step < 4000
    assert status.steps_done < 4000
    assert np.all(np.isfinite(frames))  # only chunks that passed the check are kept


def test_nan_energy_is_detected():
    def nan_beyond(params, R):  # bowl whose force is NaN once a replica leaves |x| < 1
        return -jnp.sqrt(1.0 - jnp.sum(R**2))

    s = SimSettings(dt=0.1, n_steps=4000, save_every=10, n_replicas=4, chunk_steps=500)
    frames, status = run(nan_beyond, {}, s, kT=5.0)
    assert status.stable is False and status.failure.replicas


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
    system = CGSystem(energy, {}, [12.0, 12.0], 2.5, **watch)
    _, status = simulate_langevin(system, R0, *s, jax.random.PRNGKey(0), log=io.StringIO())
    assert status.stable is False
    assert status.failure.reason.startswith(reason)


@pytest.mark.slow
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
    system = CGSystem(energy, {}, jnp.ones(8), kT)
    frames, status = simulate_langevin(system, R0, *s, jax.random.PRNGKey(2), log=io.StringIO())
    assert status.stable
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


def lattice_liquid(n_side=3, spacing=0.7):
    """SchNet beads on a cubic lattice in a periodic box; the lattice spacing is
    beyond cutoff + skin (0.6 nm), so the neighbour lists start out empty."""
    import jax

    from cgflow.models import build_energy, init_params

    box = [n_side * spacing] * 3
    n = n_side**3
    desc = {
        "n_beads": n,
        "dim": 3,
        "kT": 2.5,
        "box": box,
        "prior": {"type": "none"},
        "species_names": ["A", "B"],
        "species_index": (np.arange(n) % 2).tolist(),
        "network": {"type": "schnet", "cutoff": 0.5, "features": 16},
    }
    grid = np.stack(np.meshgrid(*[np.arange(n_side)] * 3, indexing="ij"), -1).reshape(-1, 3)
    R = (grid + 0.5) * spacing
    return build_energy(desc), init_params(desc, jax.random.PRNGKey(0)), R, box


@pytest.mark.slow
@pytest.mark.parametrize("thermostat", ["langevin", "nose_hoover"])
def test_periodic_neighbour_lists_match_all_pairs_and_grow(thermostat):
    """Replicas in a periodic box over neighbour lists follow the same trajectory as
    over all pairs (minimum image); the lists, empty at the start, overflow as beads
    meet and are reallocated, and the run carries on without a truncated step."""
    import jax

    energy, params, R, box = lattice_liquid()
    s = SimSettings(
        dt=0.002,
        n_steps=1000,
        save_every=100,
        n_replicas=2,
        chunk_steps=200,
        friction=5.0,
        thermostat=thermostat,
    )
    R0 = jnp.asarray(np.stack([R, R + 0.05]), jnp.float32)
    system = CGSystem(energy, params, jnp.full(R.shape[0], 12.0), 2.5, box=box)
    kw = dict(integrator=s[0], run=s[1], key=jax.random.PRNGKey(4), log=io.StringIO())
    f_nl, st_nl = simulate_langevin(replace(system, cutoff=0.5), R0, **kw)
    f_all, st_all = simulate_langevin(system, R0, **kw)
    assert st_nl.stable and st_all.stable
    assert st_nl.neighbor_list["reallocations"] >= 1
    assert st_all.neighbor_list is None
    assert np.all((f_nl >= 0) & (f_nl < box[0]))  # wrapped into the box
    moved = np.abs(f_all[-1] - np.asarray(R0)).max()
    assert moved > 0.3  # beads met: pairs came within the cutoff
    d = f_nl - f_all
    d -= box[0] * np.round(d / box[0])
    # same trajectory to float32 rounding (1e-8 nm measured); a run that ignored
    # the overflow and kept truncated lists was 1.6e-3 nm off
    assert np.abs(d).max() < 1e-5


@pytest.mark.slow
def test_neighbour_lists_grow_by_about_half_per_overflow():
    """JAX MD counts a sparse list's extra capacity per bead: growing by half the
    capacity must add capacity / 2 pairs, not beads x capacity / 2 (which made a
    512-bead water box's lists 256 times too large after its first overflow)."""
    from cgflow.simulate.replicas import Neighbors

    rng = np.random.default_rng(0)
    R = rng.uniform(0, 2.0, (2, 200, 3)).astype(np.float32)
    nb = Neighbors(np.full(3, 2.0), 0.5, 0.1)
    nb.allocate(R)
    first = nb.capacity
    nb.allocate(R, grow=True)
    assert 1.3 * first < nb.capacity < 2.0 * first, (first, nb.stats())
    assert nb.reallocations == 1


@pytest.mark.slow
def test_periodic_box_samples_an_external_cosine_potential():
    """Beads in U = A sum cos(2 pi x / L) in a periodic box: <cos(2 pi x / L)> =
    -I1(beta A) / I0(beta A) exactly; positions stay wrapped in [0, L)."""
    import jax
    from scipy.special import i0, i1

    L, A, kT = 2.0, 1.5, 1.0

    def energy(params, R):
        return A * jnp.sum(jnp.cos(2 * jnp.pi * R[:, 0] / L))

    s = SimSettings(
        dt=0.05,
        n_steps=20_000,
        equilibration_steps=1000,
        save_every=20,
        n_replicas=16,
        friction=1.0,
    )
    R0 = jax.random.uniform(jax.random.PRNGKey(0), (16, 8, 3)) * L
    system = CGSystem(energy, {}, jnp.ones(8), kT, box=[L, L, L])
    frames, status = simulate_langevin(system, R0, *s, jax.random.PRNGKey(1), log=io.StringIO())
    assert status.stable and np.all((frames >= 0) & (frames < L))
    c = np.cos(2 * np.pi * frames[..., 0] / L).mean(axis=(0, 2))  # per replica
    exact = -i1(A / kT) / i0(A / kT)
    sem = c.std() / np.sqrt(c.size)
    assert 4 * sem < 0.03 * abs(exact), "test lacks the power to detect a 3 % error"
    assert abs(c.mean() / exact - 1) < 0.03


def test_periodic_models_take_no_free_space_prior():
    from cgflow.models import build_energy

    desc = {
        "n_beads": 2,
        "dim": 3,
        "kT": 2.5,
        "box": [2.0, 2.0, 2.0],
        "prior": {"type": "harmonic_position"},
        "species_names": ["A"],
        "species_index": [0, 0],
        "network": {"type": "schnet"},
    }
    with pytest.raises(ValueError, match="not defined in a periodic box"):
        build_energy(desc)
    with pytest.raises(ValueError, match="periodic model"):
        build_energy({**desc, "prior": {"type": "none"}, "network": {"type": "mlp"}})
    with pytest.raises(ValueError, match="needs a periodic box"):
        CGSystem(harmonic, {"k": 1.0}, [1.0], 1.0, cutoff=0.5)


@pytest.mark.slow
def test_killed_simulation_resumes_from_its_checkpoint(tmp_path):
    """A run stopped after 2 of 5 chunks and restarted continues from its checkpoint
    and gives the uninterrupted trajectory; other settings start afresh."""
    import jax

    s = SimSettings(dt=0.05, n_steps=1000, equilibration_steps=100, save_every=10,
                    n_replicas=4, chunk_steps=220)  # fmt: skip
    R0 = jnp.zeros((4, 1, 1))
    key = jax.random.PRNGKey(3)
    system = CGSystem(harmonic, {"k": 1.0}, [1.0], 1.0)
    ck = tmp_path / "sim.ckpt"

    def sim(settings, **kw):
        return simulate_langevin(system, R0, *settings, key, log=io.StringIO(), checkpoint=ck,
                                 **kw)  # fmt: skip

    whole, st_whole = simulate_langevin(system, R0, *s, key, log=io.StringIO())
    _, st_part = sim(s, stop_after_chunks=2)
    assert ck.exists() and st_part.steps_done == 440
    resumed, st = sim(s)
    assert st.resumed_at_step == 440 and st.steps_done == st_whole.steps_done == 1100
    np.testing.assert_array_equal(resumed, whole)
    other = SimSettings(dt=0.04, n_steps=1000, equilibration_steps=100, save_every=10,
                        n_replicas=4, chunk_steps=220)  # fmt: skip
    log = io.StringIO()
    simulate_langevin(system, R0, *other, key, log=log, checkpoint=ck)
    assert "other settings; starting afresh" in log.getvalue()


@pytest.mark.slow
def test_replicas_split_over_cpu_devices_give_the_same_frames(tmp_path):
    """With two CPU devices (CGFLOW_CPU_DEVICES=2) the sampler runs half the replicas
    on each, here a periodic box over neighbour lists: the frames are those of one
    device, bit for bit. A count is split over the most devices that share it evenly."""
    import importlib.util
    import os
    import subprocess
    import sys
    from pathlib import Path

    from cgflow.simulate.replicas import replica_split

    assert [replica_split(n, 2) for n in (1, 3, 4, 64)] == [1, 1, 2, 2]
    assert [replica_split(n, 16) for n in (3, 12, 32, 100)] == [3, 12, 16, 10]
    script = Path(__file__).parent / "examples" / "split_replicas.py"
    env = {**os.environ, "CGFLOW_CPU_DEVICES": "2"}
    proc = subprocess.run([sys.executable, str(script), str(tmp_path / "split.npy"), "4"],
                          env=env, capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["2", "2"]  # the replicas' devices, JAX's devices
    split = np.load(tmp_path / "split.npy")
    spec = importlib.util.spec_from_file_location("split_replicas", script)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    import jax

    reps, whole = example.sample(4)  # in this process: JAX's devices as they are (one)
    assert len(reps.state.position.sharding.device_set) == replica_split(4, len(jax.devices()))
    assert whole.shape == (20, 4, 64, 3) and np.isfinite(whole).all()
    assert np.abs(whole[-1] - whole[0]).max() > 1e-3  # the beads moved
    np.testing.assert_array_equal(whole, split)


# status.json files as cgflow wrote them before the status records: a CG run with
# rounds, one of a model whose training diverged, and a generator's draws (each with
# a key this version does not know).
OLD_STATUSES = {
    "rounds": {
        "device": {"backend": "cpu", "device_kind": "cpu", "jax_version": "0.10.2",
                   "n_devices": 1},
        "equilibration_steps_done": 500, "failure": None,
        "frame_order": "replica-major: frame = replica * n_saved + t", "kT": 3.0,
        "model": "/tmp/model", "n_frames_saved": 80, "n_steps_requested": 2500,
        "resumed_at_step": 0,
        "rounds": [{"ci_halfwidth": 0.171, "replicas": 8}, {"ci_halfwidth": 0.149, "replicas": 16},
                   {"ci_halfwidth": 0.115, "replicas": 24}],
        "samples_write_id": "89c979e0dc56415baca1e64b461710df",
        "settings": {"dt": 0.02, "friction": 1.0, "n_replicas": 8, "n_steps": 2000},
        "stable": True, "steps_done": 7500, "steps_per_second": 24313.3,
        "time_per_day_all_replicas": 840266455.5, "time_per_day_per_replica": 105033306.9,
        "time_unit": "reduced", "wall_time_s": 0.308, "queue": "a later cgflow",
    },
    "unusable": {
        "device": {"backend": "cpu", "device_kind": "cpu", "jax_version": "0.10.2",
                   "n_devices": 1},
        "model": "/tmp/re", "reason": "model unusable: re: the CG model blew up while sampling",
        "samples_write_id": "85e3ff2a807344ea9d37f9e114675fa6", "stable": False,
        "steps_done": 0, "wall_time_s": 0.0, "queue": "a later cgflow",
    },
    "generator": {
        "basin_fractions": {"left": 1.0, "right": 0.0},
        "basin_fractions_reweighted": {"left": 1.0, "right": 0.0},
        "bound": -5.4627, "bound_se": 0.00655, "device": {"backend": "cpu"},
        "energy_evaluations": 76800, "ess_fraction": 0.2528, "exact_log_z": 5.7519,
        "gap": 0.2892, "gap_ci95": [0.2764, 0.3021], "generator": True,
        "log_z_estimate": 5.5764, "model": "/tmp/model", "n_samples": 4000, "reason": None,
        "samples_write_id": "a862c269eebd4dd190aab8784543b01d", "stable": True,
        "steps_done": 0, "wall_time_s": 3.0878, "queue": "a later cgflow",
    },
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(OLD_STATUSES))
def test_a_status_json_of_before_the_records_reads_and_writes_back_unchanged(kind):
    """Each old status.json loads as its record (a generator's as GeneratorStatus),
    keeps the key it does not know and writes back the same dict, but for the
    ``failure: null`` every simulation's status now states."""
    from cgflow.simulate.status import GeneratorStatus, SimulationStatus, read_status

    old = OLD_STATUSES[kind]
    status = read_status(old, f"{kind}/status.json")
    assert isinstance(status, GeneratorStatus if kind == "generator" else SimulationStatus)
    assert status.extra["queue"] == "a later cgflow"
    back = status.to_json()
    assert back == ({**old, "failure": None} if kind == "unusable" else old)
    assert read_status(back).to_json() == back


def test_a_status_json_is_refused_naming_what_it_lacks():
    from cgflow.simulate.status import read_status

    with pytest.raises(ValueError, match="x/status.json: not a status.json .*'stable'"):
        read_status({"steps_done": 3}, "x/status.json")
    draws = {k: v for k, v in OLD_STATUSES["generator"].items() if k != "bound"}
    with pytest.raises(
        ValueError, match=r"g/status.json: a generator's status without \['bound'\]"
    ):
        read_status(draws, "g/status.json")


def test_the_status_says_why_a_run_is_unstable_and_what_a_generator_measured():
    from cgflow.simulate.status import Failure, read_status

    blew = read_status({"stable": False, "failure": {"step": 40, "replicas": [1, 3],
                                                     "reason": "non-finite position"}})  # fmt: skip
    assert blew.failure == Failure(40, (1, 3), "non-finite position")
    assert blew.why_unstable == "non-finite position"
    assert read_status(OLD_STATUSES["unusable"]).why_unstable.startswith("model unusable")
    assert read_status({"stable": False}).why_unstable == "blew up"
    assert read_status(OLD_STATUSES["rounds"]).why_unstable is None
    metrics, cis = read_status(OLD_STATUSES["generator"]).metrics()
    assert metrics == {
        "ess_fraction": 0.2528,
        "bound_gap": 0.2892,
        "p_left": 1.0,
        "p_right": 0.0,
        "p_left_reweighted": 1.0,
        "p_right_reweighted": 0.0,
    }
    assert cis == {"bound_gap": (0.2764, 0.3021)}
