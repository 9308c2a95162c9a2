"""Alanine dipeptide (ACE-ALA-NME) with an Amber force field in OpenMM.

The structure ships with the package (``data/alanine_dipeptide.pdb``); it was
made by :func:`build_structure`: heavy atoms placed from standard peptide
geometry (L-alanine, trans peptide bonds), hydrogens added by OpenMM's Modeller,
then minimised with amber14.

CG maps (both slice maps on heavy atoms; masses are united-atom masses, heavy
atom plus its hydrogens):

- ``heavy_atoms``: the 10 heavy atoms (Thaler, Stupp, Zavadlav 2022).
- ``backbone``: C(ACE), N, CA, C, N(NME): the atoms of phi and psi.

Force maps.  OpenMM reports force-field forces; constraint forces are not in
them.  Without constraints a slice map (D = M) is valid.  With ``hbonds`` each
hydrogen is rigidly bonded to its heavy atom, and the constraint force between
them is missing from the heavy atom's reported force, so its slice is biased.
Adding the forces of each mapped heavy atom's constrained hydrogens to its bead
(``aggregated``) cancels the internal constraint forces and is valid whenever
every constraint cluster maps to one bead only; see
:func:`cgflow.mapping.linear.aggregate_constraints`.
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from cgflow.config import require_positive, settings_from
from cgflow.mapping.linear import LinearMap, aggregate_constraints, slice_map

FORCEFIELDS = {
    "amber14": {
        "protein": ["amber14-all.xml"],
        "implicit": "implicit/obc2.xml",
        "water": "amber14/tip3p.xml",
    },
    "amber99sbildn": {
        "protein": ["amber99sbildn.xml"],
        "implicit": "amber99_obc.xml",
        "water": "tip3p.xml",
    },
    "amber96": {"protein": ["amber96.xml"], "implicit": "amber96_obc.xml", "water": "tip3p.xml"},
}
SOLVENTS = ("vacuum", "implicit", "explicit")
CONSTRAINTS = ("none", "hbonds")
PLATFORMS = ("auto", "CUDA", "OpenCL", "CPU", "Reference")
UNITS = {"length": "nm", "time": "ps", "energy": "kJ/mol", "mass": "amu", "temperature": "K"}
BACKBONE = [("ACE", "C"), ("ALA", "N"), ("ALA", "CA"), ("ALA", "C"), ("NME", "N")]
MOLAR_GAS_CONSTANT = 8.314462618e-3  # kJ/(mol K)


@dataclass(frozen=True)
class MDSettings:
    """Reference MD settings (the system's ``reference`` config block).

    Attributes:
      timestep_fs: integration step (fs).
      friction_per_ps: Langevin friction (1/ps).
      equilibration_ps: simulated before saving (ps).
      production_ps: saved run length (ps); a multiple of ``save_interval_ps``.
      save_interval_ps: time between saved frames (ps); a multiple of the step.
      checkpoint_interval_ps: time between checkpoints of a production run (ps).
      platform: ``auto`` (CUDA, then OpenCL, then CPU) or an OpenMM platform name.
      seed: random seed of velocities and the Langevin integrator.
    """

    timestep_fs: float = 2.0
    friction_per_ps: float = 1.0
    equilibration_ps: float = 10.0
    production_ps: float = 100.0
    save_interval_ps: float = 0.2
    checkpoint_interval_ps: float = 10.0
    platform: str = "auto"
    seed: int = 0

    def __post_init__(self):
        names = (
            "timestep_fs",
            "friction_per_ps",
            "production_ps",
            "save_interval_ps",
            "checkpoint_interval_ps",
        )
        require_positive(self, "reference", names)
        if self.equilibration_ps < 0:
            raise ValueError("reference.equilibration_ps must be >= 0")
        if self.platform not in PLATFORMS:
            raise ValueError(
                f"reference.platform: unknown {self.platform!r}; allowed: {list(PLATFORMS)}"
            )
        _whole(
            self.save_interval_ps * 1000.0 / self.timestep_fs,
            "reference.save_interval_ps must be a whole number of time steps "
            f"({self.save_interval_ps} ps / {self.timestep_fs} fs)",
        )
        _whole(
            self.production_ps / self.save_interval_ps,
            "reference.save_interval_ps must divide production_ps "
            f"({self.production_ps} / {self.save_interval_ps})",
        )

    @property
    def steps_per_frame(self) -> int:
        return round(self.save_interval_ps * 1000.0 / self.timestep_fs)

    @property
    def n_frames(self) -> int:
        return round(self.production_ps / self.save_interval_ps)

    @property
    def equilibration_steps(self) -> int:
        return round(self.equilibration_ps * 1000.0 / self.timestep_fs)

    @property
    def frames_per_checkpoint(self) -> int:
        return max(1, round(self.checkpoint_interval_ps / self.save_interval_ps))


def _whole(x: float, message: str) -> int:
    if abs(x - round(x)) > 1e-6 * max(1.0, abs(x)) or round(x) < 1:
        raise ValueError(message)
    return round(x)


@dataclass(frozen=True)
class AlanineDipeptide:
    """ACE-ALA-NME: force field, solvent and constraints (the ``potential`` block).

    Attributes:
      forcefield: one of FORCEFIELDS.
      solvent: vacuum, implicit (OBC2 for amber14, the force field's OBC otherwise)
        or explicit (TIP3P box, PME).
      padding_nm: solvent padding around the solute (explicit only).
      constraints: none or hbonds.
      pdb: a PDB file to use instead of the shipped structure.
    """

    forcefield: str = "amber14"
    solvent: str = "implicit"
    padding_nm: float = 1.0
    constraints: str = "hbonds"
    pdb: str | None = None

    type = "alanine_dipeptide"
    units = UNITS
    dim = 3
    time_unit = "ps"
    metric_names = ("fes_rmse_kT", "hist_mse", "js_divergence")

    def __post_init__(self):
        if self.forcefield not in FORCEFIELDS:
            raise ValueError(
                f"alanine_dipeptide: unknown forcefield {self.forcefield!r}; "
                f"allowed: {sorted(FORCEFIELDS)}"
            )
        if self.solvent not in SOLVENTS:
            raise ValueError(
                f"alanine_dipeptide: unknown solvent {self.solvent!r}; allowed: {list(SOLVENTS)}"
            )
        if self.constraints not in CONSTRAINTS:
            raise ValueError(
                f"alanine_dipeptide: unknown constraints {self.constraints!r}; "
                f"allowed: {list(CONSTRAINTS)}"
            )
        if not self.padding_nm > 0:
            raise ValueError(f"alanine_dipeptide: padding_nm must be > 0, got {self.padding_nm}")
        if self.pdb and not Path(self.pdb).is_file():
            raise ValueError(f"alanine_dipeptide: PDB file {self.pdb} not found")

    @classmethod
    def from_settings(cls, settings: dict) -> AlanineDipeptide:
        return settings_from(cls, settings.get("potential"), "alanine_dipeptide", "potential")

    @staticmethod
    def reference_settings(entry: dict) -> MDSettings:
        return settings_from(MDSettings, entry.get("reference"), "alanine_dipeptide", "reference")

    def n_reference_frames(self, entry: dict) -> int:
        return self.reference_settings(entry).n_frames

    def describe(self) -> dict:
        return {"type": self.type, **asdict(self)}

    # --- structure and force field --------------------------------------------------
    def pdb_path(self) -> Path:
        if self.pdb:
            return Path(self.pdb)
        return Path(str(resources.files("cgflow.systems") / "data" / "alanine_dipeptide.pdb"))

    def _read_pdb(self, read, residues, n_atoms):
        """``read(path)`` of the PDB, with a clear error for a missing, unreadable or
        wrong file; ``residues(obj)`` and ``n_atoms(obj)`` describe what was read."""
        path = self.pdb_path()
        if not path.is_file():
            raise FileNotFoundError(f"alanine_dipeptide: PDB file {path} not found")
        try:
            obj = read(str(path))
        except Exception as err:
            raise ValueError(f"alanine_dipeptide: cannot read PDB {path}: {err}") from None
        names, n = residues(obj), n_atoms(obj)
        if names != ["ACE", "ALA", "NME"] or n != 22:
            raise ValueError(
                f"alanine_dipeptide: {path} must hold ACE-ALA-NME with 22 atoms "
                f"(found residues {names}, {n} atoms)"
            )
        return obj

    def load_structure(self):
        """(topology, positions) of the solute for OpenMM."""
        import openmm.app as app

        pdb = self._read_pdb(
            app.PDBFile,
            lambda p: [r.name for r in p.topology.residues()],
            lambda p: p.topology.getNumAtoms(),
        )
        return pdb.topology, pdb.positions

    def load_topology(self):
        """MDTraj topology of the solute (no OpenMM needed: the JAX-side steps use it)."""
        import mdtraj as md

        return self._read_pdb(
            md.load_topology, lambda t: [r.name for r in t.residues], lambda t: t.n_atoms
        )

    def forcefield_object(self):
        import openmm.app as app

        spec = FORCEFIELDS[self.forcefield]
        files = list(spec["protein"])
        if self.solvent == "implicit":
            files.append(spec["implicit"])
        elif self.solvent == "explicit":
            files.append(spec["water"])
        return app.ForceField(*files)

    def openmm_system(self):
        """Build (topology, positions, system, solute atom indices) for sampling."""
        import openmm.app as app
        import openmm.unit as unit

        topology, positions = self.load_structure()
        ff = self.forcefield_object()
        constraints = app.HBonds if self.constraints == "hbonds" else None
        if self.solvent == "explicit":
            modeller = app.Modeller(topology, positions)
            modeller.addSolvent(ff, model="tip3p", padding=self.padding_nm * unit.nanometer)
            topology, positions = modeller.topology, modeller.positions
            system = ff.createSystem(
                topology,
                nonbondedMethod=app.PME,
                nonbondedCutoff=1.0 * unit.nanometer,
                constraints=constraints,
                rigidWater=True,
            )
        else:
            system = ff.createSystem(
                topology, nonbondedMethod=app.NoCutoff, constraints=constraints
            )
        solute = np.arange(22)
        return topology, positions, system, solute

    def constrained_pairs(self, topology=None) -> list[tuple[int, int]]:
        """Solute atom pairs held at fixed distance by the chosen constraints."""
        if self.constraints == "none":
            return []
        if topology is None:
            topology = self.load_topology()
        return [
            (a.index, b.index)
            for a, b in topology.bonds
            if "H" in (a.element.symbol, b.element.symbol)
        ]

    # --- CG maps and topology -------------------------------------------------------
    def mappings(self) -> dict[str, LinearMap]:
        topology = self.load_topology()
        atoms = list(topology.atoms)
        heavy = [a.index for a in atoms if a.element.symbol != "H"]
        key = {(a.residue.name, a.name): a.index for a in atoms}
        backbone = [key[k] for k in BACKBONE]
        hydrogens = {i: [] for i in range(len(atoms))}
        for a, b in topology.bonds:
            if b.element.symbol == "H":
                hydrogens[a.index].append(b.index)
            if a.element.symbol == "H":
                hydrogens[b.index].append(a.index)
        out = {}
        for name, idx in (("heavy_atoms", heavy), ("backbone", backbone)):
            masses = [
                atoms[i].element.mass + sum(atoms[h].element.mass for h in hydrogens[i])
                for i in idx
            ]
            names = [f"{atoms[i].residue.name}-{atoms[i].name}" for i in idx]
            species = [atoms[i].name for i in idx]  # CH3, C, O, N, CA, CB
            m = slice_map(name, len(atoms), idx, names, masses, species)
            if self.constraints == "hbonds":
                m = aggregate_constraints(m, self.constrained_pairs(topology))
            out[name] = m
        return out

    def cg_topology(self, cg_map: LinearMap):
        """MDTraj topology of the beads: residues and atom names kept, bonds between
        beads whose atoms are bonded or one unmapped atom apart."""
        import mdtraj as md

        aa = self.load_topology()
        idx = [int(np.flatnonzero(row)[0]) for row in cg_map.coord_matrix]
        top = md.Topology()
        chain = top.add_chain()
        residues = {}
        beads = []
        for i in idx:
            atom = aa.atom(i)
            res = atom.residue
            if res.index not in residues:
                residues[res.index] = top.add_residue(res.name, chain, resSeq=res.resSeq)
            beads.append(top.add_atom(atom.name, atom.element, residues[res.index]))
        graph = {a.index: set() for a in aa.atoms}
        for a, b in aa.bonds:
            graph[a.index].add(b.index)
            graph[b.index].add(a.index)
        mapped = set(idx)
        for p, i in enumerate(idx):
            for q, j in enumerate(idx):
                if q <= p:
                    continue
                if j in graph[i] or any(k not in mapped and j in graph[k] for k in graph[i]):
                    top.add_bond(beads[p], beads[q])
        return top

    # --- reference sampling ----------------------------------------------------------
    def kT(self, temperature: float) -> float:
        return MOLAR_GAS_CONSTANT * float(temperature)

    def run_reference(self, temperature: float, entry: dict, out, log) -> dict:
        from cgflow.reference.openmm_sampler import sample_openmm

        md_settings = self.reference_settings(entry)
        return sample_openmm(self, float(temperature), md_settings, out, log)

    # --- evaluation -----------------------------------------------------------------
    def evaluate(self, positions, kT, reference, mapping: str, bins: int = 60):
        """phi/psi free-energy metrics of CG ``positions`` against ``reference``."""
        from cgflow.systems import get_map

        return evaluate_fes(self, get_map(self, mapping), positions, reference, kT, bins)

    # --- observables ---------------------------------------------------------------
    def dihedral_indices(self, cg_map: LinearMap) -> dict[str, list[int]]:
        """Bead indices of phi (C-N-CA-C) and psi (N-CA-C-N)."""
        atoms = list(self.load_topology().atoms)
        src = [int(np.flatnonzero(row)[0]) for row in cg_map.coord_matrix]
        where = {(atoms[i].residue.name, atoms[i].name): p for p, i in enumerate(src)}
        phi = [where[k] for k in BACKBONE[:4]]
        psi = [where[k] for k in BACKBONE[1:]]
        return {"phi": phi, "psi": psi}


def dihedrals(positions: np.ndarray, quad: list[int]) -> np.ndarray:
    """Dihedral angle (radians, in (-pi, pi]) of four beads for frames (n, beads, 3)."""
    p = np.asarray(positions, float)[:, quad]
    b0, b1, b2 = p[:, 0] - p[:, 1], p[:, 2] - p[:, 1], p[:, 3] - p[:, 2]
    b1n = b1 / np.linalg.norm(b1, axis=1, keepdims=True)
    v = b0 - np.sum(b0 * b1n, axis=1, keepdims=True) * b1n
    w = b2 - np.sum(b2 * b1n, axis=1, keepdims=True) * b1n
    x = np.sum(v * w, axis=1)
    y = np.sum(np.cross(b1n, v) * w, axis=1)
    return np.arctan2(y, x)


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


def evaluate_fes(
    system: AlanineDipeptide,
    cg_map: LinearMap,
    positions: np.ndarray,
    reference: np.ndarray,
    kT: float,
    bins: int = 60,
) -> tuple[dict, dict]:
    """Compare the phi/psi distribution of ``positions`` with that of ``reference``.

    Both are histogrammed on a bins x bins grid over (-pi, pi]^2.
    ``fes_rmse_kT``: RMSE of the free energies (kT) over bins populated in the
    reference, after the best constant shift; an empty model bin counts as half
    a sample.  ``hist_mse``: mean squared difference of the normalised 2-D
    histograms (Thaler et al. 2022).  ``js_divergence``: of the 2-D histograms.

    Returns:
      (metrics, curves): curves holds the edges (rad) and both surfaces (kT).
    """
    from cgflow.analysis.fes import bin_probabilities, free_energy, js_divergence, shifted_rmse

    quads = system.dihedral_indices(cg_map)
    edges = np.linspace(-np.pi, np.pi, bins + 1)

    def angles(x):
        return np.stack([dihedrals(x, quads["phi"]), dihedrals(x, quads["psi"])], axis=1)

    p_mod, _ = bin_probabilities(angles(positions), [edges, edges])
    p_ref, _ = bin_probabilities(angles(reference), [edges, edges])
    mask = p_ref > 0
    f_ref = free_energy(p_ref)
    f_mod = free_energy(p_mod, n_samples=len(positions))
    metrics = {
        "fes_rmse_kT": shifted_rmse(f_mod, f_ref, mask),
        "hist_mse": float(np.mean((p_mod - p_ref) ** 2)),
        "js_divergence": js_divergence(p_mod, p_ref),
    }
    f0 = f_ref[mask].min()
    curves = {
        "phi_edges": edges,
        "psi_edges": edges,
        "fes_reference_kT": np.where(mask, f_ref - f0, np.nan),
        "fes_model_kT": np.where(p_mod > 0, free_energy(p_mod) - f0, np.nan),
    }
    for axis, name in ((1, "phi"), (0, "psi")):  # 1-D PMFs: marginals of the 2-D histograms
        for which, p in (("reference", p_ref), ("model", p_mod)):
            marginal = p.sum(axis=axis)
            pmf = free_energy(marginal)
            curves[f"pmf_{name}_{which}_kT"] = pmf - np.min(pmf[np.isfinite(pmf)])
    return metrics, curves
