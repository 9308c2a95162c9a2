"""Internal coordinates in JAX for bead positions R (beads, 3), free space.

Gradients stay finite at straight angles: angles come from atan2(|a x b|, a . b).
"""

from __future__ import annotations

import jax.numpy as jnp


def bond_lengths(R, idx):
    """|R_j - R_i| for index pairs idx (n, 2)."""
    d = R[idx[:, 1]] - R[idx[:, 0]]
    return jnp.sqrt(jnp.sum(d**2, axis=-1))


def angles(R, idx):
    """Angle i-j-k (radians) for index triples idx (n, 3)."""
    a = R[idx[:, 0]] - R[idx[:, 1]]
    b = R[idx[:, 2]] - R[idx[:, 1]]
    cross = jnp.cross(a, b)
    return jnp.arctan2(jnp.sqrt(jnp.sum(cross**2, axis=-1) + 1e-20), jnp.sum(a * b, axis=-1))


def dihedrals(R, idx):
    """Dihedral i-j-k-l (radians, (-pi, pi]) for index quadruples idx (n, 4)."""
    b0 = R[idx[:, 0]] - R[idx[:, 1]]
    b1 = R[idx[:, 2]] - R[idx[:, 1]]
    b2 = R[idx[:, 3]] - R[idx[:, 2]]
    b1n = b1 / jnp.linalg.norm(b1, axis=-1, keepdims=True)
    v = b0 - jnp.sum(b0 * b1n, axis=-1, keepdims=True) * b1n
    w = b2 - jnp.sum(b2 * b1n, axis=-1, keepdims=True) * b1n
    return jnp.arctan2(jnp.sum(jnp.cross(b1n, v) * w, axis=-1), jnp.sum(v * w, axis=-1))
