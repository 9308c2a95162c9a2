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
from dataclasses import dataclass
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
from cgflow.provenance import check_same
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


@dataclass(frozen=True)
class TrainRequest:
    """One training, as ``cgflow train`` is asked for it.

    Attributes:
      method: the registered method's name.
      data: the mapped data set, or one per training temperature for methods trained
        across temperatures (the budget ``n_train`` is shared over them).
      prior: the fitted prior's JSON file.
      n_train: frames in the training budget.
      seed: the run's seed (data split, initialisation, training).
      out_dir: where the model, its log and the log's figure go.
      dt: the CG time step, for methods declared ``per_dt``.
      init_model: the start model's folder, for methods declared ``start_from``.
      checkpoint: a file written during training and resumed from.
    """

    method: str
    data: str | Path | tuple
    prior: str | Path
    n_train: int
    seed: int
    out_dir: str | Path
    dt: float | None = None
    init_model: str | Path | None = None
    checkpoint: str | Path | None = None

    @property
    def data_paths(self) -> list:
        return [self.data] if isinstance(self.data, (str, Path)) else list(self.data)


def train(study, request: TrainRequest, log=None) -> ModelDescription:
    """Train ``request.method`` on run (n_train, seed); write the model and its log.

    Methods trained across temperatures read kT (the model's ``network.temperature``)
    and record their data sets in the description (``train_sets``).
    """
    log = log if log is not None else sys.stderr
    method = methods.get(request.method)
    _check_request(study, method, request)
    settings = method.settings(study.methods[request.method])
    check_room(request.out_dir, request.checkpoint, "train")
    frames = training_frames(request.data_paths, request.n_train, study.val_fraction,
                             request.seed, method.aa_energies, system=study.system)  # fmt: skip
    _check_prior(request, frames)
    desc = _description(study, method, settings, request, frames)
    need = settings.sampling_bytes(desc.n_beads, desc.dim, network_width(desc.network))
    if need:
        check_memory(need + frames.nbytes, f"train {method.name}",
                     "its CG samples and the data set")  # fmt: skip
    device = jax_device_info("train", log)
    key = jax.random.PRNGKey(request.seed)
    problem = _problem(study, method, desc, request, frames, key, log)
    out_dir = Path(request.out_dir)
    if problem.start_description is not None and not problem.start_description.usable:
        why = (f"its start model {request.init_model} is unusable: "
               f"{problem.start_description.unusable_reason}")  # fmt: skip
        return _write_unusable(desc, problem.params, why, out_dir, request.checkpoint, log, device)
    try:
        result = method.train(problem, settings, jax.random.fold_in(key, KEY_TRAIN))
    except FloatingPointError as err:  # a diverged training is a result, not a crash
        return _write_unusable(desc, problem.params, str(err), out_dir, request.checkpoint,
                               log, device)  # fmt: skip
    training = {**result.info, "device": device}
    if problem.start_description is not None:
        training["started_from"] = str(request.init_model)
    desc = desc.replace(training=training)
    title = method.name + (f" dt={request.dt:g}" if request.dt is not None else "")
    write_trained(out_dir, desc, result, title, request.checkpoint)
    return desc


def check_room(out_dir, checkpoint, step: str) -> None:
    """Room on disk for a training's model folder and its checkpoint, before it runs."""
    check_output_folder(out_dir, MODEL_BYTES, step)
    if checkpoint:
        check_output_folder(Path(checkpoint).parent, MODEL_BYTES, f"{step} (checkpoint)")


def write_trained(out_dir, desc, result, title: str, checkpoint) -> None:
    """A trained model's folder: its log as CSV and figure, and the model; then the
    checkpoint is spent."""
    out_dir = Path(out_dir)
    write_history(out_dir / "train_log.csv", result.history)
    save_model(out_dir, desc, result.params)
    if result.plot is not None:
        result.plot(result.history, out_dir / "train_log.png", title)
    ckpt.discard(checkpoint)


def _description(study, method, settings, request: TrainRequest, frames) -> ModelDescription:
    """The run's model description; a model trained across temperatures reads kT,
    standardised over the training temperatures."""
    meta = frames.meta
    desc = model_description(study, method, meta, read_json(request.prior), frames.R_train,
                             request.n_train, request.seed,
                             periodic_box(frames.first, meta))  # fmt: skip
    if method.temperatures != "training":
        return desc
    kTs = np.array(frames.kTs)
    temperature = {
        "form": settings.network_temperature_form(),
        "kT_shift": float(kTs.mean()),
        "kT_scale": float(max(kTs.std(), 1e-6 * kTs.mean())),
    }
    return desc.replace(
        kT=float(kTs.mean()),  # where it runs unless told another temperature
        network={**desc.network, "temperature": temperature},
        train_sets=tuple(frames.sets),
    )


def _problem(study, method, desc: ModelDescription, request: TrainRequest, frames, key,
             log) -> Problem:  # fmt: skip
    """The run's training problem: its split, start model and integrator."""
    across = method.temperatures == "training"
    start, start_desc = (
        _start_model(request.init_model, desc) if method.start_from else (None, None)
    )
    integrator = (
        integrator_settings(study.entry["simulation"], request.dt) if method.per_dt else None
    )
    return Problem(
        energy_fn=build_energy(desc),
        params=init_params(desc, jax.random.fold_in(key, KEY_INIT)),
        R_train=frames.R_train,
        F_train=frames.F_train,
        R_val=frames.R_val,
        F_val=frames.F_val,
        masses=np.asarray(desc.bead_masses),
        kT=desc.kT,
        integrator=integrator,
        start=start,
        start_description=start_desc,
        checkpoint=Path(request.checkpoint) if request.checkpoint else None,
        log=log,
        inputs=run_inputs(desc, frames.arrays(), start, request.dt),
        features=cv_features(study.build_system(), frames.meta["mapping"]["name"]),
        free_energy_fn=build_free_energy(desc) if across else None,
        U_train=frames.U_train,
        U_val=frames.U_val,
        kT_train=frames.kT_train if across else None,
        kT_val=frames.kT_val if across else None,
        pairs=frame_pairs_for(desc),
    )


def _check_request(study, method, request: TrainRequest) -> None:
    """The arguments a method needs, before anything is loaded (ValueError)."""
    name, paths, dt, init_model = method.name, request.data_paths, request.dt, request.init_model
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


def _check_prior(request: TrainRequest, frames) -> None:
    """The prior belongs to this run: the data set's system and map (and kT, for one
    data set), and the split (n_train, seed) it was fitted on; a field a prior of an
    older cgflow lacks is not checked (ValueError naming both)."""
    prior = read_json(request.prior)
    data = str(request.data_paths[0])
    fields = ("system", "mapping", "kT") if len(frames.sets) == 1 else ("system", "mapping")
    check_same(str(request.prior), prior, data, frames.meta, fields)
    fitted = prior.get("fitted_on") if isinstance(prior, dict) else None
    split = {k: fitted.get(k) for k in ("n_train", "seed")} if isinstance(fitted, dict) else {}
    asked = {"n_train": request.n_train, "seed": request.seed}
    if any(v is not None and v != asked[k] for k, v in split.items()):
        raise ValueError(
            f"{request.prior} was fitted on the training split of (n_train "
            f"{split['n_train']}, seed {split['seed']}), not this run's (n_train "
            f"{request.n_train}, seed {request.seed}): its frames may be this run's "
            "validation frames"
        )


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
