"""The ``simulate`` step: run a trained model at one time step and write its samples."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np

from cgflow import checkpoint as ckpt
from cgflow.io import check_output_folder, load_dataset, save_dataset, write_json, write_trajectory
from cgflow.methods.data import KEY_SIMULATE, split_indices
from cgflow.models import ModelDescription, interaction_range, load_model
from cgflow.provenance import check_same
from cgflow.runtime import check_memory, jax_device_info
from cgflow.simulate.langevin import CGSystem, simulate_langevin
from cgflow.simulate.settings import (
    integrator_settings,
    network_width,
    run_settings,
    sampling_memory,
)
from cgflow.simulate.status import Round, SimulationStatus, speed
from cgflow.systems import get_map


@dataclass(frozen=True)
class SimulateRequest:
    """One CG simulation, as ``cgflow simulate`` is asked for it.

    Attributes:
      model: the trained model's folder.
      data: the CG data set whose training split the replicas start from (for a model
        trained across temperatures: its share of the budget at that set's kT).
      dt: the CG time step.
      out_dir: where samples.npz, status.json and the trajectory go.
      checkpoint: a file written during the run; a killed run restarted with the same
        settings continues where it was.
      temperature: where to run (default: the model's own kT); a temperature-aware
        model runs at that kT, any other model only with ``transfer``.
      transfer: run a model that does not read kT at another temperature as it is
        (the no-transfer baseline).
    """

    model: str | Path
    data: str | Path
    dt: float
    out_dir: str | Path
    checkpoint: str | Path | None = None
    temperature: float | None = None
    transfer: bool = False


def simulate_step(study, request: SimulateRequest, log=None) -> SimulationStatus:
    """Simulate a trained model at time step ``request.dt``; write samples.npz and
    status.json.

    Replicas start from frames of the run's own training split (a periodic model's
    samples carry the virial pressure of each frame, ``pressure_bar``). Bonds of a bonded
    prior are watched for stretching. For systems with a CG topology the trajectory
    is also written as ``trajectory.h5`` (MDTraj), and ``status.json`` gives ns/day
    per replica and summed over replicas.

    With ``simulation.target_halfwidth``, replicas run in rounds of ``n_replicas``
    until the CG side of the primary metric's CI is that narrow
    (``samples_halfwidth``) or ``max_replicas`` have run; status.json lists the rounds.
    """
    r = request
    log = log if log is not None else sys.stderr
    device = jax_device_info("simulate", log)
    kT = study.build_system().kT(r.temperature) if r.temperature is not None else None
    energy_fn, params, desc = load_model(r.model, kT=kT, transfer=r.transfer)
    if not desc.usable:
        return _write_unusable(desc, r.model, r.out_dir, device, log)
    plan = _plan(study, desc, r.data, r.dt, r.out_dir)
    frames, statuses = _rounds(study, plan, energy_fn, params, r.checkpoint, log)
    status = merged_status(statuses, plan.integrator.dt, plan.run.n_replicas)
    status = _write(study, plan, params, frames, status.replace(model=str(r.model), device=device),
                    r.out_dir, log)  # fmt: skip
    for k in range(plan.run.n_rounds):  # the results are written; the checkpoints are spent
        ckpt.discard(round_checkpoint(r.checkpoint, k))
    return status


@dataclass(frozen=True)
class _Plan:
    """What a simulation runs: the model's description, the data set its replicas
    start from and the frames they may start from (its training split), the
    integrator and run settings, and the run's base random key."""

    desc: ModelDescription
    data: dict
    train_idx: np.ndarray
    integrator: object
    run: object
    dt: float
    base_key: object

    def system(self, energy_fn, params) -> CGSystem:
        """The model as the dynamics run it: its masses, kT and box, and the bonds and
        close contacts of a bonded prior for the blow-up checks."""
        desc = self.desc
        return CGSystem(
            energy_fn,
            params,
            desc.bead_masses,
            desc.kT,
            box=desc.box,
            cutoff=interaction_range(desc) if desc.box is not None else None,
            **_watch(desc.prior),
        )


def _plan(study, desc: ModelDescription, data_path: str, dt: float, out_dir: str) -> _Plan:
    """Check the data set against the model and the run against memory and disk,
    before anything runs."""
    data, data_meta = load_dataset(data_path, required=("positions",))
    mapping = (data_meta.get("mapping") or {}).get("name") if isinstance(data_meta, dict) else None
    if mapping != desc.mapping:
        raise ValueError(
            f"{data_path}: not the CG data set the model was trained on (its map is "
            f"{mapping!r}, the model's {desc.mapping!r}; give the output of cgflow map)"
        )
    check_same(str(data_path), data_meta, "the model", {"system": desc.system}, ("system",))
    block = study.entry["simulation"]
    integrator, run = integrator_settings(block, dt), run_settings(block)
    most = run.n_replicas * run.n_rounds
    n_saved = run.n_steps // run.save_every
    size = n_saved * most * desc.n_beads * desc.dim * 4
    need = sampling_memory(most, n_saved, desc.n_beads, desc.dim,
                           network_width(desc.network))  # fmt: skip
    check_memory(need, "simulate", f"{most} replicas x {n_saved} saved frames")
    check_output_folder(out_dir, 2 * size, "simulate")  # samples and trajectory
    seed, n_train = desc.seed, start_budget(desc, data_meta, data_path)
    train_idx, _ = split_indices(data["positions"].shape[0], n_train, study.val_fraction, seed)
    base_key = jax.random.fold_in(jax.random.PRNGKey(seed), KEY_SIMULATE)
    return _Plan(desc, data, train_idx, integrator, run, float(dt), base_key)


def _rounds(study, plan: _Plan, energy_fn, params, checkpoint, log):
    """Rounds of ``n_replicas`` replicas, each from its own start frames, until the
    CG side of the CI is narrow enough (or one round without a target, or a
    blow-up): the frames (n_saved, replicas, beads, dim) and each round's status."""
    desc, run = plan.desc, plan.run
    rounds, statuses = [], []
    for r in range(run.n_rounds):
        key = plan.base_key if r == 0 else jax.random.fold_in(plan.base_key, r)
        key, pick = jax.random.split(key)
        start = np.asarray(jax.random.choice(pick, plan.train_idx, (run.n_replicas,)))
        frames, status = simulate_langevin(
            plan.system(energy_fn, params),
            plan.data["positions"][start],
            plan.integrator,
            run,
            key,
            log=log,
            checkpoint=round_checkpoint(checkpoint, r),
        )
        rounds.append(frames)
        if run.target_halfwidth is None or not status.stable:
            statuses.append(status)
            break
        width = samples_halfwidth(study, desc, np.concatenate(rounds, 1), plan.data)
        statuses.append(status.replace(ci_halfwidth=width))
        print(f"simulate: round {r + 1}, {(r + 1) * run.n_replicas} replicas: CG side of "
              f"the CI half-width {width:.3g} (target {run.target_halfwidth:g})", file=log,
              flush=True)  # fmt: skip
        if width <= run.target_halfwidth:
            break
    n_kept = min(f.shape[0] for f in rounds)  # a round that blew up saved fewer
    return np.concatenate([f[:n_kept] for f in rounds], axis=1), statuses


def _write(study, plan: _Plan, params, frames: np.ndarray, status: SimulationStatus, out_dir,
           log) -> SimulationStatus:  # fmt: skip
    """samples.npz (replica-major, with a periodic model's virial pressure), the
    MDTraj trajectory of a system with a CG topology, and status.json (the status as
    written)."""
    desc = plan.desc
    n_t, n_rep = frames.shape[:2]
    arrays = replica_major(frames)
    positions = arrays["positions"]
    status = status.replace(
        time_unit=desc.units["time"], frame_order="replica-major: frame = replica * n_saved + t"
    )
    if desc.units["time"] == "ps":
        status = status.replace(
            ns_per_day_per_replica=status.time_per_day_per_replica / 1000.0,
            ns_per_day_all_replicas=status.time_per_day_all_replicas / 1000.0,
        )
    if desc.box is not None and positions.shape[0]:
        from cgflow.simulate.pressure import model_pressure

        arrays["pressure_bar"] = model_pressure(desc, params, positions)
        print(f"simulate: virial pressure {arrays['pressure_bar'].mean():.0f} bar", file=log)
    out_dir = Path(out_dir)
    meta = {"system": desc.system, "mapping": desc.mapping, "kT": desc.kT, "units": desc.units,
            "dt": plan.dt, "n_replicas": n_rep, "n_saved_per_replica": n_t}  # fmt: skip
    status = status.replace(samples_write_id=save_dataset(out_dir / "samples.npz", arrays, meta))
    system = study.build_system()
    if system.has_topology and positions.shape[0]:
        top = system.cg_topology(get_map(system, desc.mapping))
        write_trajectory(out_dir / "trajectory.h5", positions, top)
    write_json(out_dir / "status.json", status.to_json())
    return status


def round_checkpoint(checkpoint: str | None, r: int) -> str | None:
    """Round ``r``'s checkpoint file: the step's own for the first round, one beside
    it for each later one. A round's file is kept until the step ends, so a restart
    redoes at most the last chunk of each round that had finished."""
    return checkpoint if checkpoint is None or r == 0 else f"{checkpoint}.round{r}"


def replica_major(frames: np.ndarray) -> dict[str, np.ndarray]:
    """Frames (n_saved, replicas, beads, dim) as samples: ``positions`` replica-major
    (frame = replica * n_saved + t) and each frame's ``replica``."""
    n_t, n_rep = frames.shape[:2]
    return {
        "positions": frames.transpose(1, 0, 2, 3).reshape((n_rep * n_t,) + frames.shape[2:]),
        "replica": np.repeat(np.arange(n_rep), n_t),
    }


def samples_halfwidth(study, desc: ModelDescription, frames: np.ndarray, data: dict) -> float:
    """Half-width of the CG side of the 95 % CI of the system's primary metric, for
    ``frames`` (n_saved, replicas, beads, dim), scored against the training
    reference ``data`` (the exact profile for 1-D systems; the test reference is for
    scoring alone), with the replicas resampled and the reference whole. Where the
    system's scoring does not separate the sides, the whole CI's."""
    from cgflow.steps.evaluate import Reference, Scoring, score

    scoring = Scoring.of(study, desc.mapping, desc.kT)
    scores = score(scoring, replica_major(frames), Reference(data["positions"]))
    groups, cis, system = scores.groups, scores.cis, scoring.system
    metric = system.primary_metric
    lo, hi = groups.get("ci95_by_side", {}).get("samples", cis)[metric]
    return float((hi - lo) / 2)


def merged_status(statuses: list[SimulationStatus], dt: float,
                  n_replicas: int) -> SimulationStatus:  # fmt: skip
    """One status of the rounds of a run: stable only if every round was; times
    summed; speeds of the replicas that ran at once (``n_replicas`` a round); each
    round's CI half-width under ``rounds``."""
    if len(statuses) == 1 and statuses[0].ci_halfwidth is None:
        return statuses[0]  # one round, no target
    wall = sum(s.wall_time_s for s in statuses)
    return statuses[-1].replace(
        stable=all(s.stable for s in statuses),
        failure=next((s.failure for s in statuses if s.failure), None),
        resumed_at_step=statuses[0].resumed_at_step,
        n_frames_saved=min(s.n_frames_saved for s in statuses),  # per replica
        rounds=tuple(Round((i + 1) * n_replicas, s.ci_halfwidth) for i, s in enumerate(statuses)),
        ci_halfwidth=None,
        **speed(sum(s.steps_done for s in statuses), wall, dt, n_replicas),
    )


def start_budget(desc: ModelDescription, data_meta: dict, data_path) -> int:
    """The n_train whose training split the replicas start from: the run's, or for a
    model trained across temperatures its share at the data set's kT."""
    sets = desc.train_sets
    if not sets:
        return desc.n_train
    for s in sets:
        if np.isclose(float(s["kT"]), float(data_meta["kT"])):
            return int(s["n_train"])
    raise ValueError(
        f"{data_path}: its kT {data_meta['kT']} is none of the model's training "
        f"temperatures {[s['kT'] for s in sets]}: start from one of those data sets"
    )


def _write_unusable(desc: ModelDescription, model_dir, out_dir, device,
                    log) -> SimulationStatus:  # fmt: skip
    """No simulation of a model whose training diverged: no frames, and a status
    that says why (evaluation records the run as unstable)."""
    reason = f"model unusable: {desc.unusable_reason or 'training diverged'}"
    print(f"simulate: {reason}", file=log, flush=True)
    out_dir = Path(out_dir)
    shape = (0, desc.n_beads, desc.dim)
    arrays = {"positions": np.zeros(shape), "replica": np.zeros(0, int)}
    meta = {"system": desc.system, "mapping": desc.mapping, "kT": desc.kT, "units": desc.units,
            "n_replicas": 0, "n_saved_per_replica": 0}  # fmt: skip
    write_id = save_dataset(out_dir / "samples.npz", arrays, meta)
    status = SimulationStatus(stable=False, reason=reason, model=str(model_dir), device=device,
                              samples_write_id=write_id)  # fmt: skip
    write_json(out_dir / "status.json", status.to_json())
    return status


def _watch(prior: dict) -> dict:
    """Bonds and close contacts of a bonded prior, for the blow-up checks."""
    if prior["type"] != "bonded":
        return {}
    bonds, rep = prior["bonds"], prior["repulsion"]
    return {
        "bonds": (bonds["idx"], bonds["x0"]) if bonds["idx"] else None,
        "contacts": (rep["idx"], rep["sigma"]) if rep["idx"] else None,
    }
