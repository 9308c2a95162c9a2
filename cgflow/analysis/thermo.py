"""A free energy's thermodynamics from its CG samples, against a reference's.

A temperature-aware model A(R, beta) (energy matching) predicts the mean all-atom
potential energy of its ensemble and how it changes with temperature. With
g(R) = d(beta A)/d beta, the model's conditional all-atom energy, and c(beta) the
R-independent offset A leaves free (fixed at the training temperatures, linear in
kT between them), at kT = 1/beta (k_B = 1):

    <U>  = <g>_A + c(kT)
    C_U  = d<U>/dkT = beta^2 (Var_A(g) - <dg/dbeta>_A) + dc/dkT

where the averages are over the model's own samples at that temperature (for the
exact A, dg/dbeta = -Var(U | R), and C_U is beta^2 Var(U), the law of total
variance). The reference's are <U> and Var(U) / kT^2 of its all-atom energies.
C_U is the heat capacity of the potential energy (the configurational part).

Both sides are resampled by groups (CG replicas; blocks of the reference's time
series), the reference's with the fixed ``REFERENCE_SEED`` as for the FES, so the
draws of two models scored against one reference are paired.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from cgflow.analysis import stats


def _moments(weights: np.ndarray, sums: np.ndarray) -> np.ndarray:
    """(n_draws, k) weighted means from group weights (n_draws, G) and group sums
    (G, k) whose first column is the group's frame count."""
    totals = weights @ sums
    return totals[:, 1:] / totals[:, :1]


class ModelEnergies(NamedTuple):
    """The model's side: at each CG sample, g = d(beta A)/d beta and its beta
    derivative dg (energy units; dg in energy^2), the sample's bootstrap group
    (replica), and the offset c(kT) and its slope dc/dkT at the temperature scored."""

    g: np.ndarray
    dg: np.ndarray
    groups: np.ndarray
    offset: float
    slope: float


class ReferenceEnergies(NamedTuple):
    """The reference's side: its frames' all-atom energies and their groups."""

    U: np.ndarray
    groups: np.ndarray


def score_thermodynamics(model: ModelEnergies, reference: ReferenceEnergies, kT: float, rng,
                         n_boot: int = stats.N_BOOT, same_frames: bool = False):  # fmt: skip
    """The model's <U> and C_U at kT against the reference's, with 95 % CIs.

    Args:
      model, reference: the two sides.
      kT: the temperature scored (energy units).
      rng: generator of the model side's draws.
      same_frames: g and dg are of the reference's own frames (the model's groups
        its groups): both sides take the same draws, so the errors measure the model's
        energy on the reference ensemble, without the model's sampling.

    Returns:
      (values, cis, draws): ``mean_energy_err_kT`` ((<U>_model - <U>_ref) / kT),
      ``heat_capacity_err`` (C_model - C_ref, in k_B), and the four quantities
      themselves (``mean_energy_model_kT``, ``mean_energy_ref_kT``: <U> / kT;
      ``heat_capacity_model``, ``heat_capacity_ref``).
    """
    groups, ref_groups, offset, slope = model.groups, reference.groups, model.offset, model.slope
    g, dg, ref_U = (np.asarray(a, float) for a in (model.g, model.dg, reference.U))
    if not (np.all(np.isfinite(g)) and np.all(np.isfinite(dg)) and np.all(np.isfinite(ref_U))):
        raise ValueError("thermodynamics: non-finite energies or derivatives")
    beta = 1.0 / kT
    # centre both sides (variances of large energies lose digits in float64 sums)
    g0, u0 = float(np.mean(g)), float(np.mean(ref_U))
    model_rows = np.stack([np.ones_like(g), g - g0, (g - g0) ** 2, dg], axis=1)
    ref_rows = np.stack([np.ones_like(ref_U), ref_U - u0, (ref_U - u0) ** 2], axis=1)
    model_sums = stats.group_sums(model_rows, groups)
    ref_sums = stats.group_sums(ref_rows, ref_groups)

    def quantities(w_model, w_ref):
        m = _moments(w_model, model_sums)
        r = _moments(w_ref, ref_sums)
        u_model = g0 + m[:, 0] + offset
        c_model = beta**2 * (m[:, 1] - m[:, 0] ** 2 - m[:, 2]) + slope
        u_ref = u0 + r[:, 0]
        c_ref = beta**2 * (r[:, 1] - r[:, 0] ** 2)
        return {
            "mean_energy_err_kT": (u_model - u_ref) / kT,
            "heat_capacity_err": c_model - c_ref,
            "mean_energy_model_kT": u_model / kT,
            "mean_energy_ref_kT": u_ref / kT,
            "heat_capacity_model": c_model,
            "heat_capacity_ref": c_ref,
        }

    point = quantities(np.ones((1, model_sums.shape[0])), np.ones((1, ref_sums.shape[0])))
    w_ref = stats.resample_weights(
        ref_sums.shape[0], n_boot, np.random.default_rng(stats.REFERENCE_SEED)
    )
    if same_frames:
        if len(g) != len(ref_U):
            raise ValueError("thermodynamics: same_frames needs g of the reference's frames")
        w_model = w_ref
    else:
        w_model = stats.resample_weights(model_sums.shape[0], n_boot, rng)
    draws = quantities(w_model, w_ref)
    values = {k: float(v[0]) for k, v in point.items()}
    cis = {k: stats.percentile_ci(d) for k, d in draws.items()}
    return values, cis, draws
