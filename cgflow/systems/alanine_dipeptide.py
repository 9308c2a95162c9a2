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
from dataclasses import asdict, dataclass, replace
from importlib import resources
from pathlib import Path

import numpy as np

from cgflow.mapping.linear import LinearMap, aggregate_constraints, slice_map
from cgflow.settings import Settings, setting
from cgflow.systems.base import OpenMMSetup, ReferenceSettings, SystemDefaults
from cgflow.units import KJ_PER_KCAL, MOLAR_GAS_CONSTANT, MOLECULAR

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
RUN_SEED_STRIDE = 1009
"""Run k of a pooled reference is seeded with the reference's seed plus k times this
(each run uses seed + 1 and seed + 2, and the test reference seed + 1,000,003)."""
BACKBONE = [("ACE", "C"), ("ALA", "N"), ("ALA", "CA"), ("ALA", "C"), ("NME", "N")]


@dataclass(frozen=True)
class MDSettings(ReferenceSettings):
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
      n_runs: independent runs pooled into the reference, each ``production_ps /
        n_runs`` long with its own equilibration from the start structure and its own
        seed (``run``); the DAG runs them as parallel jobs. The data set records each
        frame's run, so that the block bootstrap and the basin relaxation do not
        treat the joins as time steps.
      hydrogen_mass_amu: hydrogen mass repartitioning: each hydrogen gets this mass,
        taken from the heavy atom it is bonded to (OpenMM's ``hydrogenMass``), so
        that a 4 fs step is stable with constrained H bonds. Masses change the
        dynamics, not the Boltzmann distribution of positions, nor the mapped
        forces (a bead sums its atoms' forces); None keeps the force field's masses.
    """

    block = "alanine_dipeptide.reference"

    timestep_fs: float = setting(2.0, gt=0, doc="integration step (fs)")
    friction_per_ps: float = setting(1.0, gt=0, doc="Langevin friction (1/ps)")
    equilibration_ps: float = setting(10.0, ge=0, doc="simulated before saving (ps)")
    production_ps: float = setting(100.0, gt=0, doc="saved run length (ps)")
    save_interval_ps: float = setting(0.2, gt=0, doc="time between saved frames (ps)")
    checkpoint_interval_ps: float = setting(10.0, gt=0, doc="time between checkpoints (ps)")
    platform: str = setting("auto", choices=PLATFORMS, doc="OpenMM platform, or auto")
    seed: int = setting(0, ge=0, doc="seed of velocities and the integrator")
    n_runs: int = setting(
        1,
        ge=1,
        doc="independent runs pooled into the reference (parallel jobs), each "
        "production_ps / n_runs long with its own equilibration and seed",
    )
    hydrogen_mass_amu: float | None = setting(
        None,
        gt=1.0,
        lt=5.0,
        doc="hydrogen mass repartitioning (amu, e.g. 3 or 4 at 4 fs); "
        "null: the force field's masses",
    )
    deterministic: bool = setting(
        True,
        doc="one seed, one trajectory: OpenMM's DeterministicForces, and one thread on "
        "the CPU platform (whose threaded sums differ from run to run)",
    )

    def check(self):
        _whole(
            self.save_interval_ps * 1000.0 / self.timestep_fs,
            "reference.save_interval_ps must be a whole number of time steps "
            f"({self.save_interval_ps} ps / {self.timestep_fs} fs)",
        )
        _whole(
            self.production_ps / self.n_runs / self.save_interval_ps,
            "reference.save_interval_ps must divide production_ps / n_runs "
            f"({self.production_ps} / {self.n_runs} / {self.save_interval_ps})",
        )

    def run(self, k: int) -> MDSettings:
        """The settings of run ``k`` of ``n_runs``: its share of the production time
        and its own seed (run 0 keeps the reference's)."""
        if not 0 <= k < self.n_runs:
            raise ValueError(f"run {k} is not one of the reference's {self.n_runs} runs")
        return replace(
            self, production_ps=self.production_ps / self.n_runs, n_runs=1,
            seed=self.seed + RUN_SEED_STRIDE * k,
        )  # fmt: skip

    @property
    def frame_interval(self) -> float:
        """Time between saved frames (ps), for the reference's autocorrelation times."""
        return self.save_interval_ps

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
class FESEvaluation(Settings):
    """How the phi/psi free-energy surface is scored (the ``evaluation`` block)."""

    block = "alanine_dipeptide.evaluation"

    bins: int = setting(60, ge=2, doc="histogram bins per dihedral over (-pi, pi]")
    coarse_bins: int = setting(
        24, ge=2, doc="bins per dihedral of the primary metric, fes_wrmse_kT"
    )
    f_max: float = setting(
        5.0, gt=0, doc="fes_wrmse_kT scores bins within this many kT of the minimum"
    )


@dataclass(frozen=True)
class AlanineDipeptide(SystemDefaults, Settings):
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

    forcefield: str = setting("amber14", choices=tuple(FORCEFIELDS), doc="Amber force field")
    solvent: str = setting("implicit", choices=SOLVENTS, doc="vacuum, implicit or explicit")
    padding_nm: float = setting(1.0, gt=0, doc="solvent padding (explicit solvent, nm)")
    constraints: str = setting("hbonds", choices=CONSTRAINTS, doc="none or hbonds")
    pdb: str | None = setting(None, doc="a PDB file to use instead of the shipped one")

    type = "alanine_dipeptide"
    units = MOLECULAR
    dim = 3
    reference_kind = "openmm"
    has_topology = True
    periodic = False
    n_atoms = 22
    cv_names = ("phi", "psi")
    cv_periodic = True
    basin_names = ("beta", "alpha_R", "alpha_L")
    metric_names = (
        "fes_wrmse_kT", "fes_rmse_kT", "hist_mse", "js_divergence", "mass_outside",
        "dF_alpha_R_err_kT", "dF_alpha_L_err_kT",
    )  # fmt: skip
    primary_metric = "fes_wrmse_kT"
    figure_kind = "surface_2d"
    reference_settings = MDSettings
    evaluation_settings = FESEvaluation

    def check(self):
        if self.pdb and not Path(self.pdb).is_file():
            raise ValueError(f"alanine_dipeptide: PDB file {self.pdb} not found")

    def n_reference_frames(self, reference: MDSettings) -> int:
        return reference.n_frames

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

    def _check_coordinates(self, xyz_nm: np.ndarray) -> None:
        """Refuse a structure with two atoms closer than 0.05 nm (e.g. all at the
        origin): OpenMM would start from infinite forces."""
        xyz = np.asarray(xyz_nm, float)
        d = np.linalg.norm(xyz[:, None] - xyz[None], axis=-1)
        d[np.diag_indices(len(xyz))] = np.inf
        i, j = np.unravel_index(np.argmin(d), d.shape)
        if not np.all(np.isfinite(xyz)) or d[i, j] < 0.05:
            raise ValueError(
                f"alanine_dipeptide: {self.pdb_path()}: atoms {min(i, j)} and {max(i, j)} "
                f"are {d[i, j]:.3g} nm apart: not a structure to start from (coordinates "
                "missing or all alike?)"
            )

    def load_structure(self):
        """(topology, positions) of the solute for OpenMM."""
        import openmm.app as app
        import openmm.unit as unit

        pdb = self._read_pdb(
            app.PDBFile,
            lambda p: [r.name for r in p.topology.residues()],
            lambda p: p.topology.getNumAtoms(),
        )
        self._check_coordinates(pdb.positions.value_in_unit(unit.nanometer))
        return pdb.topology, pdb.positions

    def load_topology(self):
        """MDTraj topology of the solute (no OpenMM needed: the JAX-side steps use it)."""
        return self._load_trajectory().topology

    def _load_trajectory(self):
        import mdtraj as md

        traj = self._read_pdb(
            md.load, lambda t: [r.name for r in t.topology.residues], lambda t: t.n_atoms
        )
        self._check_coordinates(traj.xyz[0])
        return traj

    def forcefield_object(self):
        import openmm.app as app

        spec = FORCEFIELDS[self.forcefield]
        files = list(spec["protein"])
        if self.solvent == "implicit":
            files.append(spec["implicit"])
        elif self.solvent == "explicit":
            files.append(spec["water"])
        return app.ForceField(*files)

    def openmm_setup(self, hydrogen_mass_amu: float | None = None) -> OpenMMSetup:
        """Everything the OpenMM sampler needs: topology, positions, System, solute
        (``hydrogen_mass_amu``: repartitioned hydrogen masses, see the reference
        settings)."""
        import openmm.app as app
        import openmm.unit as unit

        masses = {} if hydrogen_mass_amu is None else {
            "hydrogenMass": hydrogen_mass_amu * unit.amu
        }  # fmt: skip

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
                **masses,
            )
        else:
            system = ff.createSystem(
                topology, nonbondedMethod=app.NoCutoff, constraints=constraints, **masses
            )
        return OpenMMSetup(topology, positions, system, np.arange(22), self.load_topology())

    @property
    def jax_energy(self) -> bool:
        """In vacuum the force field has a JAX form (``aa_energy_jax``); JAX MD's
        converter has no implicit solvent or PME."""
        return self.solvent == "vacuum"

    def aa_energy_jax(self, precision: str = "single"):
        """The all-atom energy in JAX, for data-free methods: ``energy(flat) -> kJ/mol``
        with ``flat`` the 22 atoms' coordinates in nm (66,), the OpenMM System of this
        force field in vacuum converted by JAX MD (``convert_openmm_system``, all pairs:
        no cutoff). Built without constraints: a generator proposes every coordinate,
        so the bonds to hydrogen keep their harmonic terms. ``precision="double"``
        needs JAX's x64 mode (tests against OpenMM)."""
        if self.solvent != "vacuum":
            raise ValueError(
                f"alanine_dipeptide: the all-atom energy in JAX exists in vacuum only (JAX MD "
                f"converts no implicit solvent or PME); solvent is {self.solvent!r}"
            )
        import warnings

        import jax.numpy as jnp
        import openmm.app as app
        from jax_md.mm_forcefields.amber.energy import energy as amber_energy
        from jax_md.mm_forcefields.io.openmm import convert_openmm_system
        from jax_md.mm_forcefields.nonbonded.electrostatics import CutoffCoulomb

        topology, positions = self.load_structure()
        system = self.forcefield_object().createSystem(
            topology, nonbondedMethod=app.NoCutoff, constraints=None
        )
        with warnings.catch_warnings():  # JAX MD's int32 scatter under x64, and its
            warnings.simplefilter("ignore", FutureWarning)  # float64 requests without x64
            warnings.simplefilter("ignore", UserWarning)
            mm = convert_openmm_system(system, topology, positions, None, precision=precision)
            energy_fn, neighbor_fn, _, _ = amber_energy(
                mm.params, mm.topology, None, coulomb_options=CutoffCoulomb(r_cut=1e4),
                nb_options=mm.nb_options,
            )  # fmt: skip
            pairs = neighbor_fn.allocate(jnp.asarray(mm.positions))  # no cutoff: all pairs
        # The list never changes (no cutoff), so keep its pairs only: its padding
        # entries (index n_atoms) made the jitted energy NaN at some configurations
        # (e.g. the minimised structure, jax-md 0.2.29, jaxlib 0.10), not the eager one.
        idx = np.asarray(pairs.idx)
        pairs = pairs.set(idx=jnp.asarray(idx[:, (idx < len(mm.positions)).all(0)]))

        def energy(flat):
            angstrom = 10.0 * jnp.reshape(flat, (-1, 3))
            return KJ_PER_KCAL * energy_fn(angstrom, pairs)["etotal"]

        return energy

    def generator_coordinates(self, kT: float, energy=None):
        """The coordinates a data-free generator proposes the molecule in: standardised
        internal coordinates (:mod:`cgflow.mapping.internal`) of a Z-matrix rooted at
        ACE's methyl carbon and placed along the backbone, so that phi and psi are two
        of its proper torsions; centred on the system's structure (the shipped one is
        minimised), bonds, angles and improper torsions scaled by their thermal widths
        in this force field at ``kT`` (``energy``: ``aa_energy_jax()`` where the
        caller has built it already). Vacuum only, as ``aa_energy_jax``."""
        from cgflow.mapping.internal import internal_coordinates, zmatrix_from_bonds

        traj = self._load_trajectory()
        atoms = list(traj.topology.atoms)
        key = {(a.residue.name, a.name): a.index for a in atoms}
        chain = [key[("ACE", "CH3")], *(key[k] for k in BACKBONE), key[("NME", "C")]]
        zm = zmatrix_from_bonds(
            len(atoms), [(a.index, b.index) for a, b in traj.topology.bonds], root=chain[0],
            prefer=chain[1:], heavy=[a.element.symbol != "H" for a in atoms],
        )  # fmt: skip
        energy = self.aa_energy_jax() if energy is None else energy
        return internal_coordinates(zm, traj.xyz[0], energy, kT)

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

    def kT(self, temperature: float) -> float:
        return MOLAR_GAS_CONSTANT * float(temperature)

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

    def cv(self, cg_map: LinearMap):
        """phi and psi (radians, (-pi, pi]) of CG positions (n, beads, 3): shape (n, 2),
        computed by MDTraj on the map's CG topology."""
        import mdtraj

        quads = self.dihedral_indices(cg_map)
        top = self.cg_topology(cg_map)
        indices = np.array([quads["phi"], quads["psi"]])

        def phi_psi(positions):
            traj = mdtraj.Trajectory(np.asarray(positions, np.float32), top)
            return mdtraj.compute_dihedrals(traj, indices, periodic=False).astype(float)

        return phi_psi


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
