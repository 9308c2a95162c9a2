"""The ``map`` step: apply a system's CG map to an AA data set."""

from __future__ import annotations

from cgflow.io import load_dataset, save_dataset
from cgflow.mapping.linear import apply_map
from cgflow.systems import get_map


def map_dataset(study, mapping: str, aa_path: str, out: str) -> dict:
    """Map an AA data set to CG positions and forces with ``mapping``; write ``out``.

    The CG data set holds ``positions``, ``forces`` (frames, beads, dim),
    ``aa_energies`` (frames,), the coordinate and force matrices, and metadata
    with kT, units, bead names and masses and the force map used.
    """
    system = study.build_system()
    cg_map = get_map(system, mapping)
    aa, aa_meta = load_dataset(aa_path, required=("positions", "forces", "energies"))
    R, F = apply_map(cg_map, aa["positions"], aa["forces"])
    meta = {
        "system": study.system,
        "mapping": cg_map.metadata(),
        "kT": aa_meta["kT"],
        "temperature": aa_meta["temperature"],
        "units": aa_meta["units"],
        "n_frames": int(R.shape[0]),
        "source": str(aa_path),
    }
    save_dataset(
        out,
        {
            "positions": R,
            "forces": F,
            "aa_energies": aa["energies"],
            "coord_matrix": cg_map.coord_matrix,
            "force_matrix": cg_map.force_matrix,
        },
        meta,
    )
    return meta
