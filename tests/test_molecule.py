"""``type: molecule``: a structure with its CG maps, CVs and basins declared in config."""

import copy
from pathlib import Path

import mdtraj
import numpy as np
import pytest
from conftest import smoke_config

from cgflow.config import ConfigError, validate_config
from cgflow.systems import get_system
from cgflow.systems.alanine_dipeptide import AlanineDipeptide

REPO = Path(__file__).parents[1]
GLYCINE = str(REPO / "config" / "molecules" / "glycine_dipeptide.pdb")


def backbone(res: str) -> dict:
    """phi and psi of a capped single residue ``res``, as config declares them."""
    n, ca, c = (f"resname {res} and name {a}" for a in ("N", "CA", "C"))
    return {
        "phi": {"dihedral": ["resname ACE and name C", n, ca, c]},
        "psi": {"dihedral": [n, ca, c, "resname NME and name N"]},
    }


ALANINE_BASINS = {
    "beta": {},
    "alpha_R": {"phi": [-180, 0], "psi": [-120, 50]},
    "alpha_L": {"phi": [0, 180]},
}


def alanine_as_molecule(constraints="hbonds"):
    """The shipped alanine dipeptide, declared as a molecule."""
    pdb = str(AlanineDipeptide().pdb_path())
    bb = "(resname ACE and name C) or (resname ALA and name N CA C) or (resname NME and name N)"
    entry = {
        "potential": {"pdb": pdb, "solvent": "vacuum", "constraints": constraints},
        "cg_maps": {"heavy_atoms": {"select": "not element H"}, "backbone": {"select": bb}},
        "cvs": backbone("ALA"),
        "basins": ALANINE_BASINS,
    }
    return get_system("molecule", entry)


@pytest.mark.parametrize("constraints", ["hbonds", "none"])
def test_alanine_declared_in_config_maps_and_scores_as_the_alanine_system(constraints):
    """The same maps (coordinate and force matrices, united-atom masses, species), CG
    topology, phi/psi and basins as the hand-written alanine system."""
    mol, ala = alanine_as_molecule(constraints), AlanineDipeptide(constraints=constraints)
    for name, expected in ala.mappings().items():
        got = mol.mappings()[name]
        np.testing.assert_array_equal(got.coord_matrix, expected.coord_matrix)
        np.testing.assert_array_equal(got.force_matrix, expected.force_matrix)
        np.testing.assert_allclose(got.bead_masses, expected.bead_masses)
        assert got.species == expected.species and got.force_map == expected.force_map
        bonds = [[(a.index, b.index) for a, b in s.cg_topology(m).bonds]
                 for s, m in ((mol, got), (ala, expected))]  # fmt: skip
        assert bonds[0] == bonds[1]
        assert mol.cv_dihedrals(got) == ala.cv_dihedrals(expected)
        x = np.random.default_rng(1).normal(scale=0.3, size=(50, got.n_beads, 3))
        np.testing.assert_array_equal(mol.cv(got)(x), ala.cv(expected)(x))
    angles = np.random.default_rng(2).uniform(-np.pi, np.pi, size=(20_000, 2))
    np.testing.assert_array_equal(mol.basins(angles), ala.basins(angles))
    assert mol.basin_names == ala.basin_names and mol.metric_names == ala.metric_names
    assert mol.n_atoms == 22 and mol.declaration_problems(["heavy_atoms", "backbone"]) == []


def test_residue_and_group_maps_put_beads_at_centres_of_mass_and_sum_forces():
    mol = get_system("molecule", {
        "potential": {"pdb": GLYCINE},
        "cg_maps": {
            "residues": {"beads": "residues"},
            "halves": {"beads": [{"name": "head", "select": "resname ACE"},
                                 {"name": "tail", "select": "resname GLY NME"}]},
        },
    })  # fmt: skip
    top = mol.load_topology()
    masses = np.array([a.element.mass for a in top.atoms])
    xyz = mdtraj.load(GLYCINE).xyz
    for name, n_beads in (("residues", 3), ("halves", 2)):
        m = mol.mappings()[name]
        assert m.n_beads == n_beads
        np.testing.assert_allclose(m.bead_masses.sum(), masses.sum())
        # every atom's force goes to its bead, whole (constrained H included)
        np.testing.assert_array_equal(np.asarray(m.force_matrix).sum(axis=0), 1.0)
        ace = [a.index for a in top.atoms if a.residue.name == "ACE"]
        com = (masses[ace, None] * xyz[0, ace]).sum(0) / masses[ace].sum()
        np.testing.assert_allclose(np.asarray(m.coord_matrix)[0] @ xyz[0], com, atol=1e-6)
    assert mol.mappings()["residues"].species == ("ACE", "GLY", "NME")
    assert mol.cg_topology(mol.mappings()["residues"]).n_bonds == 2  # ACE-GLY, GLY-NME


@pytest.fixture(scope="module")
def smoke():
    return smoke_config()


def problems_of(config) -> str:
    with pytest.raises(ConfigError) as err:
        validate_config(config)
    return str(err.value)


def _broken_residue(tmp_path):
    """The glycine dipeptide with its middle residue renamed to one no force field
    knows."""
    text = open(GLYCINE).read().replace("GLY", "XYZ")
    path = tmp_path / "xyz.pdb"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    "change, fragment",
    [
        (lambda e, t: e["cg_maps"].update(none={"select": "name XX"}),
         "glycine_dipeptide.cg_maps.none.select: selection 'name XX' selects no atom"),
        (lambda e, t: e["cg_maps"].update(bad={"select": "name and and"}),
         "glycine_dipeptide.cg_maps.bad.select: selection 'name and and' is not valid"),
        (lambda e, t: e["cg_maps"]["heavy_atoms"].update(beads="blobs"),
         "glycine_dipeptide.cg_maps.heavy_atoms.beads: 'blobs' is not atoms, residues"),
        (lambda e, t: e["cvs"]["phi"].update(dihedral=["name C", "name N", "name CA", "name O"]),
         "glycine_dipeptide.cvs.phi.dihedral[0]: selection 'name C' selects 3 atoms, not one"),
        (lambda e, t: e["cvs"].pop("psi"), "glycine_dipeptide.cvs: a molecule's free-energy "
         "surface is scored on two dihedrals"),
        (lambda e, t: e["cg_maps"]["heavy_atoms"].update(select="name CA"),
         "glycine_dipeptide.cvs.phi: atoms ['ACE1-C', 'GLY2-N', 'GLY2-C'] are not beads of map "
         "'heavy_atoms'"),
        (lambda e, t: e["basins"].update(alpha_L={"omega": [0, 180]}),
         "glycine_dipeptide.basins.alpha_L: unknown keys ['omega']; allowed: ['phi', 'psi']"),
        (lambda e, t: e["basins"].update(alpha_L={"phi": [90, 0]}),
         "glycine_dipeptide.basins.alpha_L.phi: needs [low, high] in degrees"),
        (lambda e, t: e["basins"].update(alpha_L={}),
         "glycine_dipeptide.basins: ['beta', 'alpha_L'] have no ranges"),
        (lambda e, t: e["potential"].update(pdb="nowhere.pdb"),
         "glycine_dipeptide.potential: molecule: PDB file nowhere.pdb not found"),
        (lambda e, t: e.update(potential={"pdb": _broken_residue(t)}, cvs=backbone("XYZ")),
         "the force field cannot parameterise it: No template found for residue 1 (XYZ)"),
        (lambda e, t: e.update(mappings=["residues"]),
         "glycine_dipeptide.mappings[0]: molecule: unknown mapping 'residues'"),
    ],
)  # fmt: skip
def test_a_bad_declaration_is_refused_naming_it(smoke, tmp_path, change, fragment):
    config = copy.deepcopy(smoke)
    change(config["systems"]["glycine_dipeptide"], tmp_path)
    assert fragment in problems_of(config)


def test_only_a_molecule_declares_maps_cvs_and_basins(smoke):
    config = copy.deepcopy(smoke)
    config["systems"]["alanine_dipeptide"]["cvs"] = backbone("ALA")
    assert ("config.systems.alanine_dipeptide: ['cvs'] are declared by a system of type "
            "molecule, not alanine_dipeptide") in problems_of(config)  # fmt: skip


def test_basins_that_hold_no_reference_frame_stop_the_map_step(smoke):
    entry = copy.deepcopy(smoke["systems"]["glycine_dipeptide"])
    entry["basins"] = {"left": {"phi": [-180, -170]}, "right": {"phi": [170, 180]}}
    mol = get_system("molecule", entry)
    cg_map = mol.mappings()["heavy_atoms"]
    heavy = [a.index for a in mol.load_topology().atoms if a.element.symbol != "H"]
    frames = np.repeat(mdtraj.load(GLYCINE).xyz[:, heavy], 3, axis=0)  # phi near -74
    assert mol.basin_names == ("left", "right", "other")
    (problem,) = mol.reference_problems(cg_map, frames)
    assert "none of the 3 reference frames lies in a declared basin (['left', 'right'])" in problem
    assert "phi -74 to -74" in problem
    entry["basins"]["rest"] = {}  # declared: the frames are assigned to it
    assert get_system("molecule", entry).reference_problems(cg_map, frames) == []


def test_the_reference_sampling_does_not_read_the_declarations(smoke):
    """Declaring another CV or basin reruns the scoring, not the reference."""
    from cgflow.study import StudySettings

    study = StudySettings.from_config(smoke, "glycine_dipeptide")
    sampling = study.scoped(declared=False)
    assert not {"cg_maps", "cvs", "basins"} & set(sampling.entry)
    mol = sampling.build_system()
    assert mol.describe() == study.build_system().describe()  # the data's description
    assert {"cg_maps", "cvs", "basins"} <= set(study.scoped().entry)


def test_a_molecule_samples_and_maps_through_the_cli(smoke, tmp_path, monkeypatch):
    """``cgflow sample`` then ``cgflow map``: the CG data and trajectory of the
    declared map, its bonded terms for the prior."""
    import json

    from cgflow.cli import main
    from cgflow.io import load_dataset
    from cgflow.study import StudySettings

    monkeypatch.chdir(tmp_path)
    config = copy.deepcopy(smoke)
    config["systems"]["glycine_dipeptide"]["reference"].update(
        equilibration_ps=0.1, production_ps=0.4
    )
    study = StudySettings.from_config(config, "glycine_dipeptide")
    aa, cg = tmp_path / "aa.npz", tmp_path / "cg.npz"
    main(["sample", "--settings", study.scoped(declared=False).to_json(), "--temperature",
          "300", "--out", str(aa)])  # fmt: skip
    main(["map", "--settings", study.scoped().to_json(), "--mapping", "heavy_atoms",
          "--input", str(aa), "--out", str(cg)])  # fmt: skip
    data, meta = load_dataset(cg)
    assert data["positions"].shape == (20, 9, 3) and data["forces"].shape == (20, 9, 3)
    assert meta["mapping"]["bead_names"][4] == "GLY2-CA"
    assert mdtraj.load(str(cg.with_suffix(".h5"))).n_atoms == 9
    assert len(meta["cg_topology"]["bonds"]) == 8
    json.dumps(meta)


def test_a_data_free_generator_proposes_a_molecule_along_its_cvs():
    """The Z-matrix of a declared molecule runs along its CV dihedrals: for alanine
    declared in config, the same internal coordinates (order, references, centre and
    thermal scales) as the alanine system's."""
    mol, ala = alanine_as_molecule(), AlanineDipeptide(solvent="vacuum")
    names = [str(a) for a in mol.load_topology().atoms]
    assert [names[i] for i in mol.generator_chain()] == [
        "ACE1-CH3", "ACE1-C", "ALA2-N", "ALA2-CA", "ALA2-C", "NME3-N", "NME3-C",
    ]  # fmt: skip
    energy = ala.aa_energy_jax()
    got, expected = mol.generator_coordinates(2.5, energy), ala.generator_coordinates(2.5, energy)
    for field in expected.zmatrix._fields:
        np.testing.assert_array_equal(getattr(got.zmatrix, field), getattr(expected.zmatrix, field))
    np.testing.assert_array_equal(got.center, expected.center)
    np.testing.assert_array_equal(got.scale, expected.scale)
