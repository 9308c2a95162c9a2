"""The fitted prior alone, no network and nothing to train: the baseline a learned
model has to beat. Its log records how well the prior's forces match the data."""

from __future__ import annotations

import math

import jax

from cgflow.methods.base import Problem, Trained
from cgflow.methods.fm import force_loss_fn
from cgflow.methods.options import PriorSettings

SETTINGS = PriorSettings  # defined in cgflow.methods.options, which imports no JAX


def train(problem: Problem, settings: PriorSettings, key) -> Trained:
    """Nothing to fit: the force error of the prior on the training and held-out frames."""
    del settings, key
    p = problem
    loss = jax.jit(force_loss_fn(p.energy_fn))
    val = float(loss(p.params, p.R_val, p.F_val)) if p.R_val.shape[0] else math.nan
    row = {
        "step": 0,
        "train_loss": float(loss(p.params, p.R_train, p.F_train)),
        "val_loss": val,
        "wall_time_s": 0.0,
    }
    info = {"n_fit": int(p.R_train.shape[0]), "n_val": int(p.R_val.shape[0])}
    return Trained(p.params, [row], info)
