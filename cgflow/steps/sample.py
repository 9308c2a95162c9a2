"""The ``sample`` step: the all-atom reference of a system at one temperature."""

from __future__ import annotations

import sys

from cgflow.io import save_dataset
from cgflow.reference.openmm_sampler import sample_openmm
from cgflow.systems import reference_settings


def sample_step(study, temperature: float, out: str, log=None) -> dict:
    """Sample the AA reference of ``study``'s system at ``temperature``; write ``out``.

    ``out`` (.npz) holds ``positions`` and ``forces`` (frames, atoms, dim) and
    ``energies`` (frames,); its JSON metadata holds kT, units and the sampler.
    """
    log = log if log is not None else sys.stderr
    system = study.build_system()
    ref = reference_settings(system, study.entry)
    temperature = float(temperature)
    if system.reference_kind == "openmm":
        return sample_openmm(system.openmm_setup(), temperature, ref, out, log, system.describe())
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
    }
    save_dataset(out, arrays, meta)
    print(f"sample: {meta['n_frames']} exact samples at kT = {kT}", file=log)
    return meta
