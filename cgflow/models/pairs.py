"""Exact pair lists of fixed frames in a periodic box, for training on liquids.

SchNet only sees pairs within its cutoff, yet without a list it evaluates its filter
network on all n(n-1)/2 pairs of every frame: 130,816 pairs for 512 water beads, of
which about 4,000 are within 0.5 nm. The frames a training evaluates are fixed (the
data set, RE's CG samples), so their pairs within the cutoff can be listed once per
frame, exactly (no skin: nothing moves), and passed to the energy as a
:class:`PairList`, which the energy reads as it reads a JAX MD ``OrderedSparse``
neighbour list (each pair once, i < j, padded with the bead count).

:class:`FramePairs` lists every frame at one capacity, the largest count it has met
times a margin; a later frame with more pairs grows it (and a program compiled for
the old capacity compiles again), so no list is ever truncated.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from cgflow.jaxmd import partition
from cgflow.models import geometry
from cgflow.models.description import ModelDescription
from cgflow.models.energy import interaction_range

ORDERED_SPARSE = partition.NeighborListFormat.OrderedSparse
CHUNK_FRAMES = 8
"""Frames whose all-pair distances are held at once while listing."""


class PairList(struct.PyTreeNode):
    """One frame's pairs (i < j) within the cutoff: ``idx`` (2, capacity), padded with
    the bead count; the energy reads it as an ``OrderedSparse`` neighbour list."""

    idx: Any
    format: Any = struct.field(pytree_node=False, default=ORDERED_SPARSE)


class FramePairs:
    """Pair lists of frames in a periodic ``box`` within ``cutoff``, at one capacity.

    Args:
      box: box side lengths (dim,).
      cutoff: the model's interaction range.
      n_beads: beads per frame.
      margin: the capacity is the largest pair count met times this (room for frames
        to come, so that the capacity, and the programs compiled for it, rarely change).
    """

    def __init__(self, box, cutoff: float, n_beads: int, margin: float = 1.25):
        self.box = np.asarray(box, np.float32)
        self.cutoff, self.n_beads, self.margin = float(cutoff), int(n_beads), float(margin)
        self.capacity = 0
        i, j = np.triu_indices(self.n_beads, 1)
        displacement = geometry.displacement_fn(self.box)
        # one padding row (n, n) after the real pairs: where nonzero fills up
        padded = jnp.asarray(np.stack([np.append(i, n_beads), np.append(j, n_beads)]), jnp.int32)
        i, j = jnp.asarray(i), jnp.asarray(j)

        def inside(R):
            d = jax.vmap(displacement)(R[j], R[i])
            return jnp.sum(d**2, axis=-1) < self.cutoff**2

        def listing(X, capacity):
            def one(R):
                mask = inside(R)
                k = jnp.nonzero(mask, size=capacity, fill_value=i.shape[0])[0]
                return padded[:, k], jnp.sum(mask)

            return jax.lax.map(one, X, batch_size=CHUNK_FRAMES)

        self._list = jax.jit(listing, static_argnums=1)

    def __call__(self, X) -> jax.Array:
        """The lists of frames X (n, beads, dim): int32 (n, 2, capacity), the capacity
        grown first if a frame has more pairs than it holds (then listed again)."""
        X = jnp.asarray(X, jnp.float32)
        if X.shape[0] == 0:
            return jnp.full((0, 2, max(self.capacity, 1)), self.n_beads, jnp.int32)
        idx, counts = self._list(X, max(self.capacity, 1))
        most = int(jnp.max(counts))
        if most > self.capacity:
            self.capacity = max(1, math.ceil(most * self.margin))
            idx, _ = self._list(X, self.capacity)
        return idx

    def fit(self, idx) -> jax.Array:
        """Lists made at an earlier (smaller) capacity, padded to the current one."""
        pad = self.capacity - idx.shape[-1]
        if pad <= 0:
            return idx
        return jnp.pad(idx, ((0, 0), (0, 0), (0, pad)), constant_values=self.n_beads)

    def describe(self) -> dict:
        return {"cutoff": self.cutoff, "capacity": self.capacity, "all_pairs":
                self.n_beads * (self.n_beads - 1) // 2}  # fmt: skip


def frame_pairs_for(desc: ModelDescription) -> FramePairs | None:
    """The pair lister of a periodic SchNet model (None: any other model, which
    evaluates all pairs, or has no pairs)."""
    if desc.box is None or desc.network_type != "schnet":
        return None
    return FramePairs(desc.box, interaction_range(desc), int(desc.n_beads))
