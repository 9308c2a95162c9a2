"""``molecule``: any structure OpenMM can parameterise, with its CG maps, collective
variables and basins declared in config (MDTraj selections)::

    systems:
      glycine_dipeptide:
        type: molecule
        potential: {pdb: config/molecules/glycine_dipeptide.pdb, forcefield: amber14}
        cg_maps:
          heavy_atoms: {select: not element H}
        cvs:
          phi: {dihedral: [resname ACE and name C, resname GLY and name N,
                           resname GLY and name CA, resname GLY and name C]}
          psi: {dihedral: [...]}
        basins:
          beta: {}
          alpha_R: {phi: [-180, 0], psi: [-120, 50]}
          alpha_L: {phi: [0, 180]}

What it shares with every molecule (reference MD, force fields, force maps, CG
topology, scoring) is :class:`cgflow.systems.molecular.MolecularSystem`.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import numpy as np

from cgflow.mapping.linear import LinearMap, group_map
from cgflow.systems.molecular import (
    MolecularPotential,
    MolecularSystem,
    create_system,
    forcefield_files,
)

SPECIES = ("atom_name", "residue", "residue_atom")
"""How atom beads are typed: by atom name (every CA alike), by residue name, or both."""


def _select(topology, expr, where: str) -> np.ndarray:
    """Atom indices of an MDTraj selection, naming ``where`` in a bad or empty one."""
    if not isinstance(expr, str) or not expr.strip():
        raise ValueError(f"{where}: needs an MDTraj selection string, got {expr!r}")
    found = _selection(topology, expr)
    if isinstance(found, str):
        raise ValueError(f"{where}: selection {expr!r} is not valid: {found}")
    if len(found) == 0:
        raise ValueError(f"{where}: selection {expr!r} selects no atom")
    return np.asarray(found, int)


@functools.lru_cache(maxsize=1024)
def _selection(topology, expr: str) -> tuple[int, ...] | str:
    """``topology.select(expr)``, or MDTraj's complaint about it; cached per topology
    (one object per structure file, see ``_TOPOLOGIES``), since config checks parse
    the same selections many times."""
    try:
        return tuple(int(i) for i in topology.select(expr))
    except Exception as err:  # MDTraj raises several kinds for a bad expression
        return str(err)


_TOPOLOGIES: dict = {}
"""MDTraj topology of each structure file read, by (path, modification time)."""


@functools.lru_cache(maxsize=64)
def _parameterisation_problem(path: str, mtime_ns: int, forcefield: str, solvent: str):
    """Why the force field cannot build a System of the structure (None: it can);
    cached per file version, since every check of a config asks again."""
    del mtime_ns  # part of the key only
    import openmm.app as app

    try:
        pdb = app.PDBFile(path)
        create_system(app.ForceField(*forcefield_files(forcefield, solvent)), pdb.topology, path)
    except ValueError as err:
        return str(err)
    return None


def _species(atom, how: str) -> str:
    return {
        "atom_name": atom.name,
        "residue": atom.residue.name,
        "residue_atom": f"{atom.residue.name}-{atom.name}",
    }[how]


def _only(block, allowed: set, where: str) -> dict:
    if not isinstance(block, dict):
        raise ValueError(f"{where}: must be a mapping, not {type(block).__name__}")
    unknown = sorted(set(block) - allowed)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; allowed: {sorted(allowed)}")
    return block


@dataclass(frozen=True)
class MapSpec:
    """One declared CG map (``cg_maps.<name>``).

    Attributes:
      select: the atoms mapped (MDTraj selection).
      beads: ``atoms`` (one bead per selected atom, united with its unmapped
        hydrogens) or ``residues`` (one bead per residue, at the centre of mass of
        its selected atoms), or a list of ``{name, select}`` groups (one bead each,
        at the group's centre of mass).
      species: how atom beads are typed (SPECIES; residue beads are typed by
        residue, groups by name).
    """

    select: str = "all"
    beads: str | tuple = "atoms"
    species: str = "atom_name"

    @classmethod
    def of(cls, block, where: str) -> MapSpec:
        block = _only(block, {"select", "beads", "species"}, where)
        spec = cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in block.items()})
        if isinstance(spec.beads, str) and spec.beads not in ("atoms", "residues"):
            raise ValueError(f"{where}.beads: {spec.beads!r} is not atoms, residues or a list "
                             "of {name, select} groups")  # fmt: skip
        if spec.species not in SPECIES:
            raise ValueError(f"{where}.species: {spec.species!r} is not one of {list(SPECIES)}")
        for k, group in enumerate(spec.beads if isinstance(spec.beads, tuple) else ()):
            _only(group, {"name", "select"}, f"{where}.beads[{k}]")
            if not {"name", "select"} <= set(group):
                raise ValueError(f"{where}.beads[{k}]: a group needs a name and a select")
        return spec


OTHER = "other"
"""The basin added for the frames that no declared basin holds, when every declared
one has ranges."""


@dataclass(frozen=True)
class Basin:
    """A basin: a range (degrees, (low, high]) of some CVs; none: every frame that no
    other basin takes."""

    name: str
    ranges: tuple[tuple[int, float, float], ...]

    def contains(self, degrees: np.ndarray) -> np.ndarray:
        inside = np.ones(len(degrees), bool)
        for k, low, high in self.ranges:
            inside &= (degrees[:, k] > low) & (degrees[:, k] <= high)
        return inside


def _basins(block, cv_names: tuple[str, ...], where: str) -> tuple[Basin, ...]:
    """The declared basins in order (the first is the one free energies are relative
    to), with a catch-all ``other`` appended when none is declared."""
    if block is None:
        return (Basin("all", ()),)
    if not isinstance(block, dict) or not block:
        raise ValueError(f"{where}: must be a mapping of basin names to CV ranges")
    basins = []
    for name, ranges in block.items():
        at = f"{where}.{name}"
        ranges = _only(ranges or {}, set(cv_names), at)
        parsed = []
        for cv, bounds in ranges.items():
            ok = isinstance(bounds, list | tuple) and len(bounds) == 2 and all(
                isinstance(b, int | float) and not isinstance(b, bool) for b in bounds
            )  # fmt: skip
            if not ok or not -180 <= bounds[0] < bounds[1] <= 180:
                raise ValueError(f"{at}.{cv}: needs [low, high] in degrees, -180 <= low < "
                                 f"high <= 180, got {bounds!r}")  # fmt: skip
            parsed.append((cv_names.index(cv), float(bounds[0]), float(bounds[1])))
        basins.append(Basin(str(name), tuple(parsed)))
    rest = [b.name for b in basins if not b.ranges]
    if len(rest) > 1:
        raise ValueError(f"{where}: {rest} have no ranges; at most one basin takes the rest")
    return tuple(basins) if rest else (*basins, Basin(OTHER, ()))


class Molecule(MolecularSystem):
    """A molecule from a PDB file and an OpenMM force field, with its CG maps,
    collective variables and basins declared in config.

    Built from a system's whole config entry (:meth:`from_entry`): ``potential``
    (structure and force field), ``cg_maps`` (:class:`MapSpec` by name), ``cvs``
    (two dihedrals, each four single-atom MDTraj selections) and ``basins`` (CV
    ranges in degrees, in order; a frame belongs to the first basin whose ranges
    hold it, a basin without ranges takes the rest, and without one an ``other``
    basin is added).
    """

    type = "molecule"
    entry_blocks = ("cg_maps", "cvs", "basins")

    def __init__(self, potential: MolecularPotential, cg_maps: dict, cvs: dict,
                 basins: dict | None = None):  # fmt: skip
        if not potential.pdb:
            raise ValueError("molecule: potential.pdb is required (the structure)")
        self.potential = potential
        if not isinstance(cg_maps, dict):
            raise ValueError("cg_maps: must be a mapping of map names to maps")
        self._maps = {name: MapSpec.of(spec, f"cg_maps.{name}") for name, spec in cg_maps.items()}
        if not isinstance(cvs, dict) or len(cvs) not in (0, 2):
            raise ValueError(
                "cvs: a molecule's free-energy surface is scored on two dihedrals, "
                f"declared by name (e.g. phi and psi); got {cvs!r}"
            )
        self._cvs = {}
        for name, spec in cvs.items():
            spec = _only(spec, {"dihedral"}, f"cvs.{name}")
            atoms = spec.get("dihedral")
            if not isinstance(atoms, list | tuple) or len(atoms) != 4:
                raise ValueError(f"cvs.{name}.dihedral: needs four MDTraj selections, one "
                                 f"atom each; got {atoms!r}")  # fmt: skip
            self._cvs[str(name)] = tuple(atoms)
        self._basins = _basins(basins, self.cv_names, "basins")

    @classmethod
    def potential_settings(cls) -> type:
        return MolecularPotential

    @classmethod
    def from_entry(cls, entry: dict) -> Molecule:
        """The molecule of a config entry (its potential, cg_maps, cvs and basins)."""
        potential = MolecularPotential.from_dict(entry.get("potential"), "potential")
        return cls(potential, entry.get("cg_maps") or {}, entry.get("cvs") or {},
                   entry.get("basins"))  # fmt: skip

    @property
    def cv_names(self) -> tuple[str, ...]:
        return tuple(self._cvs)

    @property
    def basin_names(self) -> tuple[str, ...]:
        return tuple(b.name for b in self._basins)

    def describe(self) -> dict:
        """Its type and all-atom model: what its reference data depend on (the maps,
        CVs and basins are read from the entry by every later step)."""
        return {"type": self.type, **asdict(self.potential)}

    def _file_key(self) -> tuple[str, int]:
        path = self.pdb_path().resolve()
        return str(path), path.stat().st_mtime_ns

    def load_topology(self):
        """MDTraj topology of the solute, read once per version of its file."""
        key = self._file_key()
        if key not in _TOPOLOGIES:
            _TOPOLOGIES[key] = super().load_topology()
        return _TOPOLOGIES[key]

    def _bead_names(self, atoms) -> list[str]:
        return [f"{a.residue.name}{a.residue.resSeq}-{a.name}" for a in atoms]

    def mappings(self) -> dict[str, LinearMap]:
        return {name: self._build_map(name, spec) for name, spec in self._maps.items()}

    def _build_map(self, name: str, spec: MapSpec) -> LinearMap:
        top = self.load_topology()
        where = f"cg_maps.{name}"
        idx = _select(top, spec.select, f"{where}.select")
        atoms = list(top.atoms)
        masses = np.array([a.element.mass for a in atoms])
        if spec.beads == "atoms":
            species = [_species(atoms[i], spec.species) for i in idx]
            return self._atom_beads(name, idx, species, top)
        if spec.beads == "residues":
            groups, names = {}, []
            for i in idx:
                groups.setdefault(atoms[i].residue.index, []).append(int(i))
            residues = [atoms[g[0]].residue for g in groups.values()]
            names = [f"{r.name}{r.resSeq}" for r in residues]
            species = [r.name for r in residues]
            m = group_map(name, list(groups.values()), masses, names, "mass", species)
        else:
            chosen = set(idx.tolist())
            groups = []
            for k, group in enumerate(spec.beads):
                sel = _select(top, group["select"], f"{where}.beads[{k}].select")
                groups.append(sorted(chosen.intersection(sel.tolist())))
                if not groups[-1]:
                    raise ValueError(f"{where}.beads[{k}]: selects no atom of {spec.select!r}")
            names = [str(g["name"]) for g in spec.beads]
            m = group_map(name, groups, masses, names, "mass", names)
        try:
            return self._aggregated(m, top)
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None

    def cv_atoms(self) -> dict[str, list[int]]:
        """The atoms of each CV's dihedral, by CV name."""
        if not self._cvs:
            raise ValueError("cvs: none declared (a molecule needs two dihedrals, by name)")
        top = self.load_topology()
        out = {}
        for name, selections in self._cvs.items():
            atoms = []
            for k, expr in enumerate(selections):
                idx = _select(top, expr, f"cvs.{name}.dihedral[{k}]")
                if len(idx) != 1:
                    raise ValueError(f"cvs.{name}.dihedral[{k}]: selection {expr!r} selects "
                                     f"{len(idx)} atoms, not one")  # fmt: skip
                atoms.append(int(idx[0]))
            out[name] = atoms
        return out

    def generator_chain(self) -> list[int]:
        """The atoms a data-free generator's Z-matrix is placed along: the CV
        dihedrals' atoms in order (phi's, then psi's not yet in it), with the
        lowest-numbered heavy atom bonded to each end put before and after them."""
        chain: list[int] = []
        for atoms in self.cv_atoms().values():
            chain += [a for a in atoms if a not in chain]
        top = self.load_topology()
        heavy = {a.index for a in top.atoms if a.element.symbol != "H"}
        bonded = {i: set() for i in range(top.n_atoms)}
        for a, b in top.bonds:
            bonded[a.index].add(b.index)
            bonded[b.index].add(a.index)
        ends = [sorted((bonded[end] & heavy) - set(chain)) for end in (chain[0], chain[-1])]
        return ends[0][:1] + chain + ends[1][:1]

    def generator_coordinates(self, kT: float, energy=None):
        """The coordinates a data-free generator proposes the molecule in: internal
        coordinates of a Z-matrix along ``generator_chain``, so that the two CV
        dihedrals are proper torsions of it (see
        :meth:`MolecularSystem._internal_coordinates`). Vacuum only, as
        ``aa_energy_jax``."""
        return self._internal_coordinates(self.generator_chain(), kT, energy)

    def cv_dihedrals(self, cg_map: LinearMap) -> list[list[int]]:
        """The bead quadruples of the two CV dihedrals in map ``cg_map``: each CV atom
        must be a bead of its own (an atom bead)."""
        M = np.asarray(cg_map.coord_matrix)
        bead_of = {int(np.flatnonzero(row)[0]): p for p, row in enumerate(M)
                   if np.count_nonzero(row) == 1}  # fmt: skip
        names = list(self.load_topology().atoms)
        quads = []
        for cv, atoms in self.cv_atoms().items():
            missing = [str(names[a]) for a in atoms if a not in bead_of]
            if missing:
                raise ValueError(f"cvs.{cv}: atoms {missing} are not beads of map "
                                 f"{cg_map.name!r} (a CV is computed on CG positions)")  # fmt: skip
            quads.append([bead_of[a] for a in atoms])
        return quads

    def basins(self, angles: np.ndarray) -> np.ndarray:
        """Basin of each CV pair (radians, (n, 2)): the first declared basin whose
        ranges hold it, else the one that takes the rest."""
        degrees = np.degrees(np.asarray(angles, float))
        out = np.full(len(degrees), -1)
        rest = next(k for k, b in enumerate(self._basins) if not b.ranges)
        for k, basin in enumerate(self._basins):
            if basin.ranges:
                out = np.where((out < 0) & basin.contains(degrees), k, out)
        return np.where(out < 0, rest, out)

    def reference_problems(self, cg_map, positions) -> list[str]:
        """The declared basins hold none of the reference's frames (all fall in the
        ``other`` basin added for what they leave), so that no basin free energy can
        be scored."""
        implicit = self._basins[-1] == Basin(OTHER, ())
        if len(self._basins) < 2 or not self._cvs or not implicit:
            return []
        angles = self.cv(cg_map)(positions)
        if np.any(self.basins(angles) != len(self._basins) - 1):
            return []
        low, high = np.degrees(angles.min(axis=0)), np.degrees(angles.max(axis=0))
        spans = ", ".join(f"{n} {a:.0f} to {b:.0f}" for n, a, b in zip(self.cv_names, low, high,
                                                                      strict=True))  # fmt: skip
        ranged = [b.name for b in self._basins if b.ranges]
        return [f"basins: none of the {len(angles)} reference frames lies in a declared basin "
                f"({ranged}); its CVs span {spans} degrees"]  # fmt: skip

    def declaration_problems(self, mappings, parameterise: bool = True) -> list[str]:
        """Problems of the declarations that only the structure shows: a map, CV or
        basin naming atoms the structure lacks, a CV not on the beads of a map the
        study uses, and (``parameterise``) a force field that cannot parameterise the
        structure."""
        problems = []
        if not self._maps:
            problems.append("cg_maps: a molecule needs at least one CG map, by name")
        try:
            maps = self.mappings()
            self.cv_atoms()
        except (ValueError, FileNotFoundError) as err:
            return [str(err)]
        for name in mappings:
            if name in maps:
                try:
                    self.cv_dihedrals(maps[name])
                except ValueError as err:
                    problems.append(str(err))
        if not parameterise:
            return problems
        try:
            problem = _parameterisation_problem(
                *self._file_key(), self.potential.forcefield, self.potential.solvent
            )
        except ImportError:  # no OpenMM here (a JAX-side job): the sampling checks it
            return problems
        return problems + ([f"potential: {problem}"] if problem else [])
