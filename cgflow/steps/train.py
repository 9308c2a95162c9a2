"""The ``train`` step: one run's model by one registered method.

Builds the model description and the run's :class:`~cgflow.methods.base.Problem`
(data split, prior, start model, integrator) the same way for every method, hands it
to the method's ``train``, and writes the model, its log and the log's figure.

Random numbers: the data split comes from NumPy seeded with the run's seed (so steps
without JAX agree on it); parameter initialisation and training draw from JAX keys
folded from the same seed.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

import jax
import numpy as np

from cgflow import checkpoint as ckpt
from cgflow import methods
from cgflow.analysis.training import plot_diverged
from cgflow.io import atomic_write, check_output_folder, read_json
from cgflow.methods.base import Problem
from cgflow.methods.data import KEY_INIT, KEY_TRAIN, periodic_box, training_frames
from cgflow.models import (
    ModelDescription,
    build_energy,
    build_free_energy,
    init_params,
    load_model,
    save_model,
)
from cgflow.models.pairs import frame_pairs_for
from cgflow.runtime import check_memory, jax_device_info
from cgflow.simulate.settings import integrator_settings, network_width
from cgflow.systems import cv_features

# what a start model must share with the run it seeds
SHARED_WITH_START = ("system", "mapping", "n_train", "seed", "network", "prior")


def model_description(study, method, meta: dict, prior: dict, R_train, n_train: int, seed: int,
                      box=None) -> ModelDescription:  # fmt: skip
    """The description that rebuilds a run's energy function."""
    net = dict(study.entry["network"]) if method.network else {"type": "none"}
    if net["type"] == "mlp":  # the MLP sees coordinates standardised on the training split
        net["input_shift"] = R_train.mean(axis=0).tolist()
        net["input_scale"] = np.maximum(R_train.std(axis=0), 1e-6).tolist()
    return ModelDescription(
        system=study.system,
        mapping=meta["mapping"]["name"],
        kT=meta["kT"],
        n_beads=int(R_train.shape[1]),
        dim=int(R_train.shape[2]),
        bead_masses=tuple(meta["mapping"]["bead_masses"]),
        species_names=tuple(meta["mapping"]["species_names"]),
        species_index=tuple(meta["mapping"]["species_index"]),
        prior=prior,
        network=net,
        method=method.name,
        n_train=n_train,
        seed=seed,
        units=meta["units"],
        box=None if box is None else tuple(box),
    )


MODEL_BYTES = 20_000_000
"""Room a training needs for its model, log, figure and checkpoint (a generous bound
for the networks cgflow builds)."""


def train(study, method_name: str, data_path: str, prior_path: str, n_train: int, seed: int,
          out_dir: str, dt: float | None = None, init_model: str | None = None,
          checkpoint: str | None = None, log=None) -> dict:  # fmt: skip
    """Train ``method_name`` on run (n_train, seed); write the model and its training log.

    Methods declared ``per_dt`` take the CG time step ``dt`` they train at; those
    declared ``start_from`` take that method's model folder ``init_model``. A
    ``checkpoint`` file is written during training and resumed from. Methods trained
    across temperatures take one data set per training temperature (``data_path`` a
    list): the budget ``n_train`` is shared over them, the model reads kT (its
    ``network.temperature``), and its description records the sets (``train_sets``).
    """
    log = log if log is not None else sys.stderr
    method = methods.get(method_name)
    paths = [data_path] if isinstance(data_path, (str, Path)) else list(data_path)
    _check_request(study, method, paths, dt, init_model)
    across = method.temperatures == "training"
    settings = method.settings(study.methods[method_name])
    check_output_folder(out_dir, MODEL_BYTES, "train")
    if checkpoint:
        check_output_folder(Path(checkpoint).parent, MODEL_BYTES, "train (checkpoint)")
    frames = training_frames(paths, n_train, study.val_fraction, seed, method.aa_energies)
    meta, data = frames.meta, frames.first
    desc = model_description(study, method, meta, read_json(prior_path), frames.R_train,
                             n_train, seed, periodic_box(data, meta))  # fmt: skip
    if across:
        kTs = np.array(frames.kTs)
        temperature = {
            "form": getattr(settings, "temperature_form", "input"),
            "kT_shift": float(kTs.mean()),
            "kT_scale": float(max(kTs.std(), 1e-6 * kTs.mean())),
        }
        desc = desc.replace(
            kT=float(kTs.mean()),  # where it runs unless told another temperature
            network={**desc.network, "temperature": temperature},
            train_sets=tuple(frames.sets),
        )
    if hasattr(settings, "memory_bytes"):  # methods that sample say what that takes
        width = network_width(desc.network)
        need = settings.memory_bytes(desc.n_beads, desc.dim, width) + frames.nbytes
        check_memory(need, f"train {method_name}", "its CG samples and the data set")
    device = jax_device_info("train", log)
    energy_fn = build_energy(desc)
    key = jax.random.PRNGKey(seed)
    start, start_desc = _start_model(init_model, desc) if method.start_from else (None, None)
    problem = Problem(
        energy_fn=energy_fn,
        params=init_params(desc, jax.random.fold_in(key, KEY_INIT)),
        R_train=frames.R_train,
        F_train=frames.F_train,
        R_val=frames.R_val,
        F_val=frames.F_val,
        masses=np.asarray(desc.bead_masses),
        kT=desc.kT,
        integrator=integrator_settings(study.entry["simulation"], dt) if method.per_dt else None,
        start=start,
        start_description=start_desc,
        checkpoint=Path(checkpoint) if checkpoint else None,
        log=log,
        inputs=run_inputs(desc, frames.arrays(), start, dt),
        features=cv_features(study.build_system(), meta["mapping"]["name"]),
        free_energy_fn=build_free_energy(desc) if across else None,
        U_train=frames.U_train,
        U_val=frames.U_val,
        kT_train=frames.kT_train if across else None,
        kT_val=frames.kT_val if across else None,
        pairs=frame_pairs_for(desc),
    )
    out_dir = Path(out_dir)
    if start_desc is not None and not start_desc.usable:
        why = f"its start model {init_model} is unusable: {start_desc.unusable_reason}"
        return _write_unusable(desc, problem.params, why, out_dir, checkpoint, log, device)
    try:
        result = method.train(problem, settings, jax.random.fold_in(key, KEY_TRAIN))
    except FloatingPointError as err:  # a diverged training is a result, not a crash
        return _write_unusable(desc, problem.params, str(err), out_dir, checkpoint, log, device)
    training = {**result.info, "device": device}
    if start_desc is not None:
        training["started_from"] = str(init_model)
    desc = desc.replace(training=training)
    write_history(out_dir / "train_log.csv", result.history)
    save_model(out_dir, desc, result.params)
    if result.plot is not None:
        title = f"{method_name}" + (f" dt={dt:g}" if dt is not None else "")
        result.plot(result.history, out_dir / "train_log.png", title)
    ckpt.discard(checkpoint)  # the model is written; the checkpoint is spent
    return desc


def _check_request(study, method, paths: list, dt, init_model) -> None:
    """The arguments a method needs, before anything is loaded (ValueError)."""
    name = method.name
    if name not in study.methods:
        raise ValueError(f"method {name!r} is not configured in config.methods")
    if method.per_dt and dt is None:
        raise ValueError(f"method {name!r} trains at a CG time step: give --dt")
    if method.start_from and not init_model:
        raise ValueError(
            f"method {name!r} starts from a {method.start_from} model: give --init-model"
        )
    if not method.trained:
        raise ValueError(
            f"method {name!r} trains nothing: it uses the {method.model_of} model "
            "of the nearest training temperature"
        )
    if method.temperatures == "training" and len(paths) < 2:
        raise ValueError(
            f"method {name!r} trains across temperatures: give one --data per "
            f"training temperature (at least two), got {len(paths)}"
        )
    if method.temperatures != "training" and len(paths) != 1:
        raise ValueError(f"method {name!r} trains at one temperature: give one --data")


def run_inputs(desc: ModelDescription, frames: tuple, start, dt) -> str:
    """Digest of what a training's result depends on besides its settings: the model
    description (prior, network, seed, n_train, species), the arrays of its split
    (frames, forces, and energies and temperatures where used), the start model's
    parameters and the time step. A checkpoint is bound to it, so a rerun after an
    upstream change starts afresh."""
    start_digest = ckpt.array_digest(start) if start is not None else None
    return ckpt.fingerprint(desc.to_json(), ckpt.array_digest(*frames), start_digest, dt)


def _write_unusable(desc: ModelDescription, params, reason: str, out_dir: Path, checkpoint, log,
                    device: dict) -> dict:  # fmt: skip
    """Record a training that diverged: a model marked ``usable: false`` with the
    reason (its parameters are the initial ones, kept only so the folder is complete;
    simulation and evaluation record the run as unstable), a one-row log, and no
    checkpoint (resuming it would diverge again)."""
    print(f"train: {reason}; the model is recorded as unusable", file=log, flush=True)
    desc = desc.replace(usable=False, unusable_reason=reason,
                        training={"diverged": True, "device": device})  # fmt: skip
    write_history(out_dir / "train_log.csv", [{"diverged": 1, "reason": reason}])
    plot_diverged(out_dir / "train_log.png", desc.method, reason)
    save_model(out_dir, desc, params)
    ckpt.discard(checkpoint)
    return desc


def _start_model(folder: str, desc: ModelDescription):
    """Parameters and description of the start model, checked to belong to this run."""
    _, params, start_desc = load_model(folder)
    for key in SHARED_WITH_START:
        if getattr(start_desc, key) != getattr(desc, key):
            raise ValueError(
                f"start model {folder} has another {key} than this run "
                f"({getattr(start_desc, key)!r} vs {getattr(desc, key)!r})"
            )
    return params, start_desc


def write_history(path: Path, history: list[dict]) -> None:
    """The training log as CSV, one row per check."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(history[0]))
    writer.writeheader()
    writer.writerows(history)
    atomic_write(path, lambda fh: fh.write(text.getvalue().encode()))
