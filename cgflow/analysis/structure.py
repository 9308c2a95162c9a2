"""Structure of a periodic CG liquid: the radial distribution function g(r) (by
MDTraj) and the triplet angular distribution function, the two observables on which
Thaler, Stupp & Zavadlav (2022) score their CG water.

Both take frames (n, beads, 3) in nm with their boxes (n, 3, 3), orthorhombic.

- g(r): ``mdtraj.compute_rdf`` over all bead pairs, minimum image.
- ADF: for each bead i, the angles j-i-k between every two of its neighbours
  j, k (j < k) closer than ``cutoff`` (0.318 nm in the paper: the first shell of
  water), minimum image; the histogram over (0, pi), normalised to a density in
  the angle. For independent uniform neighbour directions it is sin(theta) / 2.
"""

from __future__ import annotations

import numpy as np

ADF_CUTOFF_NM = 0.318


def _trajectory(positions, boxes):
    import mdtraj as md

    top = md.Topology()
    chain = top.add_chain()
    for _ in range(positions.shape[1]):
        top.add_atom("W", md.element.oxygen, top.add_residue("SOL", chain))
    traj = md.Trajectory(np.asarray(positions, np.float32), top)
    traj.unitcell_vectors = np.asarray(boxes, np.float32)
    return traj


def rdf(positions, boxes, r_max: float, bins: int, traj=None) -> tuple[np.ndarray, np.ndarray]:
    """(bin centres, g(r)) of all bead pairs up to ``r_max`` (nm), by MDTraj; or of
    the MDTraj trajectory ``traj`` when given (e.g. one read back from a file)."""
    import mdtraj as md

    traj = traj if traj is not None else _trajectory(positions, boxes)
    pairs = traj.topology.select_pairs("all", "all")
    r, g = md.compute_rdf(traj, pairs, r_range=(0.0, r_max), n_bins=bins, periodic=True)
    return np.asarray(r, float), np.asarray(g, float)


def _minimum_image(d: np.ndarray, box_lengths: np.ndarray) -> np.ndarray:
    return d - box_lengths * np.round(d / box_lengths)


def adf_counts(positions, boxes, cutoff: float = ADF_CUTOFF_NM, bins: int = 90) -> np.ndarray:
    """(frames, bins) counts of the angles j-i-k between neighbour pairs of every bead
    within ``cutoff`` (nm), bins even over (0, pi); per frame, so that frames can
    be grouped for the bootstrap."""
    positions = np.asarray(positions, float)
    lengths = np.diagonal(np.asarray(boxes, float), axis1=1, axis2=2)
    counts = np.zeros((len(positions), bins))
    for f, (x, box) in enumerate(zip(positions, lengths, strict=True)):
        d = _minimum_image(x[None, :, :] - x[:, None, :], box)  # d[i, j] = x_j - x_i
        r = np.linalg.norm(d, axis=-1)
        near = (r < cutoff) & (r > 0)
        for i in np.flatnonzero(near.any(axis=1)):
            v = d[i, near[i]] / r[i, near[i]][:, None]
            if len(v) < 2:
                continue
            j, k = np.triu_indices(len(v), 1)
            cos = np.clip(np.sum(v[j] * v[k], axis=1), -1.0, 1.0)
            counts[f] += np.histogram(np.arccos(cos), bins=bins, range=(0.0, np.pi))[0]
    return counts


def adf(positions, boxes, cutoff: float = ADF_CUTOFF_NM, bins: int = 90):
    """(bin centres, density of the angle over (0, pi)) of :func:`adf_counts`."""
    counts = adf_counts(positions, boxes, cutoff, bins).sum(axis=0)
    width = np.pi / bins
    centres = (np.arange(bins) + 0.5) * width
    return centres, counts / max(counts.sum(), 1.0) / width
