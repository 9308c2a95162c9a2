"""The ``fit-prior`` step: the physics prior of one run, fitted on its training split."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cgflow.io import load_dataset, write_json
from cgflow.methods.data import budget_shares, periodic_box, split_indices
from cgflow.models import fit_prior
from cgflow.systems import get_map


def fit_prior_step(study, data_path, n_train: int, seed: int, out: str) -> dict:
    """Fit the configured prior on the training split of run (n_train, seed).

    With ``prior_cv_dihedrals: omit`` a bonded prior has no terms on the dihedrals
    that are the system's collective variables (``system.cv_dihedrals``).

    ``data_path`` may name several CG data sets of one map at different temperatures
    (a model trained across temperatures): the budget ``n_train`` is shared over them
    (``budget_shares``), each is split as a one-temperature run would be, and the
    prior is fitted on the pooled training frames at their mean kT. It is used as a
    temperature-independent energy E(R): bonds and angles Boltzmann-inverted at
    different temperatures give about the same force constants (their variances
    scale with kT), so pooling loses little, and the network, which reads kT,
    carries the temperature dependence.
    """
    paths = [data_path] if isinstance(data_path, (str, Path)) else list(data_path)
    sets = []
    for path in paths:
        data, meta = load_dataset(path, required=("positions", "forces"))
        if "mapping" not in meta or "kT" not in meta:
            raise ValueError(f"{path}: not a CG data set (give the output of cgflow map)")
        sets.append((path, data, meta))
    maps = {m["mapping"]["name"] for _, _, m in sets}
    if len(maps) > 1:
        raise ValueError(f"{[str(p) for p in paths]}: data sets of different maps {sorted(maps)}")
    shares = budget_shares(n_train, len(sets)) if len(sets) > 1 else [n_train]
    positions, fitted_on = [], []
    for (path, data, _), n in zip(sets, shares, strict=True):
        train_idx, _ = split_indices(data["positions"].shape[0], n, study.val_fraction, seed)
        positions.append(data["positions"][train_idx])
        fitted_on.append({"data": str(path), "n_train": n, "n_frames": int(train_idx.size)})
    _, data, meta = sets[0]
    kT = float(np.mean([m["kT"] for _, _, m in sets]))
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
        np.concatenate(positions),
        kT,
        topology,
        periodic_box(data, meta),
    )
    prior["omitted_dihedrals"] = [list(q) for q in omitted]
    if len(sets) == 1:
        prior["fitted_on"] = {**fitted_on[0], "seed": seed}
    else:
        prior["fitted_on"] = {"sets": fitted_on, "n_train": n_train, "seed": seed, "kT": kT}
    write_json(out, prior)
    return prior
