"""Linear CG maps: bead positions R = M r and mapped forces F = D f.

For a linear coordinate map ``R_I = sum_i M_Ii r_i`` a force map ``D`` gives the
instantaneous CG force ``F_I = sum_i D_Ii f_i`` whose conditional mean is the
mean force -dA/dR_I when ``D M^T = I`` and every atom with ``D_Ii != 0`` belongs
to bead I only (Noid et al. 2008; Ciccotti, Kapral, Vanden-Eijnden 2005).  For a
slice map (each bead is one atom) ``D = M``.  Constraint-aware force maps for
molecules extend this module.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LinearMap:
    """A linear map from ``n_atoms`` atoms to ``n_beads`` beads.

    Attributes:
      name: map name as used in config and paths.
      coord_matrix: M, shape (n_beads, n_atoms); rows sum to 1.
      force_matrix: D, shape (n_beads, n_atoms); D M^T = I.
      bead_names: one name per bead.
      bead_masses: shape (n_beads,), in the system's mass unit.
      force_map: name of the force-map rule used (e.g. ``slice``).
      bead_species: one type name per bead (beads of one species are identical
        to a model); defaults to the bead names.
    """

    name: str
    coord_matrix: np.ndarray
    force_matrix: np.ndarray
    bead_names: tuple[str, ...]
    bead_masses: np.ndarray
    force_map: str
    bead_species: tuple[str, ...] | None = None

    def __post_init__(self):
        M, D = np.asarray(self.coord_matrix, float), np.asarray(self.force_matrix, float)
        if M.ndim != 2 or M.shape != D.shape:
            raise ValueError(f"map {self.name!r}: M {M.shape} and D {D.shape} must be equal 2-D")
        if len(self.bead_names) != M.shape[0] or len(self.bead_masses) != M.shape[0]:
            raise ValueError(f"map {self.name!r}: need one name and one mass per bead")
        if self.bead_species is not None and len(self.bead_species) != M.shape[0]:
            raise ValueError(f"map {self.name!r}: need one species per bead")
        if not np.allclose(M.sum(axis=1), 1.0):
            raise ValueError(f"map {self.name!r}: rows of the coordinate matrix must sum to 1")
        if not np.allclose(D @ M.T, np.eye(M.shape[0]), atol=1e-10):
            raise ValueError(f"map {self.name!r}: force map violates D M^T = I")
        overlap = (np.abs(D) > 0).sum(axis=0) > 1
        if overlap.any():
            raise ValueError(
                f"map {self.name!r}: atoms {np.flatnonzero(overlap).tolist()} carry force "
                "to more than one bead"
            )

    @property
    def n_beads(self) -> int:
        return self.coord_matrix.shape[0]

    @property
    def n_atoms(self) -> int:
        return self.coord_matrix.shape[1]

    @property
    def species(self) -> tuple[str, ...]:
        return tuple(self.bead_species or self.bead_names)

    def species_index(self) -> np.ndarray:
        """Integer species per bead (index into the sorted species names)."""
        names = sorted(set(self.species))
        return np.array([names.index(s) for s in self.species])

    def metadata(self) -> dict:
        return {
            "name": self.name,
            "force_map": self.force_map,
            "bead_names": list(self.bead_names),
            "bead_species": list(self.species),
            "species_names": sorted(set(self.species)),
            "species_index": self.species_index().tolist(),
            "bead_masses": np.asarray(self.bead_masses).tolist(),
            "n_atoms": self.n_atoms,
            "n_beads": self.n_beads,
        }


def apply_map(cg_map: LinearMap, positions: np.ndarray, forces: np.ndarray | None = None):
    """Map AA positions (frames, atoms, dim) and forces to CG beads.

    Returns:
      (R, F): shapes (frames, beads, dim); F is None when ``forces`` is None.
    """
    positions = np.asarray(positions)
    if positions.ndim != 3 or positions.shape[1] != cg_map.n_atoms:
        raise ValueError(
            f"map {cg_map.name!r} expects positions (frames, {cg_map.n_atoms}, dim), "
            f"got {positions.shape}"
        )
    R = np.einsum("Ii,fid->fId", cg_map.coord_matrix, positions)
    F = None
    if forces is not None:
        F = np.einsum("Ii,fid->fId", cg_map.force_matrix, np.asarray(forces))
    return R, F


def slice_map(name: str, n_atoms: int, atoms: list[int], names, masses, species=None):
    """Each bead is one atom: M = D = selection matrix."""
    M = np.zeros((len(atoms), n_atoms))
    M[np.arange(len(atoms)), atoms] = 1.0
    species = tuple(species) if species is not None else None
    return LinearMap(name, M, M.copy(), tuple(names), np.asarray(masses, float), "slice", species)


def group_map(
    name: str, groups: list[list[int]], atom_masses, names, weighting: str = "mass", species=None
) -> LinearMap:
    """Each bead is a group of atoms, at its centre of mass (``mass``) or geometry
    (``geometry``). The force map sums the forces on the group's atoms (D_Ii = 1),
    which satisfies D M^T = I for either weighting."""
    atom_masses = np.asarray(atom_masses, float)
    if weighting not in ("mass", "geometry"):
        raise ValueError(f"unknown weighting {weighting!r}; allowed: ['geometry', 'mass']")
    M = np.zeros((len(groups), len(atom_masses)))
    D = np.zeros_like(M)
    for I, atoms in enumerate(groups):
        w = atom_masses[atoms] if weighting == "mass" else np.ones(len(atoms))
        M[I, atoms] = w / w.sum()
        D[I, atoms] = 1.0
    masses = [atom_masses[g].sum() for g in groups]
    species = tuple(species) if species is not None else None
    return LinearMap(name, M, D, tuple(names), np.asarray(masses), "sum", species)


def aggregate_constraints(cg_map: LinearMap, constrained_pairs) -> LinearMap:
    """Extend the force map over clusters of atoms joined by holonomic constraints.

    Forces reported by an MD engine do not contain constraint forces. A force
    map is free of them when every atom of a constraint cluster carries the same
    weight to the same single bead: the constraint forces inside the cluster then
    cancel in the sum. So an atom with weight w to bead I passes w to every atom
    constrained to it (e.g. a heavy atom's rigid hydrogens).

    Raises:
      ValueError: a cluster touches two beads, or carries two different weights;
        no valid aggregated map exists for it.
    """
    D = np.array(cg_map.force_matrix, float)
    n = cg_map.n_atoms
    parent = list(range(n))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in constrained_pairs:
        parent[root(i)] = root(j)
    clusters: dict[int, list[int]] = {}
    for i in range(n):
        clusters.setdefault(root(i), []).append(i)
    for members in clusters.values():
        if len(members) == 1:
            continue
        weights = D[:, members]
        beads = np.flatnonzero(np.any(weights != 0, axis=1))
        if len(beads) == 0:
            continue
        values = {w for w in weights[beads[0]] if w != 0}
        if len(beads) > 1 or len(values) > 1:
            raise ValueError(
                f"map {cg_map.name!r}: constrained atoms {members} feed beads "
                f"{beads.tolist()} with weights {sorted(values)}; no valid "
                "aggregated force map"
            )
        D[beads[0], members] = values.pop()
    return dataclasses.replace(cg_map, force_matrix=D, force_map="aggregated")
