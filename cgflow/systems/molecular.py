"""What every molecular system in OpenMM shares: the reference MD settings, the
force fields, the OpenMM set-up, united-atom maps with force maps over constraints,
the CG topology and the free-energy surface of two dihedrals it is scored on.

A system (:class:`cgflow.systems.molecule.Molecule`, declared in config, or
:class:`cgflow.systems.alanine_dipeptide.AlanineDipeptide`) subclasses
:class:`MolecularSystem` and says which structure it reads and which maps,
collective variables and basins it offers.

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

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from cgflow.mapping.linear import LinearMap, aggregate_constraints, slice_map
from cgflow.settings import Settings, setting
from cgflow.systems.base import OpenMMSetup, ReferenceSettings, SystemDefaults
from cgflow.units import MOLAR_GAS_CONSTANT, MOLECULAR

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
SURFACE_METRICS = (
    "fes_wrmse_kT", "fes_rmse_kT", "hist_mse", "js_divergence", "mass_outside",
)  # fmt: skip
"""The metrics of a free-energy surface; each basin but the first adds its
``dF_<basin>_err_kT``."""


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

    block = "molecule.reference"

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
    """How the free-energy surface of two dihedrals is scored (the ``evaluation``
    block)."""

    block = "molecule.evaluation"

    bins: int = setting(60, ge=2, doc="histogram bins per dihedral over (-pi, pi]")
    coarse_bins: int = setting(
        24, ge=2, doc="bins per dihedral of the primary metric, fes_wrmse_kT"
    )
    f_max: float = setting(
        5.0, gt=0, doc="fes_wrmse_kT scores bins within this many kT of the minimum"
    )


@dataclass(frozen=True)
class MolecularPotential(Settings):
    """A molecule's all-atom model (the ``potential`` block).

    Attributes:
      forcefield: one of FORCEFIELDS (OpenMM's XML files).
      solvent: vacuum, implicit (OBC2 for amber14, the force field's OBC otherwise)
        or explicit (TIP3P box, PME).
      padding_nm: solvent padding around the solute (explicit only).
      constraints: none or hbonds.
      pdb: the structure (a PDB file).
    """

    block = "molecule.potential"

    forcefield: str = setting("amber14", choices=tuple(FORCEFIELDS), doc="Amber force field")
    solvent: str = setting("implicit", choices=SOLVENTS, doc="vacuum, implicit or explicit")
    padding_nm: float = setting(1.0, gt=0, doc="solvent padding (explicit solvent, nm)")
    constraints: str = setting("hbonds", choices=CONSTRAINTS, doc="none or hbonds")
    pdb: str | None = setting(None, doc="the structure: a PDB file")

    def check(self):
        if self.pdb and not Path(self.pdb).is_file():
            raise ValueError(f"{self.block.split('.')[0]}: PDB file {self.pdb} not found")


class MolecularSystem(SystemDefaults):
    """What a molecule in OpenMM provides to the study, given its structure
    (``pdb_path``, ``_check_structure``), its maps (``mappings``), its collective
    variables (``cv_dihedrals``: two dihedrals) and basins (``basins``).

    ``potential`` is the :class:`MolecularPotential` in use.
    """

    units = MOLECULAR
    dim = 3
    reference_kind = "openmm"
    has_topology = True
    periodic = False
    cv_periodic = True
    primary_metric = "fes_wrmse_kT"
    figure_kind = "surface_2d"
    reference_settings = MDSettings
    evaluation_settings = FESEvaluation

    def n_reference_frames(self, reference: MDSettings) -> int:
        return reference.n_frames

    def kT(self, temperature: float) -> float:
        return MOLAR_GAS_CONSTANT * float(temperature)

    # --- structure and force field --------------------------------------------------
    def pdb_path(self) -> Path:
        return Path(self.potential.pdb)

    def _check_structure(self, path: Path, residues: list[str], n_atoms: int) -> None:
        """Raise ValueError when the structure read is not this system's."""

    def _read_pdb(self, read, residues, n_atoms):
        """``read(path)`` of the PDB, with a clear error for a missing, unreadable or
        wrong file; ``residues(obj)`` and ``n_atoms(obj)`` describe what was read."""
        path = self.pdb_path()
        if not path.is_file():
            raise FileNotFoundError(f"{self.type}: PDB file {path} not found")
        try:
            obj = read(str(path))
        except Exception as err:
            raise ValueError(f"{self.type}: cannot read PDB {path}: {err}") from None
        self._check_structure(path, residues(obj), n_atoms(obj))
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
                f"{self.type}: {self.pdb_path()}: atoms {min(i, j)} and {max(i, j)} "
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

    @property
    def n_atoms(self) -> int:
        return self.load_topology().n_atoms

    def forcefield_object(self):
        import openmm.app as app

        return app.ForceField(*forcefield_files(self.potential.forcefield, self.potential.solvent))

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
        n_solute = topology.getNumAtoms()
        ff = self.forcefield_object()
        constraints = app.HBonds if self.potential.constraints == "hbonds" else None
        if self.potential.solvent == "explicit":
            modeller = app.Modeller(topology, positions)
            modeller.addSolvent(
                ff, model="tip3p", padding=self.potential.padding_nm * unit.nanometer
            )
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
            system = create_system(
                ff, topology, self.pdb_path(), nonbondedMethod=app.NoCutoff,
                constraints=constraints, **masses,
            )  # fmt: skip
        return OpenMMSetup(topology, positions, system, np.arange(n_solute), self.load_topology())

    @property
    def jax_energy(self) -> bool:
        """In vacuum the force field has a JAX form (``aa_energy_jax``); JAX MD's
        converter has no implicit solvent or PME."""
        return self.potential.solvent == "vacuum"

    def aa_energy_jax(self, precision: str = "single"):
        """The all-atom energy in JAX, for data-free methods: ``energy(flat) -> kJ/mol``
        with ``flat`` the atoms' coordinates in nm (3 n_atoms,), the OpenMM System of
        this force field in vacuum converted by JAX MD (``convert_openmm_system``, all
        pairs: no cutoff). Built without constraints: a generator proposes every
        coordinate, so the bonds to hydrogen keep their harmonic terms.
        ``precision="double"`` needs JAX's x64 mode (tests against OpenMM)."""
        if self.potential.solvent != "vacuum":
            raise ValueError(
                f"{self.type}: the all-atom energy in JAX exists in vacuum only (JAX MD "
                f"converts no implicit solvent or PME); solvent is {self.potential.solvent!r}"
            )
        import warnings

        import jax.numpy as jnp
        import openmm.app as app
        from jax_md.mm_forcefields.amber.energy import energy as amber_energy
        from jax_md.mm_forcefields.io.openmm import convert_openmm_system
        from jax_md.mm_forcefields.nonbonded.electrostatics import CutoffCoulomb

        from cgflow.units import KJ_PER_KCAL

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

    def _internal_coordinates(self, chain: list[int], kT: float, energy=None):
        """Standardised internal coordinates (:mod:`cgflow.mapping.internal`) of a
        Z-matrix rooted at ``chain[0]`` and placed along ``chain`` (atom indices), so
        that torsions along it are proper torsions of the Z-matrix; centred on the
        system's structure, bonds, angles and improper torsions scaled by their
        thermal widths in this force field at ``kT`` (``energy``: ``aa_energy_jax()``
        where the caller has built it already)."""
        from cgflow.mapping.internal import internal_coordinates, zmatrix_from_bonds

        traj = self._load_trajectory()
        atoms = list(traj.topology.atoms)
        zm = zmatrix_from_bonds(
            len(atoms), [(a.index, b.index) for a, b in traj.topology.bonds], root=chain[0],
            prefer=chain[1:], heavy=[a.element.symbol != "H" for a in atoms],
        )  # fmt: skip
        energy = self.aa_energy_jax() if energy is None else energy
        return internal_coordinates(zm, traj.xyz[0], energy, kT)

    def constrained_pairs(self, topology=None) -> list[tuple[int, int]]:
        """Solute atom pairs held at fixed distance by the chosen constraints."""
        if self.potential.constraints == "none":
            return []
        if topology is None:
            topology = self.load_topology()
        return [
            (a.index, b.index)
            for a, b in topology.bonds
            if "H" in (a.element.symbol, b.element.symbol)
        ]

    # --- CG maps and topology -------------------------------------------------------
    def _atom_beads(self, name: str, idx, species, topology=None) -> LinearMap:
        """A slice map with one bead per atom of ``idx``, each weighing its atom and
        the hydrogens bonded to it that are not beads themselves (united atoms), its
        force map aggregated over the constrained hydrogens."""
        topology = self.load_topology() if topology is None else topology
        atoms = list(topology.atoms)
        beads = set(idx)
        hydrogens = {i: [] for i in range(len(atoms))}
        for a, b in topology.bonds:
            if b.element.symbol == "H" and b.index not in beads:
                hydrogens[a.index].append(b.index)
            if a.element.symbol == "H" and a.index not in beads:
                hydrogens[b.index].append(a.index)
        masses = [
            atoms[i].element.mass + sum(atoms[h].element.mass for h in hydrogens[i]) for i in idx
        ]
        names = self._bead_names([atoms[i] for i in idx])
        m = slice_map(name, len(atoms), list(idx), names, masses, species)
        return self._aggregated(m, topology)

    def _bead_names(self, atoms) -> list[str]:
        return [f"{a.residue.name}-{a.name}" for a in atoms]

    def _aggregated(self, cg_map: LinearMap, topology) -> LinearMap:
        if self.potential.constraints != "hbonds":
            return cg_map
        return aggregate_constraints(cg_map, self.constrained_pairs(topology))

    def cg_topology(self, cg_map: LinearMap):
        """MDTraj topology of the beads: each bead named after its heaviest atom in its
        residue, bonds between beads whose atoms are bonded or one unmapped atom
        apart."""
        import mdtraj as md

        aa = self.load_topology()
        members = [np.flatnonzero(row) for row in cg_map.coord_matrix]
        idx = [int(m[np.argmax(np.asarray(cg_map.coord_matrix)[k, m])])
               for k, m in enumerate(members)]  # fmt: skip
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
        owner = {int(a): p for p, m in enumerate(members) for a in m}
        graph = {a.index: set() for a in aa.atoms}
        for a, b in aa.bonds:
            graph[a.index].add(b.index)
            graph[b.index].add(a.index)
        bonded = set()
        for i, p in owner.items():
            for j in graph[i]:
                near = [j] if j in owner else [k for k in graph[j] if k != i]
                bonded |= {tuple(sorted((p, owner[k]))) for k in near if owner.get(k, p) != p}
        for p, q in sorted(bonded):
            top.add_bond(beads[p], beads[q])
        return top

    # --- observables ---------------------------------------------------------------
    @property
    def metric_names(self) -> tuple[str, ...]:
        return SURFACE_METRICS + tuple(f"dF_{b}_err_kT" for b in self.basin_names[1:])

    def cv(self, cg_map: LinearMap):
        """The two dihedrals (radians, (-pi, pi]) of CG positions (n, beads, 3): shape
        (n, 2), computed by MDTraj on the map's CG topology."""
        import mdtraj

        top = self.cg_topology(cg_map)
        indices = np.array(self.cv_dihedrals(cg_map))

        def dihedrals(positions):
            traj = mdtraj.Trajectory(np.asarray(positions, np.float32), top)
            return mdtraj.compute_dihedrals(traj, indices, periodic=False).astype(float)

        return dihedrals


def forcefield_files(forcefield: str, solvent: str) -> list[str]:
    """OpenMM's XML files of ``forcefield`` (FORCEFIELDS) with ``solvent``."""
    spec = FORCEFIELDS[forcefield]
    extra = {"implicit": [spec["implicit"]], "explicit": [spec["water"]]}.get(solvent, [])
    return [*spec["protein"], *extra]


def create_system(ff, topology, path, **options):
    """``ff.createSystem``, its failure for a residue the force field has no template
    for named with the structure file."""
    try:
        return ff.createSystem(topology, **options)
    except ValueError as err:
        raise ValueError(f"{path}: the force field cannot parameterise it: {err}") from None
