"""The ``sample`` step: the all-atom reference of a system at one temperature."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from cgflow.io import check_output_folder, load_dataset, save_dataset, write_trajectory
from cgflow.reference.openmm_sampler import sample_openmm
from cgflow.runtime import check_memory
from cgflow.systems import reference_settings, test_reference_settings


def run_path(out: str | Path, k: int) -> Path:
    """Where run ``k`` of a pooled reference ``out`` is written: ``runs/<k>/`` beside it."""
    out = Path(out)
    return out.parent / "runs" / str(k) / out.name


def sample_step(study, temperature: float, out: str, log=None, part: str = "train",
                run: int | None = None, pool: list[str] | None = None) -> dict:  # fmt: skip
    """Sample the AA reference of ``study``'s system at ``temperature``; write ``out``.

    ``part`` is ``train`` (the reference models learn from) or ``test`` (the same
    sampler with an independent seed, as long as the entry's ``test_reference`` block
    says, :func:`cgflow.systems.test_reference_settings`: models are scored on it).
    ``out`` (.npz) holds ``positions`` and ``forces`` (frames, atoms, dim) and ``energies``
    (frames,); its JSON metadata holds kT, units, the sampler and ``part``.

    An MD reference of ``n_runs`` > 1 independent runs is pooled: with ``run`` = k,
    only run k is sampled into ``out`` (a DAG job); with ``pool``, the runs' data sets
    (in run order) are joined into ``out`` (``pool_runs``); with neither, each run is
    sampled in turn into :func:`run_path` and then joined.
    """
    log = log if log is not None else sys.stderr
    if part not in ("train", "test"):
        raise ValueError(f"part must be train or test, not {part!r}")
    system = study.build_system()
    settings_of = test_reference_settings if part == "test" else reference_settings
    ref = settings_of(system, study.entry)
    temperature = float(temperature)
    n_runs = ref.n_runs
    if (run is not None or pool) and n_runs == 1:
        raise ValueError(f"{study.system}: its {part} reference is one run (n_runs 1); "
                         "--run and --pool are for references of several")  # fmt: skip
    if pool:
        if len(pool) != n_runs:
            raise ValueError(f"{study.system}: its {part} reference pools {n_runs} runs, "
                             f"got {len(pool)} data sets")  # fmt: skip
        return pool_runs(pool, out, ref, log)
    if n_runs > 1 and run is None:
        paths = [run_path(out, k) for k in range(n_runs)]
        for k, path in enumerate(paths):
            if not path.is_file():
                _sample_one(system, ref.run(k), temperature, path, log, part, k)
        return pool_runs(paths, out, ref, log)
    if run is not None:
        return _sample_one(system, ref.run(run), temperature, out, log, part, run)
    return _sample_one(system, ref, temperature, out, log, part)


def _sample_one(system, ref, temperature: float, out, log, part: str, run: int | None = None):
    if system.reference_kind == "openmm":
        setup = system.openmm_setup(ref.hydrogen_mass_amu)
        # positions and forces (float32) and energies (float64) of the solute
        size = ref.n_frames * (len(setup.solute) * 3 * 4 * 2 + 8)
        check_output_folder(Path(out).parent, size, "sample")
        # the frames in memory, a checkpoint's copy and the npz buffer
        check_memory(3 * size, "sample", f"{ref.n_frames} frames of {len(setup.solute)} atoms")
        description = {**system.describe(), "part": part}
        if run is not None:
            description["run"] = run
        return sample_openmm(setup, temperature, ref, out, log, description)
    kT = system.kT(temperature)
    arrays = system.sample_exact(kT, ref)
    meta = {
        "system": system.describe(),
        "kT": kT,
        "temperature": temperature,
        "units": system.units,
        "sampler": "exact (independent samples)",
        "n_frames": int(arrays["positions"].shape[0]),
        "reference": ref.to_dict(),
        "part": part,
    }
    save_dataset(out, arrays, meta)
    print(f"sample: {meta['n_frames']} exact samples at kT = {kT}", file=log)
    return meta


POOLED = ("positions", "forces", "energies", "box", "temperature", "pressure_bar")
"""The per-frame arrays of an MD data set that pooling joins."""


def pool_runs(paths, out, ref, log=None) -> dict:
    """Join the data sets of a reference's independent runs (``paths``, in run order)
    into ``out``: the frames one run after another, ``run`` (frames,) naming each
    frame's run, the runs' MDTraj trajectories joined likewise, and metadata with the
    pooled settings ``ref``, the total frame count, the mean ns/day and each run's
    seed, speed and platform under ``runs``."""
    import mdtraj

    log = log if log is not None else sys.stderr
    found = [load_dataset(p, required=("positions", "forces", "energies")) for p in paths]
    metas = [meta for _, meta in found]
    temps = {round(float(m["temperature"]), 6) for m in metas}
    if len(temps) != 1:
        raise ValueError(f"the runs to pool were sampled at different temperatures: {temps}")
    keys = [k for k in POOLED if all(k in arrays for arrays, _ in found)]
    arrays = {k: np.concatenate([a[k] for a, _ in found]) for k in keys}
    lengths = [a["positions"].shape[0] for a, _ in found]
    arrays["run"] = np.repeat(np.arange(len(found)), lengths).astype(np.int32)
    check_output_folder(Path(out).parent, sum(a.nbytes for a in arrays.values()), "sample")
    speeds = [m.get("ns_per_day", np.nan) for m in metas]
    meta = {
        **metas[0],
        "n_frames": int(sum(lengths)),
        "ns_per_day": float(np.nanmean(speeds)) if np.isfinite(speeds).any() else None,
        "md": ref.to_dict(),
        "runs": [
            {
                "path": str(p),
                "frames": n,
                "seed": m["md"]["seed"],
                "ns_per_day": m.get("ns_per_day"),
                "platform": m.get("platform"),
                "resumed_from_frame": m.get("resumed_from_frame"),
            }
            for p, n, m in zip(paths, lengths, metas, strict=True)
        ],  # fmt: skip
    }
    meta["system"] = {k: v for k, v in metas[0]["system"].items() if k != "run"}
    meta.pop("resumed_from_frame", None)
    trajectories = [Path(p).with_suffix(".h5") for p in paths]
    if all(t.is_file() for t in trajectories):
        joined = mdtraj.join([mdtraj.load(str(t)) for t in trajectories], check_topology=True)
        write_trajectory(Path(out).with_suffix(".h5"), joined.xyz, joined.topology, joined.time)
    save_dataset(out, arrays, meta)
    print(f"sample: pooled {len(found)} runs, {sum(lengths)} frames ({lengths})", file=log)
    return meta
