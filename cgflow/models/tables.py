"""Tabulated functions of a pair distance, for fast CG sampling.

A SchNet filter is a small network of one scalar, the pair distance; a sampler with
fixed parameters evaluates it tens of thousands of times per replica. Tabulated once
per parameter set, as MD codes tabulate pair potentials, a lookup replaces the
network: cubic Hermite interpolation of the values from the values and first
derivatives at the grid points, and of the derivative from the first and second
derivatives (all exact, by forward-mode differentiation of the function). The
derivative is thus interpolated directly, not differentiated from the interpolated
values, whose float32 rounding it would amplify by 1 / spacing.

    table = tabulate(f, cutoff, n_points)     # f: (m,) -> (m, width), f = 0 beyond cutoff
    w = lookup(table, d, cutoff)              # (pairs,) -> (pairs, width)

Beyond ``cutoff`` the lookup gives the value at the cutoff with a zero derivative,
so ``f`` must reach zero there smoothly (SchNet's cosine envelope does).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero

POINTS_PER_RBF = 32
"""Grid points of a SchNet filter table per radial basis function. A filter's
narrowest feature is one Gaussian (width cutoff / (rbf - 1)), so the spacing is kept
a fixed fraction of it, fine enough that the tabulated forces differ from the
network's by about as much as a reordering of its float32 sums
(tests/test_tables.py checks it, and fails a table four times coarser)."""


def tabulate(f, cutoff: float, n_points: int) -> jax.Array:
    """Table of ``f`` on ``n_points`` equally spaced distances in [0, cutoff].

    Row i holds, for the interval [x_i, x_i+1] of spacing h: f(x_i), h f'(x_i),
    f(x_i+1), h f'(x_i+1), h^2 f''(x_i), h^2 f''(x_i+1): Hermite data of f and of
    h f' on the interval, so one gather serves a lookup.

    Returns:
      (n_points - 1, 6 * width) float32.
    """
    h = cutoff / (n_points - 1)
    # the last point just inside the cutoff: f's derivatives there from the left, as
    # the interval below it needs (a cutoff written as jnp.where(d < cutoff, ...)
    # gives the right-hand ones, zero, at the cutoff itself)
    grid = np.linspace(0.0, cutoff, n_points, dtype=np.float32)
    grid[-1] = np.nextafter(grid[-1], np.float32(0.0))
    grid = jnp.asarray(grid)
    ones = jnp.ones_like(grid)

    def derivative(x):
        return jax.jvp(f, (x,), (ones,))[1]

    value, first = jax.jvp(f, (grid,), (ones,))
    second = jax.jvp(derivative, (grid,), (ones,))[1]
    lo, hi = slice(None, -1), slice(1, None)
    h2 = h * h
    parts = [value[lo], h * first[lo], value[hi], h * first[hi], h2 * second[lo], h2 * second[hi]]
    return jnp.concatenate(parts, axis=-1).astype(jnp.float32)


def _hermite(t, v0, m0, v1, m1):
    t2 = t * t
    t3 = t2 * t
    return (
        (2 * t3 - 3 * t2 + 1) * v0
        + (t3 - 2 * t2 + t) * m0
        + (3 * t2 - 2 * t3) * v1
        + (t3 - t2) * m1
    )


def _locate(table, d, cutoff):
    """Interval rows and the position t in [0, 1] within them of distances d."""
    n_intervals = table.shape[0]
    s = jnp.clip(d, 0.0, cutoff) * (n_intervals / cutoff)
    i = jnp.clip(jnp.floor(s), 0, n_intervals - 1).astype(jnp.int32)
    return i, (s - i)[..., None]


def _parts(rows):
    return jnp.split(rows, 6, axis=-1)


@jax.custom_jvp
def _lookup(table, d, cutoff):
    i, t = _locate(table, d, cutoff)
    v0, m0, v1, m1, _, _ = _parts(table[i])
    return _hermite(t, v0, m0, v1, m1)


def _lookup_jvp(primals, tangents):
    table, d, cutoff = primals
    table_dot, d_dot, _ = tangents
    i, t = _locate(table, d, cutoff)
    v0, m0, v1, m1, c0, c1 = _parts(table[i])
    value = _hermite(t, v0, m0, v1, m1)
    h = cutoff / table.shape[0]
    out = jnp.zeros_like(value)
    if not isinstance(d_dot, SymbolicZero):
        slope = _hermite(t, m0, c0, m1, c1) / h  # f' from f' and f'' at the ends
        inside = (d > 0.0) & (d < cutoff)
        out = out + jnp.where(inside[..., None], slope, 0.0) * d_dot[..., None]
    if not isinstance(table_dot, SymbolicZero):  # the lookup is linear in the table
        out = out + _hermite(t, *_parts(table_dot[i])[:4])
    return value, out


_lookup.defjvp(_lookup_jvp, symbolic_zeros=True)


def lookup(table: jax.Array, d: jax.Array, cutoff: float) -> jax.Array:
    """The tabulated function at distances ``d`` (any shape): ``d.shape + (width,)``.

    Differentiable in ``d`` (its derivative from the table's derivatives) and in
    ``table``."""
    return _lookup(table, d, jnp.float32(cutoff))
