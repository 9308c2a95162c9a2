"""Histogram free energies and the metrics that compare them.

All free energies are in units of kT.  Probabilities are per bin (they sum to 1
over the bins plus, where given, the mass that falls outside the range).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import jensenshannon


def bin_probabilities(samples: np.ndarray, edges: list[np.ndarray]):
    """Fraction of ``samples`` (n, d) in each bin of the grid, and the fraction outside.

    Returns:
      (p, outside): p has shape (len(e) - 1 for e in edges); p.sum() + outside = 1.
    """
    samples = np.asarray(samples, float).reshape(len(samples), -1)
    if samples.shape[0] == 0:
        raise ValueError("no samples to histogram")
    counts, _ = np.histogramdd(samples, bins=edges)
    p = counts / samples.shape[0]
    return p, max(0.0, 1.0 - p.sum())


def free_energy(p: np.ndarray, n_samples: int | None = None) -> np.ndarray:
    """-ln p in kT; empty bins get half a count (when ``n_samples`` is given) or inf."""
    p = np.asarray(p, float)
    floor = 0.5 / n_samples if n_samples else 0.0
    with np.errstate(divide="ignore"):
        return -np.log(np.where(p > 0, p, floor))


def shifted_rmse(f_model: np.ndarray, f_ref: np.ndarray, mask: np.ndarray) -> float:
    """RMSE of two free energies over ``mask`` after the best constant shift (in kT)."""
    d = (np.asarray(f_model) - np.asarray(f_ref))[mask]
    if d.size == 0:
        raise ValueError("no bins selected for the free-energy RMSE")
    return float(np.sqrt(np.mean((d - d.mean()) ** 2)))


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence (natural log, in [0, ln 2]) of two distributions."""
    p = np.asarray(p, float).ravel()
    q = np.asarray(q, float).ravel()
    return float(jensenshannon(p, q) ** 2)


def score_profile(x: np.ndarray, exact, kT: float, bins: int, density_threshold: float):
    """Compare samples of a 1-D collective variable with its exact distribution.

    Args:
      x: samples of the CV (n,).
      exact: an ExactProfile (grid, free energy in energy units, CDF).
      kT: thermal energy.
      bins: bins over the range where the exact density exceeds 1e-4 of its maximum.
      density_threshold: ``pmf_rmse_kT`` is taken over bins whose exact probability
        exceeds this fraction of the largest bin's, after the best constant shift;
        an empty model bin there counts as half a sample.

    Returns:
      (metrics, curves): ``pmf_rmse_kT`` and ``js_divergence`` (bin probabilities,
      with the mass outside the range as one more bin); curves holds bin centres and
      both PMFs in kT, for figures.
    """
    x = np.asarray(x).ravel()
    grid, a, cdf_grid = exact
    dens = np.exp(-(a - a.min()) / kT)
    inside = grid[dens > 1e-4]
    edges = np.linspace(inside[0], inside[-1], bins + 1)
    p_ref = np.diff(np.interp(edges, grid, cdf_grid, left=0.0, right=1.0))
    out_ref = max(0.0, 1.0 - p_ref.sum())
    p_mod, out_mod = bin_probabilities(x[:, None], [edges])
    mask = p_ref > density_threshold * p_ref.max()
    f_ref = free_energy(p_ref)
    f_mod = free_energy(p_mod, n_samples=x.size)
    rmse = shifted_rmse(f_mod, f_ref, mask)
    shift = np.mean((f_mod - f_ref)[mask])
    js = js_divergence(np.append(p_mod, out_mod), np.append(p_ref, out_ref))
    f0 = f_ref[mask].min()
    curves = {
        "centres": 0.5 * (edges[1:] + edges[:-1]),
        "pmf_reference_kT": f_ref - f0,
        "pmf_model_kT": np.where(p_mod > 0, f_mod - shift - f0, np.nan),
        "mask": mask,
    }
    return {"pmf_rmse_kT": rmse, "js_divergence": js}, curves


def score_surface(angles: np.ndarray, reference: np.ndarray, bins: int, names=("phi", "psi")):
    """Compare the 2-D distribution of two angles (radians) with a reference's.

    Both are histogrammed on a bins x bins grid over (-pi, pi]^2.
    ``fes_rmse_kT``: RMSE of the free energies (kT) over bins populated in the
    reference, after the best constant shift; an empty model bin counts as half a
    sample. ``hist_mse``: mean squared difference of the normalised 2-D histograms
    (Thaler et al. 2022). ``js_divergence``: of the 2-D histograms.

    Returns:
      (metrics, curves): curves holds the edges (rad), both surfaces (kT) and the
      1-D PMFs along each angle (marginals).
    """
    edges = np.linspace(-np.pi, np.pi, bins + 1)
    p_mod, _ = bin_probabilities(angles, [edges, edges])
    p_ref, _ = bin_probabilities(reference, [edges, edges])
    mask = p_ref > 0
    f_ref = free_energy(p_ref)
    f_mod = free_energy(p_mod, n_samples=len(angles))
    metrics = {
        "fes_rmse_kT": shifted_rmse(f_mod, f_ref, mask),
        "hist_mse": float(np.mean((p_mod - p_ref) ** 2)),
        "js_divergence": js_divergence(p_mod, p_ref),
    }
    f0 = f_ref[mask].min()
    curves = {
        f"{names[0]}_edges": edges,
        f"{names[1]}_edges": edges,
        "fes_reference_kT": np.where(mask, f_ref - f0, np.nan),
        "fes_model_kT": np.where(p_mod > 0, free_energy(p_mod) - f0, np.nan),
    }
    for axis, name in ((1, names[0]), (0, names[1])):  # 1-D PMFs: marginals
        for which, p in (("reference", p_ref), ("model", p_mod)):
            pmf = free_energy(p.sum(axis=axis))
            curves[f"pmf_{name}_{which}_kT"] = pmf - np.min(pmf[np.isfinite(pmf)])
    return metrics, curves
