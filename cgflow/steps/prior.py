"""The ``fit-prior`` step: the physics prior of one run, fitted on its training split."""

from __future__ import annotations

from cgflow.io import load_dataset, write_json
from cgflow.methods.data import periodic_box, split_indices
from cgflow.models import fit_prior


def fit_prior_step(study, data_path: str, n_train: int, seed: int, out: str) -> dict:
    """Fit the configured prior on the training split of run (n_train, seed)."""
    data, meta = load_dataset(data_path, required=("positions", "forces"))
    train_idx, _ = split_indices(data["positions"].shape[0], n_train, study.val_fraction, seed)
    prior = fit_prior(
        study.entry["prior"],
        data["positions"][train_idx],
        meta["kT"],
        meta.get("cg_topology"),
        periodic_box(data, meta),
    )
    prior["fitted_on"] = {
        "data": str(data_path),
        "n_train": n_train,
        "seed": seed,
        "n_frames": int(train_idx.size),
    }
    write_json(out, prior)
    return prior
