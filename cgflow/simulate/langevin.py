"""NVT dynamics of the CG model: many replicas in chunks, blow-up checks, checkpoints.

Replicas run under one JAX MD integrator (BAOAB Langevin or a Nose-Hoover chain,
:mod:`cgflow.simulate.replicas`); the trajectory advances in chunks, and between
chunks every replica is checked for non-finite or runaway positions, stretched bonds
and overlapping beads. A blow-up ends the run and is recorded (``stable: false``)
rather than raised: an unstable model at a given time step is a result.

With a ``checkpoint`` file the state of the replicas and the frames so far are
written after every chunk; a run restarted with the same model, start frames and
settings continues from there, and one with other settings starts afresh and says so.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cgflow import checkpoint as ckpt
from cgflow.jaxmd import space
from cgflow.simulate.replicas import Periodic, replica_runner
from cgflow.simulate.settings import IntegratorSettings, RunSettings
from cgflow.simulate.status import Failure, SimulationStatus, speed


@dataclass(frozen=True)
class CGSystem:
    """What CG dynamics sample, and what a blow-up is measured against.

    Attributes:
      energy_fn: pure energy ``energy_fn(params, R)``, R of shape (beads, dim).
      params: its parameters.
      masses: bead masses, (beads,).
      kT: thermal energy.
      box: periodic box lengths (dim,), or None for free space. Distances in the
        blow-up checks are then minimum-image ones.
      cutoff: with a box, the model's interaction range: each replica carries a
        JAX MD neighbour list (pairs within cutoff + ``run.neighbor_skin``).
      bonds: optional (pairs (n, 2), reference lengths (n,)) checked for stretching.
      contacts: optional (pairs (n, 2), closest reference distances (n,)) checked
        for overlap.
    """

    energy_fn: Callable
    params: Any
    masses: Any
    kT: float
    box: Any = None
    cutoff: float | None = None
    bonds: tuple | None = None
    contacts: tuple | None = None

    def __post_init__(self):
        if self.cutoff is not None and self.box is None:
            raise ValueError("a neighbour-list cutoff needs a periodic box")


def simulate_langevin(
    system: CGSystem,
    R0,
    integrator: IntegratorSettings,
    run: RunSettings,
    key,
    log=None,
    checkpoint: str | Path | None = None,
    stop_after_chunks: int | None = None,
):
    """Run ``run.n_replicas`` replicas of ``system``.

    Args:
      system: the model, its masses and kT, its box and what its checks watch.
      R0: start positions, (n_replicas, beads, dim).
      integrator: IntegratorSettings (dt, thermostat, friction).
      run: RunSettings (length, replicas, saving, blow-up checks).
      key: JAX PRNG key.
      checkpoint: file written after every chunk and resumed from.
      stop_after_chunks: stop after this many chunks, leaving the checkpoint (tests).

    Returns:
      (frames, status): frames of shape (n_saved, n_replicas, beads, dim) holding
      production frames only; status is a :class:`SimulationStatus` (stable, steps done, wall
      time, throughput, whether it resumed).
    """
    log = log if log is not None else sys.stderr
    s = run
    R0 = jnp.asarray(R0, jnp.float32)
    if R0.shape[0] != s.n_replicas:
        raise ValueError(f"need {s.n_replicas} start configurations, got {R0.shape[0]}")
    chunk_saves = max(1, s.chunk_steps // s.save_every)
    m = system
    periodic = None if m.box is None else Periodic(m.box, m.cutoff, s.neighbor_skin)
    runner = replica_runner(m.energy_fn, m.kT, integrator, R0.shape[1], s.save_every,
                            chunk_saves, periodic)  # fmt: skip
    healthy = health_check(s, m.bonds, m.contacts, m.box)
    # Equilibration is a whole number of save intervals whose frames are dropped.
    n_eq = -(-s.equilibration_steps // s.save_every)
    n_total = n_eq + s.n_steps // s.save_every
    reps = runner.init(key, R0, m.masses, m.params)
    fp = ckpt.fingerprint(
        integrator.to_dict(), s.to_dict(), float(m.kT), m.box, m.cutoff, m.bonds, m.contacts,
        ckpt.array_digest(m.params, R0, m.masses, key),
    )  # fmt: skip
    fixed = {"n_steps_requested": n_total * s.save_every,
             "equilibration_steps_done": n_eq * s.save_every,
             "settings": {**integrator.to_dict(), **s.to_dict()}, "kT": float(m.kT)}  # fmt: skip
    reps, frames, done, wall0 = _resume(checkpoint, runner, reps, fp, s.save_every, log)
    resumed_at = done * s.save_every
    t0 = time.perf_counter() - wall0
    chunks, failure = 0, None
    while done < n_total and failure is None:
        n = min(chunk_saves, n_total - done)
        reps, buf = runner.record(reps, m.params, n)
        first = max(0, n_eq - done)  # frames of this chunk still in equilibration
        done += n
        failure = _check(reps.state.position, healthy, done * s.save_every)
        if failure is None and first < n:
            frames.append(np.asarray(buf[first:n]))
        _progress(done * s.save_every, n_total * s.save_every, t0, log)
        chunks += 1
        if checkpoint is not None and failure is None and done < n_total:
            kept = np.concatenate(frames) if frames else np.zeros((0, *R0.shape), np.float32)
            meta = {"fingerprint": fp, "done_frames": done, "wall_time_s": time.perf_counter() - t0}
            ckpt.save(checkpoint, reps, meta, {"frames": kept})
        if stop_after_chunks is not None and chunks >= stop_after_chunks:
            break
    status = SimulationStatus(
        stable=failure is None, failure=failure, resumed_at_step=resumed_at,
        neighbor_list=runner.neighbors.stats() if runner.neighbors else None,
        n_frames_saved=int(sum(f.shape[0] for f in frames)),
        **speed(done * s.save_every, time.perf_counter() - t0, integrator.dt, s.n_replicas),
        **fixed,
    )  # fmt: skip
    shape = (0, s.n_replicas) + tuple(R0.shape[1:])
    return (np.concatenate(frames) if frames else np.zeros(shape, np.float32)), status


def _resume(checkpoint, runner, reps, fp, save_every: int, log):
    """``(replicas, frames, frames done, wall time so far)`` from ``checkpoint`` where it
    holds a run with fingerprint ``fp``, else the fresh start."""
    loaded = ckpt.load(checkpoint, reps, fp, log, "simulate")
    if loaded is None:
        return reps, [], 0, 0.0
    reps, meta, arrays = loaded
    done = meta["done_frames"]
    frames = [arrays["frames"]] if arrays["frames"].shape[0] else []
    if runner.neighbors:  # lists are rebuilt from the positions
        reps = reps._replace(nbrs=runner.neighbors.allocate(reps.state.position))
    print(f"simulate: resumed from {checkpoint} at step {done * save_every}", file=log)
    return reps, frames, done, meta["wall_time_s"]


def health_check(run: RunSettings, bonds=None, contacts=None, box=None):
    """``healthy(positions) -> reasons``: per replica None when fine, else why it blew
    up. Distances come from a JAX MD ``space`` displacement (minimum image in a box)."""
    displacement, _ = space.free() if box is None else space.periodic(jnp.asarray(box))
    metric = jax.jit(jax.vmap(jax.vmap(space.metric(displacement), (0, 0)), (0, 0)))

    def distance(positions, ij):
        ij = np.asarray(ij)
        return np.asarray(metric(positions[:, ij[:, 0]], positions[:, ij[:, 1]]))

    watch = []
    if bonds is not None and len(bonds[0]):
        pairs, lengths = np.asarray(bonds[0]), np.asarray(bonds[1])
        too_long = run.max_bond_stretch * lengths
        reason = f"bond longer than {run.max_bond_stretch} x its length"
        watch.append(lambda p: (np.any(distance(p, pairs) > too_long, axis=1), reason))
    if contacts is not None and len(contacts[0]):
        close, closest = np.asarray(contacts[0]), np.asarray(contacts[1])
        too_close = run.min_pair_fraction * closest
        reason = f"beads closer than {run.min_pair_fraction} x their closest distance"
        watch.append(lambda p: (np.any(distance(p, close) < too_close, axis=1), reason))

    def healthy(positions):
        positions = jnp.asarray(positions)
        flat = np.asarray(positions).reshape(positions.shape[0], -1)
        reasons = np.full(positions.shape[0], None, dtype=object)
        for test in watch:
            bad, reason = test(positions)
            reasons[bad] = reason
        reasons[~np.all(np.abs(flat) < run.max_position, axis=1)] = (
            f"position beyond {run.max_position}"
        )
        reasons[~np.all(np.isfinite(flat), axis=1)] = "non-finite position"
        return reasons

    return healthy


def _check(positions, healthy, step) -> Failure | None:
    """The blow-up at ``step``, if a replica fails a check (None when all are healthy)."""
    reasons = healthy(np.asarray(positions))
    bad = np.flatnonzero(reasons != None)  # noqa: E711 (object array)
    if bad.size == 0:
        return None
    return Failure(step=int(step), replicas=tuple(bad.tolist()), reason=str(reasons[bad[0]]))


def _progress(done, total, t0, log):
    rate = done / max(time.perf_counter() - t0, 1e-9)
    print(
        f"simulate: {done}/{total} steps ({100.0 * done / total:5.1f}%), {rate:,.0f} steps/s",
        file=log,
        flush=True,
    )
