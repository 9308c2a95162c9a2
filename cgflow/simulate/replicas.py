"""Replicas of a CG model under one JAX MD integrator: the runner that the CG
simulator and RE's sampler share.

``replica_runner`` returns pure, jitted functions over a batch of replicas (the
integrator state is vmapped). ``apply_fn`` takes the model parameters at every step,
so one compiled runner serves a model whose parameters change (RE training). In a
periodic box each replica may carry a sparse JAX MD neighbour list; a stretch of
dynamics whose lists overflowed is run again from its start with larger lists, so no
step ever uses a truncated list.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from cgflow.jaxmd import partition, simulate, space
from cgflow.models.energy import sampling_form
from cgflow.runtime import sampling_compiler_options
from cgflow.simulate.settings import IntegratorSettings


def make_integrator(energy_fn, kT, integrator: IntegratorSettings, n_beads: int, box=None):
    """JAX MD ``(init_fn, apply_fn)`` for ``energy_fn(params, R, **kw)``.

    With a periodic ``box`` positions are wrapped into it, and further keywords of
    ``apply_fn`` (``neighbor=``) reach ``energy_fn``.
    """
    _, shift = space.free() if box is None else space.periodic(jnp.asarray(box))
    energy = lambda R, params, **kw: energy_fn(params, R, **kw)  # noqa: E731
    s = integrator
    if s.thermostat == "langevin":
        return simulate.nvt_langevin(
            energy, shift, dt=s.dt, kT=kT, gamma=s.friction, center_velocity=n_beads > 1
        )
    if s.thermostat == "brownian":
        init_fn, apply_fn = simulate.brownian(energy, shift, dt=s.dt, kT=kT, gamma=s.friction)
        # its init takes no energy keywords (there are no forces to evaluate)
        return (lambda key, R, mass, **kw: init_fn(key, R, mass)), apply_fn
    # Nose-Hoover chain; friction is read as 1 / tau
    return simulate.nvt_nose_hoover(energy, shift, dt=s.dt, kT=kT, tau=1.0 / s.friction)


MAX_REALLOCATIONS = 12
"""Overflows after which the lists stop growing (a collapse, not a liquid)."""


class Neighbors:
    """JAX MD neighbour lists (each pair once) for a batch of replicas, one capacity for all."""

    def __init__(self, box, cutoff: float, skin: float):
        box = jnp.asarray(box, jnp.float32)
        displacement, _ = space.periodic(box)
        self._fn = partition.neighbor_list(
            displacement,
            box,
            float(cutoff),
            dr_threshold=float(skin),
            format=partition.NeighborListFormat.OrderedSparse,  # each pair once
        )
        self._displacement = jax.vmap(jax.vmap(displacement))
        self._half_skin_sq = (0.5 * float(skin)) ** 2
        self.cutoff, self.skin = float(cutoff), float(skin)
        self.capacity, self.reallocations = 0, 0
        self._extra = 0
        self._one = None  # a list at the capacity in use

    def allocate(self, R, grow: bool = False):
        """Lists for replicas R (n, beads, dim), sized for the replica with most pairs
        (JAX MD's 25 % margin); ``grow`` after an overflow adds half the capacity
        again on top, more with every overflow.

        JAX MD counts the extra capacity of a sparse list per bead (it adds
        beads x extra pairs) and adds the same number to every cell of its cell list,
        so the extra is kept per bead: half the capacity spread over the beads."""
        R = jnp.asarray(R)
        if grow:
            self.reallocations += 1
            if self.reallocations > MAX_REALLOCATIONS:
                raise RuntimeError(
                    f"neighbour lists overflowed more than {MAX_REALLOCATIONS} times "
                    f"(capacity {self.capacity} pairs): the replicas are "
                    "collapsing or blowing up"
                )
            per_bead = -(-self.capacity // (2 * R.shape[1]))
            self._extra = max(2 * self._extra, per_bead, 1)
        lists = [self._fn.allocate(r, extra_capacity=self._extra) for r in R]
        largest = max(lists, key=lambda nb: nb.idx.shape[-1])
        self.capacity = int(largest.idx.shape[-1])
        self._one = largest
        return jax.vmap(largest.update)(R)

    def stats(self) -> dict:
        """The lists' cutoff, skin, capacity (pairs) and reallocations so far."""
        return {"cutoff": self.cutoff, "skin": self.skin, "reallocations": self.reallocations,
                "capacity": self.capacity}  # fmt: skip

    def moved_far(self, R, reference):
        """Whether a bead of any replica moved more than half the skin since its
        list was built (JAX MD's criterion for rebuilding), R and reference
        (replicas, beads, dim)."""
        d = self._displacement(R, reference)
        return jnp.max(jnp.sum(d**2, axis=-1)) > self._half_skin_sq

    def refresh(self, R):
        """Lists for replicas R at the capacity in use (allocated on the first call),
        so that programs compiled for it serve again; a list too small for R is
        flagged as overflowed, which the runner answers by growing (see
        :func:`_redo_on_overflow`)."""
        if self._one is None:
            return self.allocate(R)
        return jax.vmap(self._one.update)(jnp.asarray(R))

    @staticmethod
    def overflowed(nbrs) -> bool:
        return bool(np.any(np.asarray(nbrs.did_buffer_overflow)))


class Replicas(NamedTuple):
    """A batch of replicas: the vmapped integrator state and their neighbour lists.

    Attributes:
      state: JAX MD integrator state, every leaf with a leading replica axis
        (positions (n_replicas, beads, dim)).
      nbrs: sparse neighbour lists, one per replica, or None (all pairs).
    """

    state: Any
    nbrs: Any


class Runner(NamedTuple):
    """The functions of :func:`replica_runner`.

    Attributes:
      init: ``init(key, R0, masses, params) -> Replicas``; R0 (n_replicas, beads, dim).
      advance: ``advance(replicas, params, n_steps) -> Replicas``.
      record: ``record(replicas, params, n_frames) -> (Replicas, frames)``: runs
        ``n_frames`` save intervals; frames (n_frames, n_replicas, beads, dim).
      neighbors: the neighbour-list manager (None without a cutoff).
    """

    init: Any
    advance: Any
    record: Any
    neighbors: Neighbors | None


@dataclass(frozen=True)
class Periodic:
    """A periodic box and, for neighbour lists, the model's interaction range.

    Attributes:
      box: box lengths (dim,).
      cutoff: the model's interaction range: replicas carry neighbour lists of pairs
        within cutoff + ``skin`` (None: no lists, every pair).
      skin: added to the cutoff; a list is rebuilt once a bead has moved half of it.
    """

    box: Any
    cutoff: float | None = None
    skin: float = 0.1


def replica_runner(
    energy_fn,
    kT: float,
    integrator: IntegratorSettings,
    n_beads: int,
    save_every: int,
    max_frames: int,
    periodic: Periodic | None = None,
) -> Runner:
    """Replicas of ``energy_fn(params, R)`` under ``integrator`` at ``kT``.

    Args:
      energy_fn: the model energy; with a cutoff it takes ``neighbor=``.
      kT: thermal energy.
      integrator: IntegratorSettings (dt, thermostat, friction).
      n_beads: beads per replica.
      save_every: steps between recorded frames.
      max_frames: the most frames one ``record`` call returns (its buffer size:
        one compiled program serves every shorter call).
      periodic: the box (and neighbour-list range) of a periodic model; None for
        free space.
    """
    box = None if periodic is None else periodic.box
    cutoff = None if periodic is None else periodic.cutoff
    form = sampling_form(energy_fn)  # a SchNet's filters as tables: params -> prepared
    init_fn, apply_fn = make_integrator(form.energy_fn, kT, integrator, n_beads, box=box)
    prepare = jax.jit(form.prepare)
    neighbors = None if cutoff is None else Neighbors(box, cutoff, periodic.skin)
    kw = (lambda nb: {"neighbor": nb}) if neighbors else (lambda nb: {})
    steps = _stepper(apply_fn, neighbors, kw)
    compile_with = sampling_compiler_options()

    def _advance(state, nbrs, params, n_steps):
        return steps((state, nbrs), form.prepare(params), n_steps)

    def _record(state, nbrs, params, n_frames):
        buf = jnp.zeros((max_frames,) + state.position.shape, state.position.dtype)
        params = form.prepare(params)

        def body(i, carry):
            st, nb, buf = carry
            st, nb = steps((st, nb), params, save_every)
            return st, nb, buf.at[i].set(st.position)

        return jax.lax.fori_loop(0, n_frames, body, (state, nbrs, buf))

    advance_program = _programs(_advance, compile_with, frames_out=False)
    record_program = _programs(_record, compile_with, frames_out=True)

    def init(key, R0, masses, params) -> Replicas:
        R0 = jnp.asarray(R0, jnp.float32)
        masses = jnp.asarray(masses, jnp.float32)
        nbrs = neighbors.allocate(R0) if neighbors else None
        keys = jax.random.split(key, R0.shape[0])
        params = prepare(params)
        state = jax.vmap(lambda k, R, nb: init_fn(k, R, mass=masses, params=params, **kw(nb)))(
            keys, R0, nbrs
        )
        return Replicas(state, nbrs)

    def advance(reps: Replicas, params, n_steps: int) -> Replicas:
        fn = advance_program(reps.state.position.shape[0])
        return Replicas(*_redo_on_overflow(neighbors, fn, reps, params, n_steps))

    def record(reps: Replicas, params, n_frames: int):
        if n_frames > max_frames:
            raise ValueError(f"record: {n_frames} frames exceed the buffer of {max_frames}")
        fn = record_program(reps.state.position.shape[0])
        state, nbrs, buf = _redo_on_overflow(neighbors, fn, reps, params, n_frames)
        return Replicas(state, nbrs), buf[:n_frames]

    return Runner(init, advance, record, neighbors)


def _stepper(apply_fn, neighbors: Neighbors | None, kw):
    """``steps((states, lists), params, n)``: n steps of every replica, their neighbour
    lists (None: none) rebuilt when due."""
    move = jax.vmap(lambda st, nb, params: apply_fn(st, params=params, **kw(nb)), (0, 0, None))
    moved_far = None if neighbors is None else neighbors.moved_far

    def step(st, nb, params):
        st = move(st, nb, params)
        if nb is None:
            return st, None
        # JAX MD's update decides per list whether to rebuild with a lax.cond, which
        # vmap over replicas turns into a select that rebuilds every list at every
        # step; one unbatched cond over all replicas rebuilds only when one is due
        # (at 512 beads a rebuild costs more than the force)
        nb = jax.lax.cond(moved_far(st.position, nb.reference_position),
                          lambda: jax.vmap(lambda l, R: l.update(R))(nb, st.position),
                          lambda: nb)  # fmt: skip
        return st, nb

    def steps(carry, params, n):
        return jax.lax.fori_loop(0, n, lambda i, c: step(*c, params), carry)

    return steps


REPLICA_AXIS = "replica"


def _programs(fn, compiler_options: dict, frames_out: bool):
    """``n_replicas -> _program(fn, n_replicas, ...)``, each compiled once."""
    return cache(lambda n_replicas: _program(fn, n_replicas, compiler_options, frames_out))


def _program(fn, n_replicas: int, compiler_options: dict, frames_out: bool):
    """``fn(state, nbrs, params, n)`` compiled for ``n_replicas``: split over the CPU
    devices (each a thread) where there are several (``replica_mesh``), else as one
    program. ``frames_out``: it returns frames (frames, replicas, ...) as well."""
    mesh = replica_mesh(n_replicas)
    if mesh is None:
        return jax.jit(fn, compiler_options=compiler_options)
    r = P(REPLICA_AXIS)
    out = (r, r, P(None, REPLICA_AXIS)) if frames_out else (r, r)
    split = jax.jit(
        jax.shard_map(fn, mesh=mesh, in_specs=(r, r, P(), P()), out_specs=out, check_vma=False),
        compiler_options=compiler_options,
    )
    shared, by_replica = NamedSharding(mesh, P()), NamedSharding(mesh, r)

    def placed(state, nbrs, params, n):
        # the replicas split over the devices, the parameters copied to each (they may
        # sit on one device, e.g. an optimiser's output); frames leave as one array on
        # the default device, as an unsplit program's do
        state, nbrs = jax.device_put((state, nbrs), by_replica)
        out = split(state, nbrs, jax.device_put(params, shared), n)
        return (*out[:2], jax.device_put(out[2], jax.devices()[0])) if frames_out else out

    return placed


def replica_mesh(n_replicas: int) -> Mesh | None:
    """The CPU devices that ``n_replicas`` replicas are split over: as many as divide
    them evenly (up to all, see ``cgflow.runtime.cpu_device_count``); None where that
    is one, or where JAX computes on an accelerator (one device runs them all)."""
    if jax.default_backend() != "cpu" or not hasattr(jax, "shard_map"):  # JAX < 0.7
        return None
    devices = jax.devices()
    k = replica_split(n_replicas, len(devices))
    return None if k == 1 else Mesh(np.array(devices[:k]), (REPLICA_AXIS,))


def replica_split(n_replicas: int, n_devices: int) -> int:
    """The most devices, up to ``n_devices``, that share ``n_replicas`` evenly."""
    return max(d for d in range(1, min(n_devices, n_replicas) + 1) if n_replicas % d == 0)


def _redo_on_overflow(neighbors: Neighbors | None, fn, reps: Replicas, *args):
    """``fn(state, nbrs, *args)``, run again from the same state with larger lists for
    as long as any replica's neighbour list overflowed."""
    out = fn(reps.state, reps.nbrs, *args)
    while neighbors is not None and neighbors.overflowed(out[1]):
        nbrs = neighbors.allocate(reps.state.position, grow=True)
        out = fn(reps.state, nbrs, *args)
    return out
