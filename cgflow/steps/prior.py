"""The ``fit-prior`` step: the physics prior of one run, fitted on its training split."""

from __future__ import annotations

from cgflow.io import load_dataset, write_json
from cgflow.methods.data import periodic_box, split_indices
from cgflow.models import fit_prior
from cgflow.systems import get_map


def fit_prior_step(study, data_path: str, n_train: int, seed: int, out: str) -> dict:
    """Fit the configured prior on the training split of run (n_train, seed).

    With ``prior_cv_dihedrals: omit`` a bonded prior has no terms on the dihedrals
    that are the system's collective variables (``system.cv_dihedrals``).
    """
    data, meta = load_dataset(data_path, required=("positions", "forces"))
    if "mapping" not in meta or "kT" not in meta:
        raise ValueError(f"{data_path}: not a CG data set (give the output of cgflow map)")
    train_idx, _ = split_indices(data["positions"].shape[0], n_train, study.val_fraction, seed)
    topology = meta.get("cg_topology")
    omitted = []
    if study.entry.get("prior_cv_dihedrals", "fit") == "omit" and topology:
        system = study.build_system()
        omitted = system.cv_dihedrals(get_map(system, meta["mapping"]["name"]))
        drop = {tuple(q) for q in omitted} | {tuple(q[::-1]) for q in omitted}
        dihedrals = [q for q in topology.get("dihedrals", []) if tuple(q) not in drop]
        topology = {**topology, "dihedrals": dihedrals}
    prior = fit_prior(
        study.entry["prior"],
        data["positions"][train_idx],
        meta["kT"],
        topology,
        periodic_box(data, meta),
    )
    prior["omitted_dihedrals"] = [list(q) for q in omitted]
    prior["fitted_on"] = {
        "data": str(data_path),
        "n_train": n_train,
        "seed": seed,
        "n_frames": int(train_idx.size),
    }
    write_json(out, prior)
    return prior
