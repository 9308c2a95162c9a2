"""Liquid water in a periodic box (Thaler, Stupp & Zavadlav 2022, their second system):
rigid TIP3P or SPC/E molecules with PME at a fixed density, mapped to one bead per
molecule.

The box is cubic, its edge set by ``n_molecules`` and ``density_g_cm3`` (NVT at a
fixed density, which the issue allows in place of an NPT equilibration): the
molecules start on a cubic lattice with random orientations, and the reference
sampler minimises and equilibrates them. The water is rigid (SETTLE), so the
forces between the atoms of a molecule are internal to its bead: the map that sums
a molecule's atomic forces is the exact force map for the centre-of-mass bead, and
for the oxygen bead too (D M^T = 1 in both; a rigid translation of the molecule
moves either bead point by the same vector).

A liquid has no slow collective variable and no basins: its models are scored on
structure (``figure_kind`` ``structure``: the errors of g(r) and of the triplet ADF
against the test reference, :mod:`cgflow.analysis.structure`). What the protocol
calls its CVs are per-frame descriptors of that structure, the frame's g(r) in a
few shells around the first peak, which RE's sample score and the evaluation's
time blocks use.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from cgflow.mapping.linear import LinearMap, group_map, slice_map
from cgflow.settings import Settings, setting
from cgflow.systems.base import OpenMMSetup, SystemDefaults
from cgflow.systems.molecular import MDSettings
from cgflow.systems.pairs import pair_distance_counts, rdf_of_counts
from cgflow.units import MOLAR_GAS_CONSTANT, MOLECULAR

AVOGADRO = 6.022_140_76e23
WATER_MODELS = {
    # force field file, O-H length (nm), H-O-H angle (degrees); TIP4P-Ew adds a
    # massless virtual site M per molecule (OpenMM's Modeller.addExtraParticles)
    "tip3p": ("amber14/tip3p.xml", 0.09572, 104.52),
    "spce": ("amber14/spce.xml", 0.1, 109.47),
    "tip4pew": ("tip4pew.xml", 0.09572, 104.52),
}
MASSES = {"O": 15.99943, "H": 1.007947}


@dataclass(frozen=True)
class WaterMD(MDSettings):
    """Reference MD of the water box (the system's ``reference`` block)."""

    block = "water.reference"

    equilibration_ps: float = setting(20.0, ge=0, doc="simulated before saving (ps)")
    production_ps: float = setting(100.0, gt=0, doc="saved run length (ps)")
    save_interval_ps: float = setting(0.1, gt=0, doc="time between saved frames (ps)")


SHELLS_NM = (0.24, 0.27, 0.30, 0.33, 0.37, 0.42, 0.48, 0.56)
"""Edges of the shells whose per-frame g(r) are the water's descriptors (the first
peak of O-O g(r) is near 0.28 nm, the first minimum near 0.34 nm)."""


@dataclass(frozen=True)
class StructureEvaluation(Settings):
    """How a liquid's structure is scored (the ``evaluation`` block).

    Attributes:
      rdf_bins: bins of g(r) over (0, r_max_nm).
      r_max_nm: largest distance of g(r); below half the box edge.
      r_min_nm: g(r) is scored from here on (below it both are zero).
      adf_bins: bins of the angle over (0, pi).
      adf_cutoff_nm: neighbours of a bead for the ADF (0.318 nm in the paper).
      adf_frames: frames per data set the ADF is computed on (evenly spaced).
    """

    block = "water.evaluation"

    rdf_bins: int = setting(80, ge=4, doc="bins of g(r)")
    r_max_nm: float = setting(0.8, gt=0, doc="largest distance of g(r) (nm)")
    r_min_nm: float = setting(0.2, ge=0, doc="g(r) is scored from this distance on (nm)")
    adf_bins: int = setting(45, ge=4, doc="bins of the angle over (0, pi)")
    adf_cutoff_nm: float = setting(0.318, gt=0, doc="neighbour cutoff of the ADF (nm)")
    adf_frames: int = setting(200, ge=1, doc="frames per data set for the ADF")

    def check(self):
        if self.r_min_nm >= self.r_max_nm:
            raise ValueError(
                f"water.evaluation: r_min_nm {self.r_min_nm} must be below r_max_nm {self.r_max_nm}"
            )


@dataclass(frozen=True)
class Water(SystemDefaults, Settings):
    """A cubic box of rigid water (the ``potential`` block).

    Attributes:
      model: tip3p, spce or tip4pew (four sites: O, H1, H2 and a massless M).
      n_molecules: molecules in the box.
      density_g_cm3: mass density, which fixes the box edge.
      cutoff_nm: real-space cutoff of PME and Lennard-Jones; less than half the box.
      seed: seed of the start lattice's orientations.
    """

    block = "water.potential"

    model: str = setting("tip3p", choices=tuple(WATER_MODELS), doc="tip3p, spce or tip4pew")
    n_molecules: int = setting(256, ge=8, doc="molecules in the box")
    density_g_cm3: float = setting(0.997, gt=0, doc="mass density (g/cm^3): fixes the box")
    cutoff_nm: float = setting(0.9, gt=0, doc="real-space cutoff (nm)")
    seed: int = setting(0, ge=0, doc="seed of the start orientations")

    type = "water"
    units = MOLECULAR
    dim = 3
    reference_kind = "openmm"
    has_topology = True
    periodic = True
    jax_energy = False
    cv_names = tuple(
        f"g_{a:.2f}_{b:.2f}" for a, b in zip(SHELLS_NM[:-1], SHELLS_NM[1:], strict=True)
    )
    cv_periodic = False
    basin_names = ()
    metric_names = ("rdf_rmse", "adf_rmse")
    primary_metric = "rdf_rmse"
    figure_kind = "structure"
    reference_settings = WaterMD
    evaluation_settings = StructureEvaluation

    def check(self):
        if self.cutoff_nm >= 0.5 * self.box_nm:
            raise ValueError(
                f"water: cutoff_nm {self.cutoff_nm} must be below half the box edge "
                f"({self.box_nm:.3f} nm for {self.n_molecules} molecules at "
                f"{self.density_g_cm3} g/cm^3)"
            )

    @property
    def n_atoms(self) -> int:
        """Particles saved: 3 per molecule, 4 with TIP4P-Ew's virtual site."""
        return self.sites * self.n_molecules

    @property
    def sites(self) -> int:
        return 4 if self.model == "tip4pew" else 3

    @property
    def box_nm(self) -> float:
        """Edge of the cubic box (nm) holding n_molecules at density_g_cm3."""
        grams = self.n_molecules * (MASSES["O"] + 2 * MASSES["H"]) / AVOGADRO
        return (grams / self.density_g_cm3) ** (1.0 / 3.0) * 1e7  # cm -> nm

    def describe(self) -> dict:
        return {"type": self.type, **asdict(self)}

    @staticmethod
    def kT(temperature: float) -> float:
        return MOLAR_GAS_CONSTANT * float(temperature)

    def n_reference_frames(self, reference: WaterMD) -> int:
        return reference.n_frames

    # --- structure and force field --------------------------------------------------
    def start_positions(self) -> np.ndarray:
        """(n_atoms, 3) nm: molecules on a cubic lattice filling the box, each in the
        model's geometry with a random orientation (atoms O, H1, H2 per molecule)."""
        _, r_oh, angle = WATER_MODELS[self.model]
        half = math.radians(angle) / 2
        local = np.array([[0.0, 0.0, 0.0],
                          [r_oh * math.sin(half), 0.0, r_oh * math.cos(half)],
                          [-r_oh * math.sin(half), 0.0, r_oh * math.cos(half)]])  # fmt: skip
        per_side = math.ceil(self.n_molecules ** (1.0 / 3.0))
        spacing = self.box_nm / per_side
        grid = np.stack(np.meshgrid(*[np.arange(per_side)] * 3, indexing="ij"), -1).reshape(-1, 3)
        centres = (grid[: self.n_molecules] + 0.5) * spacing
        rng = np.random.default_rng(self.seed)
        q = rng.standard_normal((self.n_molecules, 4))
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        return np.concatenate(
            [c + local @ _rotation(qi).T for c, qi in zip(centres, q, strict=True)]
        )

    def topology(self):
        """OpenMM topology: one HOH residue (O, H1, H2) per molecule, with the box."""
        import openmm.app as app
        import openmm.unit as unit
        from openmm import Vec3

        top = app.Topology()
        chain = top.addChain()
        o, h = app.Element.getBySymbol("O"), app.Element.getBySymbol("H")
        for _ in range(self.n_molecules):
            res = top.addResidue("HOH", chain)
            a_o = top.addAtom("O", o, res)
            a_h1, a_h2 = top.addAtom("H1", h, res), top.addAtom("H2", h, res)
            top.addBond(a_o, a_h1)
            top.addBond(a_o, a_h2)
        edge = self.box_nm
        top.setPeriodicBoxVectors([Vec3(edge, 0, 0), Vec3(0, edge, 0), Vec3(0, 0, edge)] *
                                  unit.nanometer)  # fmt: skip
        return top

    def openmm_setup(self, hydrogen_mass_amu: float | None = None) -> OpenMMSetup:
        """Rigid water with PME (and a long-range dispersion correction); every atom
        is saved."""
        import mdtraj as md
        import openmm.app as app
        import openmm.unit as unit

        if hydrogen_mass_amu is not None:
            raise ValueError("water: hydrogen mass repartitioning does not apply to rigid water")
        ff = app.ForceField(WATER_MODELS[self.model][0])
        modeller = app.Modeller(self.topology(), self.start_positions() * unit.nanometer)
        if self.sites == 4:
            modeller.addExtraParticles(ff)  # the virtual site M of each molecule
        top, positions = modeller.topology, modeller.positions
        system = ff.createSystem(top, nonbondedMethod=app.PME,
                                 nonbondedCutoff=self.cutoff_nm * unit.nanometer,
                                 constraints=app.HBonds, rigidWater=True)  # fmt: skip
        if system.getNumParticles() != self.n_atoms:
            raise ValueError(f"water: {self.model} gave {system.getNumParticles()} particles, "
                             f"expected {self.n_atoms}")  # fmt: skip
        return OpenMMSetup(top, positions, system, np.arange(self.n_atoms),
                           md.Topology.from_openmm(top))  # fmt: skip

    # --- CG maps ----------------------------------------------------------------------
    def mappings(self) -> dict[str, LinearMap]:
        """``com``: a bead at each molecule's centre of mass; ``oxygen``: at its
        oxygen. Both take the molecule's summed force over its three atoms (exact for
        rigid water). TIP4P-Ew's virtual site M enters neither: OpenMM reports the
        forces on the atoms with M's share already spread onto them, and M's own
        entry besides (adding it would count that force twice; tested against finite
        differences)."""
        k = self.sites
        masses = np.tile([MASSES["O"], MASSES["H"], MASSES["H"], 0.0][:k], self.n_molecules)
        groups = [[k * i, k * i + 1, k * i + 2] for i in range(self.n_molecules)]
        names = ["W"] * self.n_molecules
        com = group_map("com", groups, masses, names, species=["W"] * self.n_molecules)
        oxygen = slice_map("oxygen", self.n_atoms, [k * i for i in range(self.n_molecules)],
                           names, [masses[g].sum() for g in groups])  # fmt: skip
        summed = LinearMap("oxygen", oxygen.coord_matrix, com.force_matrix, oxygen.bead_names,
                           com.bead_masses, "sum", ("W",) * self.n_molecules)  # fmt: skip
        return {"com": com, "oxygen": summed}

    def cv(self, cg_map: LinearMap):
        """Per-frame structure descriptors: each frame's g(r) in the shells of
        SHELLS_NM, (n, len(cv_names)), minimum image in this box."""
        edges = np.asarray(SHELLS_NM)
        volume, n = self.box_nm**3, cg_map.coord_matrix.shape[0]
        box = np.full(3, self.box_nm)

        def descriptors(positions):
            counts = pair_distance_counts(np.asarray(positions), box, edges)
            return rdf_of_counts(counts, np.ones(len(counts)), n, edges, volume)

        return descriptors

    @staticmethod
    def basins(cv_values: np.ndarray) -> np.ndarray:
        """A liquid has no basins: every frame in none (no basin free energies)."""
        return np.full(len(cv_values), -1)

    def cg_topology(self, cg_map: LinearMap):
        """MDTraj topology of the beads: one residue ``SOL`` with one atom ``W`` each."""
        import mdtraj as md

        top = md.Topology()
        chain = top.add_chain()
        oxygen = md.element.oxygen
        for i in range(cg_map.coord_matrix.shape[0]):
            top.add_atom("W", oxygen, top.add_residue("SOL", chain, resSeq=i + 1))
        return top


def _rotation(q: np.ndarray) -> np.ndarray:
    """Rotation matrix of a unit quaternion (w, x, y, z)."""
    w, x, y, z = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])  # fmt: skip
