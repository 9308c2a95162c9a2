"""Alanine dipeptide (ACE-ALA-NME) with an Amber force field in OpenMM.

The structure ships with the package (``data/alanine_dipeptide.pdb``); it was
made by :func:`build_structure`: heavy atoms placed from standard peptide
geometry (L-alanine, trans peptide bonds), hydrogens added by OpenMM's Modeller,
then minimised with amber14. What it shares with any molecule (reference MD,
force fields, force maps over constraints, CG topology, the scoring of its
phi/psi surface) is :class:`cgflow.systems.molecular.MolecularSystem`.

CG maps (both slice maps on heavy atoms; masses are united-atom masses, heavy
atom plus its hydrogens):

- ``heavy_atoms``: the 10 heavy atoms (Thaler, Stupp, Zavadlav 2022).
- ``backbone``: C(ACE), N, CA, C, N(NME): the atoms of phi and psi.
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from cgflow.mapping.linear import LinearMap
from cgflow.systems.molecular import (
    MolecularPotential,
    MolecularSystem,
)

BACKBONE = [("ACE", "C"), ("ALA", "N"), ("ALA", "CA"), ("ALA", "C"), ("NME", "N")]


@dataclass(frozen=True)
class AlanineDipeptide(MolecularSystem, MolecularPotential):
    """ACE-ALA-NME: force field, solvent and constraints (the ``potential`` block).

    Attributes:
      forcefield: one of FORCEFIELDS.
      solvent: vacuum, implicit (OBC2 for amber14, the force field's OBC otherwise)
        or explicit (TIP3P box, PME).
      padding_nm: solvent padding around the solute (explicit only).
      constraints: none or hbonds.
      pdb: a PDB file to use instead of the shipped structure.
    """

    block = "alanine_dipeptide.potential"

    type = "alanine_dipeptide"
    n_atoms = 22
    cv_names = ("phi", "psi")
    basin_names = ("beta", "alpha_R", "alpha_L")
    metric_names = (
        "fes_wrmse_kT", "fes_rmse_kT", "hist_mse", "js_divergence", "mass_outside",
        "dF_alpha_R_err_kT", "dF_alpha_L_err_kT",
    )  # fmt: skip

    @property
    def potential(self) -> AlanineDipeptide:
        """The all-atom model: the system is its own ``potential`` block."""
        return self

    def describe(self) -> dict:
        return {"type": self.type, **asdict(self)}

    def pdb_path(self) -> Path:
        if self.pdb:
            return Path(self.pdb)
        return Path(str(resources.files("cgflow.systems") / "data" / "alanine_dipeptide.pdb"))

    def _check_structure(self, path: Path, residues: list[str], n_atoms: int) -> None:
        if residues != ["ACE", "ALA", "NME"] or n_atoms != 22:
            raise ValueError(
                f"alanine_dipeptide: {path} must hold ACE-ALA-NME with 22 atoms "
                f"(found residues {residues}, {n_atoms} atoms)"
            )

    def generator_coordinates(self, kT: float, energy=None):
        """The coordinates a data-free generator proposes the molecule in: standardised
        internal coordinates (:mod:`cgflow.mapping.internal`) of a Z-matrix rooted at
        ACE's methyl carbon and placed along the backbone, so that phi and psi are two
        of its proper torsions; centred on the system's structure (the shipped one is
        minimised), bonds, angles and improper torsions scaled by their thermal widths
        in this force field at ``kT`` (``energy``: ``aa_energy_jax()`` where the
        caller has built it already). Vacuum only, as ``aa_energy_jax``."""
        key = {(a.residue.name, a.name): a.index for a in self.load_topology().atoms}
        chain = [key[("ACE", "CH3")], *(key[k] for k in BACKBONE), key[("NME", "C")]]
        return self._internal_coordinates(chain, kT, energy)

    # --- CG maps ---------------------------------------------------------------------
    def mappings(self) -> dict[str, LinearMap]:
        topology = self.load_topology()
        atoms = list(topology.atoms)
        heavy = [a.index for a in atoms if a.element.symbol != "H"]
        key = {(a.residue.name, a.name): a.index for a in atoms}
        backbone = [key[k] for k in BACKBONE]
        # species: the atom names CH3, C, O, N, CA, CB
        return {name: self._atom_beads(name, idx, [atoms[i].name for i in idx], topology)
                for name, idx in (("heavy_atoms", heavy), ("backbone", backbone))}  # fmt: skip

    # --- observables ---------------------------------------------------------------
    def dihedral_indices(self, cg_map: LinearMap) -> dict[str, list[int]]:
        """Bead indices of phi (C-N-CA-C) and psi (N-CA-C-N)."""
        atoms = list(self.load_topology().atoms)
        src = [int(np.flatnonzero(row)[0]) for row in cg_map.coord_matrix]
        where = {(atoms[i].residue.name, atoms[i].name): p for p, i in enumerate(src)}
        phi = [where[k] for k in BACKBONE[:4]]
        psi = [where[k] for k in BACKBONE[1:]]
        return {"phi": phi, "psi": psi}

    def cv_dihedrals(self, cg_map: LinearMap) -> list[list[int]]:
        """The bead quadruples of the collective variables (phi, psi)."""
        quads = self.dihedral_indices(cg_map)
        return [quads["phi"], quads["psi"]]

    @staticmethod
    def basins(angles: np.ndarray) -> np.ndarray:
        """Basin of each (phi, psi) in radians, (n, 2): 0 beta (C5 and PPII: phi < 0,
        psi outside (-120, 50] degrees), 1 alpha_R (phi < 0, psi in (-120, 50]),
        2 alpha_L (with C7ax: phi >= 0)."""
        phi, psi = np.degrees(angles[:, 0]), np.degrees(angles[:, 1])
        alpha_r = (psi > -120.0) & (psi <= 50.0)
        return np.where(phi >= 0.0, 2, np.where(alpha_r, 1, 0))


def _place(a, b, c, bond, angle, torsion):
    """Position of d bonded to c, with angle b-c-d and dihedral a-b-c-d (nm, degrees)."""
    angle, torsion = math.radians(angle), math.radians(torsion)
    bc = (c - b) / np.linalg.norm(c - b)
    n = np.cross(b - a, bc)
    n /= np.linalg.norm(n)
    m = np.cross(n, bc)
    d = bond * np.array(
        [-math.cos(angle), math.sin(angle) * math.cos(torsion), math.sin(angle) * math.sin(torsion)]
    )
    return c + d[0] * bc + d[1] * m + d[2] * n


def build_structure(phi: float = -80.0, psi: float = 150.0) -> str:
    """Build ACE-ALA-NME from standard geometry, add hydrogens, minimise; return PDB text."""
    import openmm as mm
    import openmm.app as app

    a = {"ACE CH3": np.zeros(3), "ACE C": np.array([0.152, 0.0, 0.0])}
    t = math.radians(180.0 - 116.2)
    a["ALA N"] = a["ACE C"] + 0.1329 * np.array([math.cos(t), math.sin(t), 0.0])
    a["ALA CA"] = _place(a["ACE CH3"], a["ACE C"], a["ALA N"], 0.1458, 121.7, 180.0)
    a["ALA C"] = _place(a["ACE C"], a["ALA N"], a["ALA CA"], 0.1525, 111.2, phi)
    a["NME N"] = _place(a["ALA N"], a["ALA CA"], a["ALA C"], 0.1329, 116.2, psi)
    a["NME C"] = _place(a["ALA CA"], a["ALA C"], a["NME N"], 0.1458, 121.7, 180.0)
    a["ACE O"] = _place(a["ALA CA"], a["ALA N"], a["ACE C"], 0.1231, 123.0, 0.0)
    a["ALA O"] = _place(a["NME C"], a["NME N"], a["ALA C"], 0.1231, 123.0, 0.0)
    a["ALA CB"] = _place(a["ALA N"], a["ALA C"], a["ALA CA"], 0.153, 110.1, 122.7)
    order = [
        "ACE CH3",
        "ACE C",
        "ACE O",
        "ALA N",
        "ALA CA",
        "ALA CB",
        "ALA C",
        "ALA O",
        "NME N",
        "NME C",
    ]
    lines = []
    for i, k in enumerate(order, 1):
        res, name = k.split()
        x, y, z = a[k] * 10.0
        resid = {"ACE": 1, "ALA": 2, "NME": 3}[res]
        lines.append(
            f"ATOM  {i:5d} {name:<4s} {res} A{resid:4d}    {x:8.3f}{y:8.3f}{z:8.3f}"
            f"  1.00  0.00          {name[0]:>2s}"
        )
    heavy = app.PDBFile(io.StringIO("\n".join(lines) + "\nEND\n"))
    ff = app.ForceField("amber14-all.xml")
    modeller = app.Modeller(heavy.topology, heavy.positions)
    modeller.addHydrogens(ff)
    system = ff.createSystem(modeller.topology, nonbondedMethod=app.NoCutoff)
    context = mm.Context(
        system, mm.VerletIntegrator(0.001), mm.Platform.getPlatformByName("Reference")
    )
    context.setPositions(modeller.positions)
    mm.LocalEnergyMinimizer.minimize(context, 1.0, 2000)
    out = io.StringIO()
    positions = context.getState(getPositions=True).getPositions()
    app.PDBFile.writeFile(modeller.topology, positions, out)
    return out.getvalue()
