"""Internal coordinates in JAX for bead positions R (beads, dim), through a JAX MD
``space`` displacement: ``space.free()`` in free space, ``space.periodic(box)`` in a
box (minimum image), so every term works in either.

Gradients stay finite at straight angles: angles come from atan2(|a x b|, a . b).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from cgflow.jaxmd import space

FREE, _ = space.free()


def vectors(R, i, j, displacement=FREE):
    """R_j - R_i for index arrays i, j (minimum image in a box)."""
    return jax.vmap(displacement)(R[j], R[i])


def bond_lengths(R, idx, displacement=FREE):
    """|R_j - R_i| for index pairs idx (n, 2)."""
    d = vectors(R, idx[:, 0], idx[:, 1], displacement)
    return jnp.sqrt(jnp.sum(d**2, axis=-1))


def angles(R, idx, displacement=FREE):
    """Angle i-j-k (radians) for index triples idx (n, 3)."""
    a = vectors(R, idx[:, 1], idx[:, 0], displacement)
    b = vectors(R, idx[:, 1], idx[:, 2], displacement)
    cross = jnp.cross(a, b)
    return jnp.arctan2(jnp.sqrt(jnp.sum(cross**2, axis=-1) + 1e-20), jnp.sum(a * b, axis=-1))


def dihedrals(R, idx, displacement=FREE):
    """Dihedral i-j-k-l (radians, (-pi, pi]) for index quadruples idx (n, 4)."""
    b0 = vectors(R, idx[:, 1], idx[:, 0], displacement)
    b1 = vectors(R, idx[:, 1], idx[:, 2], displacement)
    b2 = vectors(R, idx[:, 2], idx[:, 3], displacement)
    b1n = b1 / jnp.linalg.norm(b1, axis=-1, keepdims=True)
    v = b0 - jnp.sum(b0 * b1n, axis=-1, keepdims=True) * b1n
    w = b2 - jnp.sum(b2 * b1n, axis=-1, keepdims=True) * b1n
    return jnp.arctan2(jnp.sum(jnp.cross(b1n, v) * w, axis=-1), jnp.sum(v * w, axis=-1))


def displacement_fn(box=None):
    """The displacement of free space, or of a periodic box with side lengths ``box``."""
    if box is None:
        return FREE
    displacement, _ = space.periodic(jnp.asarray(box))
    return displacement
