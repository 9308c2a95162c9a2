"""A run's data split and random streams, which depend only on (n_frames, n_train, seed).

The split comes from NumPy seeded with the run's seed, so steps without JAX agree on
it; JAX keys are folded from ``PRNGKey(seed)`` with one tag per use.
"""

from __future__ import annotations

import math

import numpy as np

# fold_in tags so each use of a run's seed draws independent numbers
KEY_INIT, KEY_TRAIN, KEY_SIMULATE = 1, 2, 3


def split_indices(n_frames: int, n_train: int, val_fraction: float, seed: int):
    """Pick ``n_train`` frames of a data set for a run and split them train/validation.

    ``n_train`` is the data budget of a run: frames used for fitting plus those
    held out for early stopping. The same arguments always give the same split,
    so the prior fit and the training of one run see the same frames.

    Returns:
      (train_idx, val_idx): integer arrays, disjoint; val_idx may be empty when
      ``val_fraction`` is 0.
    """
    if not 0 < n_train <= n_frames:
        raise ValueError(
            f"n_train must be in 1..{n_frames} (frames in the data set), got {n_train}"
        )
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    rng = np.random.default_rng([seed, 20_221_212])
    chosen = rng.permutation(n_frames)[:n_train]
    n_val = math.ceil(val_fraction * n_train) if val_fraction > 0 else 0
    n_val = min(n_val, n_train - 1)
    return np.sort(chosen[n_val:]), np.sort(chosen[:n_val])


def budget_shares(n_train: int, n_sets: int) -> list[int]:
    """``n_train`` frames shared over ``n_sets`` data sets (one per temperature) as
    evenly as they go, the remainder to the first: a model trained across
    temperatures gets the same data budget in total as one trained at one."""
    if n_sets < 1:
        raise ValueError("need at least one data set")
    return [n_train // n_sets + (1 if k < n_train % n_sets else 0) for k in range(n_sets)]


def periodic_box(data: dict, meta: dict):
    """The box lengths a periodic data set was sampled in (constant volume), or None."""
    if not meta.get("periodic"):
        return None
    if "box" not in data:
        raise ValueError("the data set is periodic but holds no box")
    lengths = np.diagonal(np.asarray(data["box"]), axis1=-2, axis2=-1)
    return np.asarray(lengths, float).mean(axis=0).tolist()
