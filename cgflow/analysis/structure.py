"""Structure of a periodic CG liquid: the radial distribution function g(r) (by
MDTraj) and the triplet angular distribution function, the two observables on which
Thaler, Stupp & Zavadlav (2022) score their CG water.

Both take frames (n, beads, 3) in nm with their boxes (n, 3, 3), orthorhombic.

- g(r): minimum-image pair counts per frame normalised as ``mdtraj.compute_rdf``
  does (tested equal to it), so that frames can be resampled.
- ADF: for each bead i, the angles j-i-k between every two of its neighbours
  j, k (j < k) closer than ``cutoff`` (0.318 nm in the paper: the first shell of
  water), minimum image; the histogram over (0, pi), normalised to a density in
  the angle. For independent uniform neighbour directions it is sin(theta) / 2.
"""

from __future__ import annotations

import numpy as np

from cgflow.analysis import stats
from cgflow.systems.pairs import minimum_image, pair_distance_counts, rdf_of_counts

__all__ = ["adf", "adf_counts", "pair_distance_counts", "rdf_of_counts", "score_structure"]

ADF_CUTOFF_NM = 0.318


def adf_counts(positions, boxes, cutoff: float = ADF_CUTOFF_NM, bins: int = 90) -> np.ndarray:
    """(frames, bins) counts of the angles j-i-k between neighbour pairs of every bead
    within ``cutoff`` (nm), bins even over (0, pi); per frame, so that frames can
    be grouped for the bootstrap."""
    positions = np.asarray(positions, float)
    lengths = np.diagonal(np.asarray(boxes, float), axis1=1, axis2=2)
    counts = np.zeros((len(positions), bins))
    for f, (x, box) in enumerate(zip(positions, lengths, strict=True)):
        d = minimum_image(x[None, :, :] - x[:, None, :], box)  # d[i, j] = x_j - x_i
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


def _group_sums(per_frame: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n_groups, bins) sums of per-frame counts and (n_groups,) frames per group."""
    groups = np.asarray(groups)
    return stats.group_sums(per_frame, groups), np.bincount(groups).astype(float)


def score_structure(positions, groups, ref_positions, ref_groups, box_lengths, settings, rng,
                    ref_rng=None):  # fmt: skip
    """The errors of a CG liquid's structure against a reference, with 95 % CIs.

    ``rdf_rmse``: RMSE of g(r) over the bins from ``settings.r_min_nm`` to
    ``r_max_nm``; ``adf_rmse``: RMSE of the ADF density over (0, pi), on
    ``settings.adf_frames`` evenly spaced frames of each side. Bootstrap: the
    sample's groups resampled with ``rng``, the reference's with ``ref_rng`` (a
    fixed seed, so that models scored against one reference have paired draws).

    Returns:
      (values, CIs, draws, curves, raw): like the other scores; raw holds the
      point values again (no noise correction here).
    """
    ref_rng = ref_rng if ref_rng is not None else np.random.default_rng(0)
    s = settings
    lengths = np.asarray(box_lengths, float)
    volume = float(np.prod(lengths))
    edges = np.linspace(0.0, s.r_max_nm, s.rdf_bins + 1)
    centres = 0.5 * (edges[1:] + edges[:-1])
    scored = centres >= s.r_min_nm
    sides = []
    for x, g, side_rng in ((positions, groups, rng), (ref_positions, ref_groups, ref_rng)):
        counts, frames = _group_sums(pair_distance_counts(x, lengths, edges), g)
        w = stats.resample_weights(len(frames), stats.N_BOOT, side_rng)
        n = x.shape[1]
        point = rdf_of_counts(counts.sum(0), frames.sum(), n, edges, volume)
        draws = rdf_of_counts(w @ counts, w @ frames, n, edges, volume)
        pick = np.unique(np.linspace(0, len(x) - 1, min(s.adf_frames, len(x))).astype(int))
        boxes = np.tile(np.diag(lengths), (len(pick), 1, 1))
        per_frame = adf_counts(x[pick], boxes, s.adf_cutoff_nm, s.adf_bins)
        angles, _ = _group_sums(per_frame, np.unique(np.asarray(g)[pick], return_inverse=True)[1])
        w_adf = stats.resample_weights(len(angles), stats.N_BOOT, side_rng)
        width = np.pi / s.adf_bins
        adf_point = angles.sum(0) / max(angles.sum(), 1.0) / width
        adf_draws = (w_adf @ angles) / np.maximum((w_adf @ angles).sum(1, keepdims=True), 1.0)
        sides.append((point, draws, adf_point, adf_draws / width))
    (g_m, g_m_d, a_m, a_m_d), (g_r, g_r_d, a_r, a_r_d) = sides
    rdf_rmse = float(np.sqrt(np.mean((g_m - g_r)[scored] ** 2)))
    adf_rmse = float(np.sqrt(np.mean((a_m - a_r) ** 2)))
    draws = {
        "rdf_rmse": np.sqrt(np.mean((g_m_d - g_r_d)[:, scored] ** 2, axis=1)),
        "adf_rmse": np.sqrt(np.mean((a_m_d - a_r_d) ** 2, axis=1)),
    }
    values = {"rdf_rmse": rdf_rmse, "adf_rmse": adf_rmse}
    cis = {k: stats.percentile_ci(v) for k, v in draws.items()}
    theta = (np.arange(s.adf_bins) + 0.5) * np.pi / s.adf_bins
    curves = {"r": centres, "rdf_model": g_m, "rdf_reference": g_r,
              "theta": theta, "adf_model": a_m, "adf_reference": a_r}  # fmt: skip
    return values, cis, draws, curves, dict(values)


def score_pressure(pressure, groups, ref_pressure, ref_groups, rng, ref_rng=None):
    """A periodic model's mean virial pressure against the reference's, with 95 % CIs.

    Metrics (bar): ``pressure_bar``, the samples' mean; ``reference_pressure_bar``,
    the reference's; ``pressure_error_bar``, their difference. Bootstrap over the
    groups of each side (CG replicas, or time blocks of a reference), the reference's
    with a fixed seed (paired draws across models, as in ``score_structure``).

    Returns:
      (values, CIs, draws).
    """
    ref_rng = ref_rng if ref_rng is not None else np.random.default_rng(1)
    means, draws = [], []
    for p, g, side_rng in ((pressure, groups, rng), (ref_pressure, ref_groups, ref_rng)):
        sums, frames = _group_sums(np.asarray(p, float)[:, None], g)
        w = stats.resample_weights(len(frames), stats.N_BOOT, side_rng)
        means.append(float(sums.sum() / frames.sum()))
        draws.append((w @ sums[:, 0]) / (w @ frames))
    names = ("pressure_bar", "reference_pressure_bar", "pressure_error_bar")
    values = dict(zip(names, (means[0], means[1], means[0] - means[1]), strict=True))
    drawn = dict(zip(names, (draws[0], draws[1], draws[0] - draws[1]), strict=True))
    return values, {k: stats.percentile_ci(v) for k, v in drawn.items()}, drawn
