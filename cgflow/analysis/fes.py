"""Histogram free energies and the metrics that compare them.

All free energies are in units of kT.  Probabilities are per bin (they sum to 1
over the bins plus, where given, the mass that falls outside the range).
"""

from __future__ import annotations

import numpy as np


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
    p, q = p / p.sum(), q / q.sum()
    m = 0.5 * (p + q)

    def kl(a):
        nz = a > 0
        return np.sum(a[nz] * np.log(a[nz] / m[nz]))

    return float(0.5 * kl(p) + 0.5 * kl(q))
