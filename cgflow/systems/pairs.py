"""Pair distances of beads in a periodic orthorhombic box (minimum image), shared by
the liquid systems' structure descriptors and the structural scores."""

from __future__ import annotations

import numpy as np


def minimum_image(d: np.ndarray, box_lengths: np.ndarray) -> np.ndarray:
    """d wrapped to the nearest image in a box of side lengths ``box_lengths``."""
    return d - box_lengths * np.round(d / box_lengths)


def pair_distances(positions, box_lengths=None) -> tuple[np.ndarray, np.ndarray]:
    """Distances of every bead pair i < j, (frames, pairs), minimum image in a box of
    side lengths ``box_lengths`` (None: free space), and the pairs (pairs, 2)."""
    positions = np.asarray(positions, float)
    i, j = np.triu_indices(positions.shape[1], 1)
    d = positions[:, j] - positions[:, i]
    if box_lengths is not None:
        d = minimum_image(d, np.asarray(box_lengths, float))
    return np.linalg.norm(d, axis=-1), np.stack([i, j], 1)


def pair_distance_counts(positions, box_lengths, edges, chunk: int = 32) -> np.ndarray:
    """(frames, bins) counts of the minimum-image distances of every bead pair i < j
    in the bins ``edges`` (nm), per frame, so that frames can be grouped for the
    bootstrap. ``box_lengths``: the orthorhombic box's side lengths (3,)."""
    positions = np.asarray(positions, float)
    out = np.zeros((len(positions), len(edges) - 1))
    for start in range(0, len(positions), chunk):
        r, _ = pair_distances(positions[start : start + chunk], box_lengths)
        bins = np.searchsorted(edges, r, side="right") - 1
        inside = (bins >= 0) & (bins < len(edges) - 1)
        frame = np.broadcast_to(np.arange(len(r))[:, None], r.shape)
        np.add.at(out[start : start + chunk], (frame[inside], bins[inside]), 1.0)
    return out


def rdf_of_counts(counts, n_frames, n_beads: int, edges, volume: float) -> np.ndarray:
    """g(r) from pair counts summed over ``n_frames`` frames (both may carry a leading
    axis of frames or bootstrap draws): counts over the ideal-gas count of the
    shell, as MDTraj's ``compute_rdf`` normalises."""
    edges = np.asarray(edges, float)
    shells = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    pairs = n_beads * (n_beads - 1) / 2
    return counts / (np.asarray(n_frames, float)[..., None] * pairs * shells / volume)
