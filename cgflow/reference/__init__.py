"""Reference ("all-atom") sampling: exact samplers for toy systems, OpenMM for molecules."""

from __future__ import annotations

from cgflow.io import save_dataset


def sample_reference(study, temperature: float, out: str) -> dict:
    """Sample the AA reference of ``study``'s system at ``temperature``; write ``out``.

    Writes ``out`` (.npz with ``positions``, ``forces`` (frames, atoms, dim),
    ``energies`` (frames,)) and its JSON metadata (kT, units, sampler).
    """
    system = study.build_system()
    ref = study.entry["reference"]
    kT = float(temperature)  # reduced units: the temperature is kT
    arrays = system.sample_reference(kT, ref["n_samples"], ref["seed"])
    meta = {
        "system": study.system,
        "system_params": system.describe(),
        "kT": kT,
        "temperature": float(temperature),
        "units": system.units,
        "sampler": "exact (inverse CDF in x1, Gaussian x2 | x1)",
        "n_frames": int(arrays["positions"].shape[0]),
        "seed": ref["seed"],
    }
    save_dataset(out, arrays, meta)
    return meta
