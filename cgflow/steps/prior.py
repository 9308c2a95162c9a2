"""The ``fit-prior`` step: the physics prior of one run, fitted on its training split."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cgflow.io import write_json
from cgflow.methods.data import periodic_box, training_frames
from cgflow.models import fit_prior, network_range
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
    frames = training_frames(paths, n_train, study.val_fraction, seed, system=study.system)
    meta, data = frames.meta, frames.first
    kT = float(np.mean(frames.kTs))
    topology = meta.get("cg_topology")
    omitted = []
    if study.entry.get("prior_cv_dihedrals", "fit") == "omit" and topology:
        system = study.build_system()
        omitted = system.cv_dihedrals(get_map(system, meta["mapping"]["name"]))
        drop = {tuple(q) for q in omitted} | {tuple(q[::-1]) for q in omitted}
        dihedrals = [q for q in topology.get("dihedrals", []) if tuple(q) not in drop]
        topology = {**topology, "dihedrals": dihedrals}
    box = periodic_box(data, meta)
    # in a box, a pair prior ends where the network's neighbour list does
    network = study.entry.get("network", {"type": "none"})
    prior = fit_prior(
        study.entry["prior"],
        frames.R_train,
        kT,
        topology,
        box,
        meta["mapping"].get("species_index"),
        cutoff=network_range(network) if box is not None else None,
    )
    prior["omitted_dihedrals"] = [list(q) for q in omitted]
    prior["system"], prior["mapping"] = study.system, meta["mapping"]["name"]
    fitted_on = [
        {"data": f["data"], "n_train": f["n_train"],
         "n_frames": int(np.sum(frames.kT_train == f["kT"]))}
        for f in frames.sets
    ]  # fmt: skip
    if len(fitted_on) == 1:
        prior["fitted_on"] = {**fitted_on[0], "seed": seed}
    else:
        prior["fitted_on"] = {"sets": fitted_on, "n_train": n_train, "seed": seed, "kT": kT}
    write_json(out, prior)
    return prior
