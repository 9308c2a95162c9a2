"""Training methods. Each trains the shared model ``energy_fn(params, R)``.

Random numbers: the data split comes from NumPy seeded with the run's seed
(so steps without JAX agree on it); parameter initialisation and shuffling come
from JAX keys folded from the same seed.
"""

from __future__ import annotations

import csv
from pathlib import Path

import jax
import numpy as np

from cgflow.io import load_dataset, read_json, write_json
from cgflow.method_settings import METHODS, RE_METHODS
from cgflow.methods.data import split_indices
from cgflow.methods.fm import FMSettings, force_loss_fn, train_fm
from cgflow.models import build_energy, fit_prior, init_params, save_model
from cgflow.runtime import jax_device_info

# fold_in tags so each use of a run's seed draws independent numbers
KEY_INIT, KEY_TRAIN, KEY_SIMULATE = 1, 2, 3


def load_cg(path):
    return load_dataset(path, required=("positions", "forces"))


def run_split(study, n_frames: int, n_train: int, seed: int):
    return split_indices(n_frames, n_train, study.val_fraction, seed)


def fit_prior_step(study, data_path: str, n_train: int, seed: int, out: str) -> dict:
    """Fit the configured prior on the training split of run (n_train, seed)."""
    data, meta = load_cg(data_path)
    train_idx, _ = run_split(study, data["positions"].shape[0], n_train, seed)
    prior = fit_prior(
        study.entry["prior"], data["positions"][train_idx], meta["kT"], meta.get("cg_topology")
    )
    prior["fitted_on"] = {
        "data": str(data_path),
        "n_train": n_train,
        "seed": seed,
        "n_frames": int(train_idx.size),
    }
    write_json(out, prior)
    return prior


def train(
    study,
    method: str,
    data_path: str,
    prior_path: str,
    n_train: int,
    seed: int,
    out_dir: str,
    dt: float | None = None,
    init_model: str | None = None,
    checkpoint: str | None = None,
) -> dict:
    """Train ``method`` on run (n_train, seed); write the model and its training log.

    RE methods also take the CG time step ``dt`` they train at, a ``checkpoint``
    file to resume from, and for ``fm_re`` the FM model folder ``init_model``.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; allowed: {list(METHODS)}")
    if method not in study.methods:
        raise ValueError(f"method {method!r} is not configured in config.methods")
    if method in RE_METHODS and dt is None:
        raise ValueError(f"method {method!r} trains at a CG time step: give --dt")
    if method == "fm_re" and not init_model:
        raise ValueError("method 'fm_re' starts from an FM model: give --init-model")
    data, meta = load_cg(data_path)
    prior = read_json(prior_path)
    train_idx, val_idx = run_split(study, data["positions"].shape[0], n_train, seed)
    R, F = data["positions"], data["forces"]
    net = dict(study.entry["network"]) if method != "prior" else {"type": "none"}
    if net["type"] == "mlp":  # the MLP sees coordinates standardised on the training split
        R_tr = R[train_idx]
        net["input_shift"] = R_tr.mean(axis=0).tolist()
        net["input_scale"] = np.maximum(R_tr.std(axis=0), 1e-6).tolist()
    desc = {
        "system": study.system,
        "mapping": meta["mapping"]["name"],
        "kT": meta["kT"],
        "n_beads": int(R.shape[1]),
        "dim": int(R.shape[2]),
        "bead_masses": meta["mapping"]["bead_masses"],
        "species_names": meta["mapping"]["species_names"],
        "species_index": meta["mapping"]["species_index"],
        "prior": prior,
        "network": net,
        "method": method,
        "n_train": n_train,
        "seed": seed,
        "units": meta["units"],
    }
    device = jax_device_info("train")
    energy_fn = build_energy(desc)
    key = jax.random.PRNGKey(seed)
    params = init_params(desc, jax.random.fold_in(key, KEY_INIT))
    if method == "fm":
        settings = FMSettings.from_dict(study.methods["fm"])
        params, history = train_fm(
            energy_fn,
            params,
            (R[train_idx], F[train_idx]),
            (R[val_idx], F[val_idx]),
            settings,
            jax.random.fold_in(key, KEY_TRAIN),
        )
        desc["training"] = {
            "settings": vars(settings),
            "checks": len(history),
            "best_val_loss": min(h["val_loss"] for h in history),
            "n_fit": int(train_idx.size),
            "n_val": int(val_idx.size),
        }
    elif method in RE_METHODS:
        params, history = _train_re_run(
            study,
            method,
            desc,
            energy_fn,
            params,
            (R[train_idx], R[val_idx]),
            dt,
            init_model,
            checkpoint,
            key,
        )
        val = [h["val_loss"] for h in history]
        desc["training"] = {
            "settings": study.methods[method],
            "dt": float(dt),
            "updates": len(history),
            "resimulations": int(sum(h["resimulated"] for h in history)),
            "final_loss": history[-1]["loss"],
            # the parameters kept: the last, or those before the update with the
            # lowest held-out S_rel
            "kept_update": (
                int(np.nanargmin(val))
                if val_idx.size and study.methods[method].get("keep") == "best_held_out"
                else len(history)
            ),
            "n_fit": int(train_idx.size),
            "n_val": int(val_idx.size),
            "started_from": str(init_model) if init_model else "prior",
            "timing": re_timing(history),
        }
    else:  # prior only: record how well its forces match, nothing to fit
        loss = jax.jit(force_loss_fn(energy_fn))
        history = [
            {
                "step": 0,
                "train_loss": float(loss(params, R[train_idx], F[train_idx])),
                "val_loss": float(loss(params, R[val_idx], F[val_idx]))
                if val_idx.size
                else float("nan"),
                "wall_time_s": 0.0,
            }
        ]
        desc["training"] = {"n_fit": int(train_idx.size), "n_val": int(val_idx.size)}
    desc["training"]["device"] = device
    out_dir = Path(out_dir)
    _write_history(out_dir / "train_log.csv", history)
    save_model(out_dir, desc, params)
    if method in RE_METHODS:
        from cgflow.analysis.training import plot_re_log

        plot_re_log(history, out_dir / "train_log.png", f"{method} dt={dt:g}")
        if checkpoint and Path(checkpoint).exists():
            Path(checkpoint).unlink()  # the model is written; the checkpoint is spent
    return desc


def _train_re_run(study, method, desc, energy_fn, params, R_split, dt, init_model, ckpt, key):
    """RE from the prior (``re``) or from the run's FM model (``fm_re``), on the
    training frames, keeping the parameters best on the validation frames."""
    R_train, R_val = R_split
    from cgflow.methods.re import RESettings, train_re
    from cgflow.models import load_model
    from cgflow.simulate.langevin import SimSettings

    settings = RESettings.from_dict(study.methods[method], method)
    if method == "fm_re":
        _, params, fm_desc = load_model(init_model)
        for key_ in ("system", "mapping", "n_train", "seed", "network", "prior"):
            if fm_desc[key_] != desc[key_]:
                raise ValueError(
                    f"fm_re: FM model {init_model} has another {key_} than this run "
                    f"({fm_desc[key_]!r} vs {desc[key_]!r})"
                )
    sim_block = {k: v for k, v in study.entry["simulation"].items() if k != "dt"}
    sim = SimSettings(dt=float(dt), **sim_block)
    return train_re(
        energy_fn,
        params,
        R_train,
        R_train,
        desc["bead_masses"],
        desc["kT"],
        settings,
        sim,
        jax.random.fold_in(key, KEY_TRAIN),
        checkpoint=ckpt,
        R_val=R_val,
    )


def re_timing(history: list[dict]) -> dict:
    """Wall time per RE update and the share of it spent simulating (vs reweighting
    and the gradient), over the updates after the first (which also compiles)."""
    if len(history) < 2:
        return {}
    wall = history[-1]["wall_time_s"] - history[0]["wall_time_s"]
    sim = sum(h["sim_time_s"] for h in history[1:])
    n = len(history) - 1
    return {
        "updates_timed": n,
        "wall_per_update_s": wall / n,
        "simulating_per_update_s": sim / n,
        "simulating_share": sim / wall if wall > 0 else float("nan"),
        "first_update_s": history[0]["wall_time_s"],
    }


def _write_history(path: Path, history: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
