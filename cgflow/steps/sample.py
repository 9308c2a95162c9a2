"""The ``sample`` step: the all-atom reference of a system at one temperature."""

from __future__ import annotations

import sys
from pathlib import Path

from cgflow.io import check_output_folder, save_dataset
from cgflow.reference.openmm_sampler import sample_openmm
from cgflow.runtime import check_memory
from cgflow.systems import reference_settings, test_reference_settings


def sample_step(study, temperature: float, out: str, log=None, part: str = "train") -> dict:
    """Sample the AA reference of ``study``'s system at ``temperature``; write ``out``.

    ``part`` is ``train`` (the reference models learn from) or ``test`` (the same
    sampler with an independent seed, as long as the entry's ``test_reference`` block
    says, :func:`cgflow.systems.test_reference_settings`: models are scored on it).
    ``out`` (.npz) holds ``positions`` and ``forces`` (frames, atoms, dim) and ``energies``
    (frames,); its JSON metadata holds kT, units, the sampler and ``part``.
    """
    log = log if log is not None else sys.stderr
    if part not in ("train", "test"):
        raise ValueError(f"part must be train or test, not {part!r}")
    system = study.build_system()
    settings_of = test_reference_settings if part == "test" else reference_settings
    ref = settings_of(system, study.entry)
    temperature = float(temperature)
    if system.reference_kind == "openmm":
        setup = system.openmm_setup(getattr(ref, "hydrogen_mass_amu", None))
        # positions and forces (float32) and energies (float64) of the solute
        size = ref.n_frames * (len(setup.solute) * 3 * 4 * 2 + 8)
        check_output_folder(Path(out).parent, size, "sample")
        # the frames in memory, a checkpoint's copy and the npz buffer
        check_memory(3 * size, "sample", f"{ref.n_frames} frames of {len(setup.solute)} atoms")
        return sample_openmm(setup, temperature, ref, out, log, {**system.describe(), "part": part})
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
