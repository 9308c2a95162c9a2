"""A model's energies and parameter gradients over many frames, in chunks.

One ``vmap`` over thousands of frames makes every intermediate of the network a
(frames, pairs, features) array far larger than the CPU's caches, and its reverse
pass streams them all through memory again. Scanning over chunks of frames keeps
each chunk's intermediates in cache (``cgflow bench``'s RE update time measures
the gradient over a reference batch). The chunk holds about ``PAIRS_PER_CHUNK``
bead pairs, so small systems are not split at all and a liquid box goes a few
frames at a time.

A frame is positions R (beads, dim), or ``(R, idx)`` with its pair list idx (2,
capacity) (:mod:`cgflow.models.pairs`): then the model sees only the listed pairs,
and a chunk holds as many frames as their lists allow.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from cgflow.models.pairs import PairList

PAIRS_PER_CHUNK = 4096
"""Bead pairs per chunk (frames x pairs per frame), about 64 alanine frames."""


def chunk_size(n_beads: int, pairs: int | None = None) -> int:
    """Frames per chunk for frames of ``n_beads`` beads (at least one), or of
    ``pairs`` listed pairs each."""
    pairs = n_beads * (n_beads - 1) // 2 if pairs is None else pairs
    return max(1, PAIRS_PER_CHUNK // max(1, pairs))


def frame_energy(energy_fn):
    """``energy(params, frame)``: ``energy_fn`` of R, or of ``(R, idx)`` with its pairs."""

    def energy(params, frame):
        if isinstance(frame, tuple):
            return energy_fn(params, frame[0], neighbor=PairList(frame[1]))
        return energy_fn(params, frame)

    return energy


def n_frames(X) -> int:
    return jax.tree.leaves(X)[0].shape[0]


def _size(X, n_beads: int) -> int:
    return chunk_size(n_beads, X[1].shape[-1] if isinstance(X, tuple) else None)


def _chunks(X, c, size: int):
    """Frames X (n, ...) and weights c (n,) as (m, size, ...) and (m, size): the tail
    is padded with copies of the first frame at weight 0 (finite, so it adds nothing)."""
    n = n_frames(X)
    m = -(-n // size)
    pad = m * size - n

    def split(a):
        if pad:
            a = jnp.concatenate([a, jnp.broadcast_to(a[:1], (pad, *a.shape[1:]))])
        return a.reshape(m, size, *a.shape[1:])

    if pad:
        c = jnp.concatenate([c, jnp.zeros((pad,), c.dtype)])
    return jax.tree.map(split, X), c.reshape(m, size)


def energies_fn(energy_fn, n_beads: int):
    """``energies(params, X) -> (n,)``: ``energy_fn`` of every frame of X (n, beads,
    dim), or of ``(X, idx)`` with pair lists, a chunk at a time (one ``vmap`` when
    X fits in one chunk)."""
    energy = frame_energy(energy_fn)
    batched = jax.vmap(energy, (None, 0))

    def energies(params, X):
        size = _size(X, n_beads)
        if n_frames(X) <= size:
            return batched(params, X)
        return jax.lax.map(lambda x: energy(params, x), X, batch_size=size)

    return energies


def weighted_grad_fn(energy_fn, n_beads: int):
    """``weighted_grad(params, X, c) -> (energies (n,), gradient)``: the energies of
    the frames X (or ``(X, idx)``) and the parameter gradient of sum_i c_i U(x_i),
    a chunk at a time."""
    batched = jax.vmap(frame_energy(energy_fn), (None, 0))

    def chunk(params, x, cw):
        u, vjp = jax.vjp(lambda p: batched(p, x), params)
        return u, vjp(cw)[0]

    def weighted_grad(params, X, c):
        n, size = n_frames(X), _size(X, n_beads)
        if n <= size:
            return chunk(params, X, c)
        Xc, cc = _chunks(X, c, size)

        def body(acc, xc):
            u, g = chunk(params, *xc)
            return jax.tree.map(jnp.add, acc, g), u

        g, u = jax.lax.scan(body, jax.tree.map(jnp.zeros_like, params), (Xc, cc))
        return u.reshape(-1)[:n], g

    return weighted_grad
