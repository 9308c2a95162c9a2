"""Score one CG simulation (or the reference data itself) against the reference."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from cgflow.io import load_dataset, read_json, save_dataset, write_json

RUN_KEYS = ("system", "mapping", "method", "n_train", "seed", "dt", "temperature", "run_dir")


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

    Writes ``out`` (metrics.json: the run's identity and its metrics) and
    ``curves.npz`` beside it (free-energy profiles for figures). An unstable
    simulation gets ``stable = 0`` and NaN for every other metric.
    """
    missing = [k for k in RUN_KEYS if k not in run]
    if missing:
        raise ValueError(f"run identity lacks {missing}")
    system = study.build_system()
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
    if status["stable"] and positions.shape[0] > 0:
        values, curves = system.evaluate(
            positions,
            meta["kT"],
            reference=reference,
            mapping=run["mapping"],
            **study.entry["evaluation"],
        )
        metrics.update(values)
        if halves:  # draw the whole data set, not the half it was compared with
            curves = system.evaluate(
                samples["positions"],
                meta["kT"],
                reference=samples["positions"],
                mapping=run["mapping"],
                **study.entry["evaluation"],
            )[1]
    else:
        metrics.update({k: math.nan for k in system.metric_names})
    write_json(out, {"run": run, "metrics": metrics})
    save_dataset(Path(out).with_name("curves.npz"), curves or {"empty": np.zeros(0)}, {"run": run})
    return metrics
