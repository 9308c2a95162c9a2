"""The ``evaluate`` step: score one CG simulation (or the reference data itself)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from cgflow.analysis.fes import score_profile, score_surface
from cgflow.io import load_dataset, read_json, save_dataset, write_json
from cgflow.systems import evaluation_settings, get_map

RUN_KEYS = ("system", "mapping", "method", "n_train", "seed", "dt", "temperature", "run_dir")


def score(system, cg_map, settings, positions, kT, reference=None):
    """The system's metrics and curves for CG ``positions``: its collective variables
    against the exact profile (``profile_1d``) or against ``reference`` positions
    (``surface_2d``)."""
    cv = system.cv(cg_map)
    if system.figure_kind == "profile_1d":
        exact = system.exact_profile(kT)
        return score_profile(cv(positions)[:, 0], exact, kT, **settings.to_dict())
    if reference is None:
        raise ValueError(f"{system.type}: scoring needs reference positions")
    return score_surface(cv(positions), cv(reference), names=system.cv_names, **settings.to_dict())


def evaluate_step(
    study,
    samples_path: str,
    run: dict,
    out: str,
    status_path: str | None = None,
    reference_path: str | None = None,
    halves: bool = False,
) -> dict:
    """Compute the system's metrics for the positions in ``samples_path``.

    The comparison data are the positions in ``reference_path`` or, with
    ``halves``, the first half of the samples themselves (the second half is
    scored): a reference data set scored that way shows its own noise floor.
    Systems with an exact answer (the double well) need neither.

    Writes ``out`` (metrics.json: the run's identity, its metrics, and the system's
    primary metric and figure kind) and ``curves.npz`` beside it (free-energy
    profiles for figures). An unstable simulation gets ``stable = 0`` and NaN for
    every other metric.
    """
    missing = [k for k in RUN_KEYS if k not in run]
    if missing:
        raise ValueError(f"run identity lacks {missing}")
    system = study.build_system()
    cg_map = get_map(system, run["mapping"])
    settings = evaluation_settings(system, study.entry)
    samples, meta = load_dataset(samples_path, required=("positions",))
    status = read_json(status_path) if status_path else {"stable": True}
    positions = samples["positions"]
    reference = None
    if halves:
        half = positions.shape[0] // 2
        reference, positions = positions[:half], positions[half:]
    elif reference_path:
        reference = load_dataset(reference_path, required=("positions",))[0]["positions"]
    metrics: dict[str, float] = {"stable": float(bool(status["stable"]))}
    curves: dict[str, np.ndarray] = {}
    kT = meta["kT"]
    if status["stable"] and positions.shape[0] > 0:
        values, curves = score(system, cg_map, settings, positions, kT, reference)
        metrics.update(values)
        if halves:  # draw the whole data set, not the half it was compared with
            whole = samples["positions"]
            curves = score(system, cg_map, settings, whole, kT, whole)[1]
    else:
        metrics.update({k: math.nan for k in system.metric_names})
    record = {
        "run": run,
        "metrics": metrics,
        "primary_metric": system.primary_metric,
        "figure_kind": system.figure_kind,
    }
    write_json(out, record)
    save_dataset(Path(out).with_name("curves.npz"), curves or {"empty": np.zeros(0)}, {"run": run})
    return metrics
