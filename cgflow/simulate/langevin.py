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
      neighbor_skin: periodic systems only: the neighbour list holds pairs within
        the model's cutoff plus this distance, and is rebuilt once a bead has
        moved half of it.
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
    neighbor_skin: float = 0.1

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
            "neighbor_skin",
        )
        require_positive(self, "simulation", names)
        if self.equilibration_steps < 0:
            raise ValueError("simulation.equilibration_steps must be >= 0")


def make_integrator(energy_fn, kT, settings: SimSettings, n_beads: int, box=None):
    """JAX MD ``(init_fn, apply_fn)`` for ``energy_fn(params, R)``.

    ``apply_fn(state, params=p)`` takes the model parameters at every step, so one
    compiled integrator serves a model whose parameters change (RE training). With
    a periodic ``box`` positions are wrapped into it, and further keywords of
    ``apply_fn`` (``neighbor=``) reach ``energy_fn``.
    """
    _, shift = space.free() if box is None else space.periodic(jnp.asarray(box))
    energy = lambda R, params, **kw: energy_fn(params, R, **kw)  # noqa: E731
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
    box=None,
    cutoff=None,
):
    """Run ``settings.n_replicas`` replicas of ``energy_fn(params, R)``.

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
      box: periodic box lengths (dim,), or None for free space. Distances in the
        checks above are then minimum-image ones.
      cutoff: with a box, the model's interaction range: each replica carries a
        JAX MD neighbour list (sparse, pairs within cutoff + neighbor_skin),
        passed to ``energy_fn(params, R, neighbor=...)`` and updated every step.
        A list that overflows is reallocated larger and the chunk run again from
        its start, so no step ever uses a truncated list. Without a cutoff the
        energy sees all pairs.

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
    if cutoff is not None and box is None:
        raise ValueError("a neighbour-list cutoff needs a periodic box")
    init_fn, apply_fn = make_integrator(energy_fn, kT, s, n_beads=R0.shape[1], box=box)
    masses = jnp.asarray(masses, jnp.float32)
    keys = jax.random.split(key, s.n_replicas)
    neighbors = None if cutoff is None else _Neighbors(box, cutoff, s.neighbor_skin)
    nbrs = neighbors.allocate(R0) if neighbors else None
    kw = (lambda nb: {"neighbor": nb}) if neighbors else (lambda nb: {})
    state = jax.vmap(lambda k, R, nb: init_fn(k, R, mass=masses, params=params, **kw(nb)))(
        keys, R0, nbrs
    )

    def one_step(st, nb, params):
        st = apply_fn(st, params=params, **kw(nb))
        return st, (nb.update(st.position) if nb is not None else None)

    step = jax.vmap(one_step, (0, 0, None))
    chunk_saves = max(1, s.chunk_steps // s.save_every)

    def advance(carry, params, n):
        return jax.lax.fori_loop(0, n, lambda i, c: step(*c, params), carry)

    @jax.jit
    def run_chunk(state, nbrs, params, n_frames):
        """Advance ``n_frames`` save intervals (<= chunk_saves); frames land in a buffer."""
        buf = jnp.zeros((chunk_saves,) + state.position.shape, state.position.dtype)

        def body(i, carry):
            st, nb, buf = carry
            st, nb = advance((st, nb), params, s.save_every)
            return st, nb, buf.at[i].set(st.position)

        return jax.lax.fori_loop(0, n_frames, body, (state, nbrs, buf))

    pairs, lengths = (np.asarray(bonds[0]), np.asarray(bonds[1])) if bonds else (None, None)
    close, closest = (
        (np.asarray(contacts[0]), np.asarray(contacts[1])) if contacts else (None, None)
    )

    lengths_box = None if box is None else np.asarray(box, np.float64)

    def distance(positions, ij):
        d = positions[:, ij[:, 0]] - positions[:, ij[:, 1]]
        if lengths_box is not None:  # minimum image
            d = d - lengths_box * np.round(d / lengths_box)
        return np.linalg.norm(d, axis=-1)

    def healthy(positions):
        """Per replica: None when fine, else the reason it blew up."""
        flat = positions.reshape(positions.shape[0], -1)
        reasons = np.full(positions.shape[0], None, dtype=object)
        if pairs is not None and len(pairs):
            d = distance(positions, pairs)
            stretched = np.any(d > s.max_bond_stretch * lengths, axis=1)
            reasons[stretched] = f"bond longer than {s.max_bond_stretch} x its length"
        if close is not None and len(close):
            d = distance(positions, close)
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
    if neighbors:
        status["neighbor_list"] = neighbors.status
    t0 = time.perf_counter()
    frames = []
    done_frames = 0
    while done_frames < n_eq + n_saves and status["stable"]:
        n = min(chunk_saves, n_eq + n_saves - done_frames)
        out = run_chunk(state, nbrs, params, n)
        while neighbors and neighbors.overflowed(out[1]):  # redo the chunk, larger lists
            nbrs = neighbors.allocate(state.position, grow=True)
            out = run_chunk(state, nbrs, params, n)
        state, nbrs, buf = out
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


class _Neighbors:
    """Sparse JAX MD neighbour lists for a batch of replicas, one capacity for all."""

    def __init__(self, box, cutoff: float, skin: float):
        from jax_md import partition

        box = jnp.asarray(box, jnp.float32)
        displacement, _ = space.periodic(box)
        self._fn = partition.neighbor_list(
            displacement,
            box,
            float(cutoff),
            dr_threshold=float(skin),
            format=partition.NeighborListFormat.Sparse,
        )
        self.status = {"cutoff": float(cutoff), "skin": float(skin), "reallocations": 0}
        self._extra = 0

    def allocate(self, R, grow: bool = False):
        """Lists for replicas R (n, beads, dim), sized for the replica with most pairs
        (JAX MD's 25 % margin); ``grow`` after an overflow adds half the capacity
        again on top, more with every overflow."""
        R = jnp.asarray(R)
        if grow:
            self.status["reallocations"] += 1
            self._extra = max(2 * self._extra, self.status["capacity"] // 2, 8)
        lists = [self._fn.allocate(r, extra_capacity=self._extra) for r in R]
        largest = max(lists, key=lambda nb: nb.idx.shape[-1])
        self.status["capacity"] = int(largest.idx.shape[-1])
        return jax.vmap(largest.update)(R)

    @staticmethod
    def overflowed(nbrs) -> bool:
        return bool(np.any(np.asarray(nbrs.did_buffer_overflow)))


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
