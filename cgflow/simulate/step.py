"""The ``simulate`` step: load a trained model, run it at one time step, write results."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from cgflow.io import save_dataset, write_json
from cgflow.methods import KEY_SIMULATE, load_cg, run_split
from cgflow.models import interaction_range, load_model
from cgflow.runtime import jax_device_info
from cgflow.simulate.langevin import SimSettings, simulate_langevin


def simulate_step(study, model_dir: str, data_path: str, dt: float, out_dir: str) -> dict:
    """Simulate a trained model at time step ``dt``; write samples.npz and status.json.

    Replicas start from frames of the run's own training split. Bonds of a
    bonded prior are watched for stretching. For molecules the trajectory is also
    written as ``trajectory.h5`` (MDTraj, CG topology), and ``status.json`` gives
    ns/day per replica and summed over replicas.
    """
    device = jax_device_info("simulate")
    energy_fn, params, desc = load_model(model_dir)
    data, meta = load_cg(data_path)
    sim = {k: v for k, v in study.entry["simulation"].items() if k != "dt"}
    settings = SimSettings(dt=float(dt), **sim)
    seed, n_train = desc["seed"], desc["n_train"]
    train_idx, _ = run_split(study, data["positions"].shape[0], n_train, seed)
    key = jax.random.fold_in(jax.random.PRNGKey(seed), KEY_SIMULATE)
    key, pick = jax.random.split(key)
    start = np.asarray(jax.random.choice(pick, train_idx, (settings.n_replicas,)))
    bonds = contacts = None
    if desc["prior"]["type"] == "bonded":
        prior = desc["prior"]
        bonds = (prior["bonds"]["idx"], prior["bonds"]["x0"]) if prior["bonds"]["idx"] else None
        rep = prior["repulsion"]
        contacts = (rep["idx"], rep["sigma"]) if rep["idx"] else None
    frames, status = simulate_langevin(
        energy_fn,
        params,
        data["positions"][start],
        desc["bead_masses"],
        desc["kT"],
        settings,
        key,
        bonds=bonds,
        contacts=contacts,
        box=desc.get("box"),
        cutoff=interaction_range(desc) if desc.get("box") is not None else None,
    )
    n_t, n_rep = frames.shape[:2]
    positions = frames.transpose(1, 0, 2, 3).reshape((n_rep * n_t,) + frames.shape[2:])
    status.update(
        {
            "model": str(model_dir),
            "device": device,
            "time_unit": desc["units"]["time"],
            "frame_order": "replica-major: frame = replica * n_saved + t",
        }
    )
    if desc["units"]["time"] == "ps":
        status["ns_per_day_per_replica"] = status["time_per_day_per_replica"] / 1000.0
        status["ns_per_day_all_replicas"] = status["time_per_day_all_replicas"] / 1000.0
    out_dir = Path(out_dir)
    save_dataset(
        out_dir / "samples.npz",
        {"positions": positions, "replica": np.repeat(np.arange(n_rep), n_t)},
        {
            "kT": desc["kT"],
            "units": desc["units"],
            "dt": float(dt),
            "n_replicas": n_rep,
            "n_saved_per_replica": n_t,
        },
    )
    system = study.build_system()
    if hasattr(system, "cg_topology") and positions.shape[0]:
        from cgflow.mapping.dataset import write_trajectory
        from cgflow.systems import get_map

        top = system.cg_topology(get_map(system, desc["mapping"]))
        write_trajectory(out_dir / "trajectory.h5", positions, top)
    write_json(out_dir / "status.json", status)
    return status
