"""NVT dynamics of the CG model with JAX MD: BAOAB Langevin or a Nose-Hoover chain.

Replicas are vmapped; the trajectory advances in chunks of ``lax.scan`` steps,
and between chunks every replica is checked for non-finite or runaway positions.
A blow-up ends the run and is recorded (``stable: false``) rather than raised:
an unstable model at a given time step is a result.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax_md import simulate, space

from cgflow.config import require_positive

THERMOSTATS = ("langevin", "nose_hoover")


@dataclass(frozen=True)
class SimSettings:
    """CG simulation settings (time in the system's unit, kT in its energy unit).

    Attributes:
      dt: time step.
      n_steps: production steps per replica (after equilibration).
      equilibration_steps: steps discarded before saving.
      save_every: steps between saved frames.
      n_replicas: independent replicas run in parallel.
      friction: Langevin friction coefficient gamma (1 / time).
      max_position: a replica with any |coordinate| above this has blown up.
      chunk_steps: steps between blow-up checks and progress reports.
      max_bond_stretch: a bond longer than this multiple of its reference length
        (given to the simulator as ``bonds``) has blown up.
      thermostat: ``langevin`` (BAOAB; ``friction`` is gamma) or ``nose_hoover``
        (a Nose-Hoover chain, JAX MD's defaults; ``friction`` is 1 / tau, the
        coupling time of the chain).
      min_pair_fraction: two beads closer than this fraction of their closest
        reference distance (given as ``contacts``) overlap: a blow-up.
    """

    dt: float
    n_steps: int
    equilibration_steps: int = 0
    save_every: int = 10
    n_replicas: int = 16
    friction: float = 1.0
    max_position: float = 1e3
    chunk_steps: int = 5000
    max_bond_stretch: float = 2.0
    min_pair_fraction: float = 0.5
    thermostat: str = "langevin"

    def __post_init__(self):
        if self.thermostat not in THERMOSTATS:
            raise ValueError(
                f"simulation.thermostat: unknown {self.thermostat!r}; allowed: {list(THERMOSTATS)}"
            )
        names = (
            "dt",
            "friction",
            "max_position",
            "n_steps",
            "save_every",
            "n_replicas",
            "chunk_steps",
        )
        require_positive(self, "simulation", names)
        if self.equilibration_steps < 0:
            raise ValueError("simulation.equilibration_steps must be >= 0")


def make_integrator(energy_fn, kT, settings: SimSettings, n_beads: int):
    """JAX MD ``(init_fn, apply_fn)`` for ``energy_fn(params, R)`` in free space.

    ``apply_fn(state, params=p)`` takes the model parameters at every step, so one
    compiled integrator serves a model whose parameters change (RE training).
    """
    _, shift = space.free()
    energy = lambda R, params: energy_fn(params, R)  # noqa: E731
    s = settings
    if s.thermostat == "langevin":
        return simulate.nvt_langevin(
            energy, shift, dt=s.dt, kT=kT, gamma=s.friction, center_velocity=n_beads > 1
        )
    # Nose-Hoover chain; friction is read as 1 / tau
    return simulate.nvt_nose_hoover(energy, shift, dt=s.dt, kT=kT, tau=1.0 / s.friction)


def simulate_langevin(
    energy_fn,
    params,
    R0,
    masses,
    kT,
    settings: SimSettings,
    key,
    log=None,
    bonds=None,
    contacts=None,
):
    """Run ``settings.n_replicas`` Langevin replicas of ``energy_fn(params, R)``.

    Args:
      energy_fn: pure energy, R of shape (beads, dim).
      params: its parameters.
      R0: start positions, (n_replicas, beads, dim).
      masses: bead masses, (beads,).
      kT: thermal energy.
      settings: SimSettings.
      key: JAX PRNG key.
      bonds: optional (pairs (n, 2), reference lengths (n,)) checked for stretching.
      contacts: optional (pairs (n, 2), closest reference distances (n,)) checked
        for overlap.

    Returns:
      (frames, status): frames of shape (n_saved, n_replicas, beads, dim) holding
      production frames only; status is a JSON-ready dict (stable, steps_done,
      wall time, throughput).
    """
    log = log if log is not None else sys.stderr
    s = settings
    R0 = jnp.asarray(R0, jnp.float32)
    if R0.shape[0] != s.n_replicas:
        raise ValueError(f"need {s.n_replicas} start configurations, got {R0.shape[0]}")
    init_fn, apply_fn = make_integrator(energy_fn, kT, s, n_beads=R0.shape[1])
    masses = jnp.asarray(masses, jnp.float32)
    keys = jax.random.split(key, s.n_replicas)
    state = jax.vmap(lambda k, R: init_fn(k, R, mass=masses, params=params))(keys, R0)
    step = jax.vmap(lambda st, p: apply_fn(st, params=p), (0, None))

    chunk_saves = max(1, s.chunk_steps // s.save_every)

    def advance(state, params, n):
        return jax.lax.fori_loop(0, n, lambda i, st: step(st, params), state)

    @jax.jit
    def run_chunk(state, params, n_frames):
        """Advance ``n_frames`` save intervals (<= chunk_saves); frames land in a buffer."""
        buf = jnp.zeros((chunk_saves,) + state.position.shape, state.position.dtype)

        def body(i, carry):
            st, buf = carry
            st = advance(st, params, s.save_every)
            return st, buf.at[i].set(st.position)

        return jax.lax.fori_loop(0, n_frames, body, (state, buf))

    pairs, lengths = (np.asarray(bonds[0]), np.asarray(bonds[1])) if bonds else (None, None)
    close, closest = (
        (np.asarray(contacts[0]), np.asarray(contacts[1])) if contacts else (None, None)
    )

    def healthy(positions):
        """Per replica: None when fine, else the reason it blew up."""
        flat = positions.reshape(positions.shape[0], -1)
        reasons = np.full(positions.shape[0], None, dtype=object)
        if pairs is not None and len(pairs):
            d = np.linalg.norm(positions[:, pairs[:, 0]] - positions[:, pairs[:, 1]], axis=-1)
            stretched = np.any(d > s.max_bond_stretch * lengths, axis=1)
            reasons[stretched] = f"bond longer than {s.max_bond_stretch} x its length"
        if close is not None and len(close):
            d = np.linalg.norm(positions[:, close[:, 0]] - positions[:, close[:, 1]], axis=-1)
            overlap = np.any(d < s.min_pair_fraction * closest, axis=1)
            reasons[overlap] = f"beads closer than {s.min_pair_fraction} x their closest distance"
        runaway = ~np.all(np.abs(flat) < s.max_position, axis=1)
        reasons[runaway] = f"position beyond {s.max_position}"
        reasons[~np.all(np.isfinite(flat), axis=1)] = "non-finite position"
        return reasons

    # Equilibration is a whole number of save intervals whose frames are dropped.
    n_eq = -(-s.equilibration_steps // s.save_every)
    n_saves = s.n_steps // s.save_every
    n_total = (n_eq + n_saves) * s.save_every
    status = {
        "stable": True,
        "failure": None,
        "steps_done": 0,
        "n_steps_requested": n_total,
        "equilibration_steps_done": n_eq * s.save_every,
        "settings": asdict(s),
        "kT": float(kT),
    }
    t0 = time.perf_counter()
    frames = []
    done_frames = 0
    while done_frames < n_eq + n_saves and status["stable"]:
        n = min(chunk_saves, n_eq + n_saves - done_frames)
        state, buf = run_chunk(state, params, n)
        first = max(0, n_eq - done_frames)  # frames of this chunk still in equilibration
        done_frames += n
        if _check(state.position, healthy, done_frames * s.save_every, status) and first < n:
            frames.append(np.asarray(buf[first:n]))
        _progress(done_frames * s.save_every, n_total, t0, log)
    done = done_frames * s.save_every
    wall = time.perf_counter() - t0
    status["steps_done"] = done
    status["wall_time_s"] = wall
    status["steps_per_second"] = done / wall if wall > 0 else math.nan
    status["time_per_day_per_replica"] = status["steps_per_second"] * s.dt * 86400.0
    status["time_per_day_all_replicas"] = status["time_per_day_per_replica"] * s.n_replicas
    status["n_frames_saved"] = int(sum(f.shape[0] for f in frames))
    shape = (0, s.n_replicas) + tuple(R0.shape[1:])
    return (np.concatenate(frames) if frames else np.zeros(shape, np.float32)), status


def _check(positions, healthy, step, status) -> bool:
    reasons = healthy(np.asarray(positions))
    bad = np.flatnonzero(reasons != None)  # noqa: E711 (object array)
    if bad.size == 0:
        return True
    status["stable"] = False
    status["failure"] = {
        "step": int(step),
        "replicas": bad.tolist(),
        "reason": str(reasons[bad[0]]),
    }
    return False


def _progress(done, total, t0, log):
    rate = done / max(time.perf_counter() - t0, 1e-9)
    print(
        f"simulate: {done}/{total} steps ({100.0 * done / total:5.1f}%), {rate:,.0f} steps/s",
        file=log,
        flush=True,
    )
