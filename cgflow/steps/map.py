"""The ``map`` step: apply a system's CG map to an AA data set."""

from __future__ import annotations

from pathlib import Path

from cgflow.io import load_dataset, save_dataset, write_trajectory
from cgflow.mapping.linear import apply_map
from cgflow.mapping.topology import bonded_terms
from cgflow.provenance import check_described
from cgflow.systems import get_map


def map_dataset(study, mapping: str, aa_path: str, out: str) -> dict:
    """Map an AA data set to CG positions and forces with ``mapping``; write ``out``.

    The CG data set holds ``positions``, ``forces`` (frames, beads, dim),
    ``aa_energies`` (frames,), ``box``, ``pressure_bar`` and ``run`` (a pooled
    reference's run of each frame) where the AA data have them, and the coordinate
    and force matrices; its metadata has kT, units, bead names and masses, and the
    force map used. For systems with a CG topology the mapped
    reference is also written as ``out`` with suffix ``.h5`` (MDTraj) and the
    metadata lists the CG bonds, angles and dihedrals.
    """
    system = study.build_system()
    cg_map = get_map(system, mapping)
    aa, aa_meta = load_dataset(aa_path, required=("positions", "forces", "energies"))
    check_described(str(aa_path), aa_meta, study.system, system.describe())
    R, F = apply_map(cg_map, aa["positions"], aa["forces"])
    problems = system.reference_problems(cg_map, R)
    if problems:
        raise ValueError(f"{aa_path}: {'; '.join(problems)}")
    meta = {
        "system": study.system,
        "mapping": cg_map.metadata(),
        "kT": aa_meta["kT"],
        "temperature": aa_meta["temperature"],
        "units": aa_meta["units"],
        "n_frames": int(R.shape[0]),
        "periodic": bool(system.periodic),
        "source": str(aa_path),
    }
    arrays = {
        "positions": R,
        "forces": F,
        "aa_energies": aa["energies"],
        "coord_matrix": cg_map.coord_matrix,
        "force_matrix": cg_map.force_matrix,
    }
    for key in ("box", "pressure_bar", "run"):  # a periodic box, its pressure, pooled runs
        if key in aa:
            arrays[key] = aa[key]
    if system.has_topology:
        top = system.cg_topology(cg_map)
        bonds = [(a.index, b.index) for a, b in top.bonds]
        meta["cg_topology"] = bonded_terms(cg_map.n_beads, bonds)
        write_trajectory(Path(out).with_suffix(".h5"), R, top)
    save_dataset(out, arrays, meta)
    return meta
