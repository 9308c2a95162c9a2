"""Physics priors fitted to CG data by Boltzmann inversion.

``harmonic_position``: a harmonic restraint on every CG coordinate,
U = sum_a k_a/2 (R_a - R0_a)^2 with R0 = <R> and k = kT / Var(R) (the Boltzmann
inversion of a Gaussian).  It confines the model where data are absent; the
network learns the rest.  ``none``: zero energy.  Bonded and repulsive priors for
molecules follow the same interface.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

PRIOR_TYPES = ("harmonic_position", "none")


def fit_prior(prior_type: str, positions: np.ndarray, kT: float) -> dict:
    """Fit a prior of ``prior_type`` to CG positions (frames, beads, dim) at ``kT``.

    Returns:
      JSON-ready description: ``{"type": ..., parameters...}``.

    Raises:
      ValueError: unknown type, or a fit that gives non-finite or non-positive
        force constants (e.g. a coordinate that never moves).
    """
    if prior_type not in PRIOR_TYPES:
        raise ValueError(f"unknown prior {prior_type!r}; allowed: {list(PRIOR_TYPES)}")
    positions = np.asarray(positions, float)
    if prior_type == "none":
        return {"type": "none"}
    if positions.ndim != 3 or positions.shape[0] < 2:
        raise ValueError(
            f"prior fit needs positions (frames>=2, beads, dim), got {positions.shape}"
        )
    mean = positions.mean(axis=0)
    var = positions.var(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = kT / var
    if not (np.all(np.isfinite(k)) and np.all(k > 0)):
        raise ValueError(
            f"harmonic_position prior: fitted force constants not finite and "
            f"positive (variances {var.ravel().tolist()})"
        )
    return {"type": "harmonic_position", "k": k.tolist(), "x0": mean.tolist(), "kT": kT}


def prior_energy(prior: dict):
    """Return ``energy(R) -> scalar`` for a fitted prior description, R (beads, dim)."""
    if prior["type"] == "none":
        return lambda R: jnp.zeros((), R.dtype)
    if prior["type"] == "harmonic_position":
        k, x0 = jnp.asarray(prior["k"]), jnp.asarray(prior["x0"])
        return lambda R: 0.5 * jnp.sum(k * (R - x0) ** 2)
    raise ValueError(f"unknown prior {prior['type']!r}; allowed: {list(PRIOR_TYPES)}")
