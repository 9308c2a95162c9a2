"""Reference ("all-atom") sampling: exact samplers for toy systems, OpenMM for molecules."""

from __future__ import annotations

import sys


def sample_reference(study, temperature: float, out: str, log=None) -> dict:
    """Sample the AA reference of ``study``'s system at ``temperature``; write ``out``.

    ``out`` (.npz) holds ``positions`` and ``forces`` (frames, atoms, dim) and
    ``energies`` (frames,); its JSON metadata holds kT, units and the sampler.
    """
    log = log if log is not None else sys.stderr
    return study.build_system().run_reference(float(temperature), study.entry, out, log)
