"""A sample-based two-sample score: the (weighted) maximum mean discrepancy.

RE's own held-out score, beta <U>_val + ln Z, trusts that its CG samples follow the
Boltzmann distribution of the model; a model that exploits its integrator's error
breaks that trust without the score noticing. The squared MMD between the CG
samples and the held-out frames, in the features the benchmark scores (the
system's collective variables), looks only at where the samples are.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist

MAX_SAMPLES = 1000
"""CG samples scored (evenly spaced over the sample set): the kernel matrix is
MAX_SAMPLES^2."""


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return cdist(a, b, "sqeuclidean")


def bandwidth(y: np.ndarray) -> float:
    """Median heuristic: the median squared distance between the frames ``y``
    (n, k), or 1 when they do not spread."""
    y = np.asarray(y, float)
    if len(y) < 2:
        return 1.0
    d = _sq_dists(y, y)[np.triu_indices(len(y), 1)]
    med = float(np.median(d))
    return med if med > 0 else 1.0


class MMDScore:
    """Squared MMD (a V-statistic, Gaussian kernel of the given bandwidth) between
    weighted samples x and fixed frames y; the kernel terms of one sample set are
    computed once and reused for any weights.

    Args:
      y: (m, k) features of the held-out frames.
      h2: squared bandwidth of the kernel exp(-|a - b|^2 / (2 h2)).
    """

    def __init__(self, y: np.ndarray, h2: float):
        self.y = np.asarray(y, float)
        self.h2 = float(h2)
        self.k_yy = float(np.exp(-_sq_dists(self.y, self.y) / (2 * self.h2)).mean())

    def set_samples(self, x: np.ndarray) -> None:
        x = np.asarray(x, float)
        self.k_xx = np.exp(-_sq_dists(x, x) / (2 * self.h2))
        self.k_xy = np.exp(-_sq_dists(x, self.y) / (2 * self.h2)).mean(axis=1)

    def __call__(self, w: np.ndarray | None = None) -> float:
        """MMD^2 for sample weights ``w`` (normalised here; None: uniform)."""
        n = self.k_xx.shape[0]
        w = np.full(n, 1.0 / n) if w is None else np.asarray(w, float) / np.sum(w)
        return float(w @ self.k_xx @ w - 2.0 * w @ self.k_xy + self.k_yy)


def subsample(n: int, max_samples: int = MAX_SAMPLES) -> np.ndarray:
    """Indices of at most ``max_samples`` of n samples, evenly spaced."""
    if n <= max_samples:
        return np.arange(n)
    return np.linspace(0, n - 1, max_samples).round().astype(int)


class HeldOutSampleScore:
    """Squared MMD between a model's CG samples, reweighted to its current
    parameters, and held-out frames, in the given features.

    Args:
      R_val: held-out frames (m, beads, dim).
      features: ``features(positions) -> (m, k)``.
    """

    def __init__(self, R_val: np.ndarray, features):
        y = features(np.asarray(R_val))
        self.score = MMDScore(y, bandwidth(y))
        self.features = features
        self._samples, self._idx = None, None

    def __call__(self, X_cg, w) -> float:
        """For CG samples ``X_cg`` with reweighting weights ``w`` (one per sample, as
        RE's ``reweight`` gives them); NaN when the weights are not finite."""
        if self._samples is not X_cg:  # a new sample set: kernel terms once
            self._idx = subsample(len(X_cg))
            self.score.set_samples(self.features(np.asarray(X_cg)[self._idx]))
            self._samples = X_cg
        w = np.asarray(w, np.float64)[self._idx]
        if not np.all(np.isfinite(w)) or not np.sum(w) > 0:
            return float("nan")
        return self.score(w)
