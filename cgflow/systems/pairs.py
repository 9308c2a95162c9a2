"""Pair distances of beads in a periodic orthorhombic box (minimum image), shared by
the liquid systems' structure descriptors and the structural scores."""

from __future__ import annotations

import numpy as np


def minimum_image(d: np.ndarray, box_lengths: np.ndarray) -> np.ndarray:
    """d wrapped to the nearest image in a box of side lengths ``box_lengths``."""
    return d - box_lengths * np.round(d / box_lengths)


def pair_distance_counts(positions, box_lengths, edges, chunk: int = 32) -> np.ndarray:
    """(frames, bins) counts of the minimum-image distances of every bead pair i < j
    in the bins ``edges`` (nm), per frame, so that frames can be grouped for the
    bootstrap. ``box_lengths``: the orthorhombic box's side lengths (3,)."""
    positions = np.asarray(positions, float)
    lengths = np.asarray(box_lengths, float)
    i, j = np.triu_indices(positions.shape[1], 1)
    out = np.zeros((len(positions), len(edges) - 1))
    for start in range(0, len(positions), chunk):
        x = positions[start : start + chunk]
        d = minimum_image(x[:, j] - x[:, i], lengths)
        r = np.linalg.norm(d, axis=-1)
        bins = np.searchsorted(edges, r, side="right") - 1
        inside = (bins >= 0) & (bins < len(edges) - 1)
        frame = np.broadcast_to(np.arange(len(x))[:, None], r.shape)
        np.add.at(out[start : start + chunk], (frame[inside], bins[inside]), 1.0)
    return out
