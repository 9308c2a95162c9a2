import numpy as np
import pytest

from cgflow.mapping import LinearMap, apply_map, slice_map


def test_slice_map_positions_and_forces():
    m = slice_map("pick", 3, [2, 0], ["A", "B"], [1.0, 2.0])
    r = np.arange(18, dtype=float).reshape(2, 3, 3)
    f = -r
    R, F = apply_map(m, r, f)
    np.testing.assert_array_equal(R[:, 0], r[:, 2])
    np.testing.assert_array_equal(R[:, 1], r[:, 0])
    np.testing.assert_array_equal(F, -R)


def test_centre_of_mass_map_with_summed_forces():
    masses = np.array([1.0, 3.0])
    M = (masses / masses.sum())[None, :]
    D = np.ones((1, 2))  # bead force = total force on its atoms
    m = LinearMap("com", M, D, ("C",), np.array([4.0]), "sum")
    r = np.array([[[0.0, 0, 0], [4.0, 0, 0]]])
    f = np.array([[[1.0, 2, 0], [3.0, -1, 0]]])
    R, F = apply_map(m, r, f)
    np.testing.assert_allclose(R, [[[3.0, 0, 0]]])
    np.testing.assert_allclose(F, [[[4.0, 1, 0]]])


def test_invalid_force_map_rejected():
    M = np.array([[0.5, 0.5]])
    with pytest.raises(ValueError, match="D M"):
        LinearMap("bad", M, M.copy(), ("C",), np.array([2.0]), "slice")


def test_wrong_atom_count_rejected():
    m = slice_map("pick", 3, [0], ["A"], [1.0])
    with pytest.raises(ValueError, match="expects positions"):
        apply_map(m, np.zeros((4, 2, 3)))


def test_group_maps_centre_of_mass_and_geometry():
    from cgflow.mapping import group_map

    masses = [1.0, 3.0, 2.0, 2.0]
    r = np.array([[[0.0, 0, 0], [4.0, 0, 0], [1.0, 1, 0], [3.0, 1, 0]]])
    f = np.ones((1, 4, 3))
    com = group_map("com", [[0, 1], [2, 3]], masses, ["A", "B"], "mass", ["a", "b"])
    cog = group_map("cog", [[0, 1], [2, 3]], masses, ["A", "B"], "geometry")
    R, F = apply_map(com, r, f)
    np.testing.assert_allclose(R[0], [[3.0, 0, 0], [2.0, 1, 0]])
    np.testing.assert_allclose(F[0], 2.0)
    np.testing.assert_allclose(apply_map(cog, r)[0][0], [[2.0, 0, 0], [2.0, 1, 0]])
    assert com.bead_masses.tolist() == [4.0, 4.0] and com.force_map == "sum"
    assert com.metadata()["species_index"] == [0, 1]
    with pytest.raises(ValueError, match="weighting"):
        group_map("x", [[0]], masses, ["A"], "charge")


def test_species_survive_every_force_map():
    """Each force-map rule keeps the bead species (shared types, not one per bead)."""
    from cgflow.mapping import aggregate_constraints, group_map

    species = ["C", "C", "N"]
    sliced = slice_map("s", 5, [0, 2, 4], ["C1", "C2", "N1"], [12.0, 12.0, 14.0], species)
    grouped = group_map("g", [[0, 1], [2, 3], [4]], [12.0, 1.0, 12.0, 1.0, 14.0],
                        ["C1", "C2", "N1"], "mass", species)  # fmt: skip
    aggregated = aggregate_constraints(sliced, [(0, 1), (2, 3)])
    assert aggregated.force_map == "aggregated"
    for m in (sliced, grouped, aggregated):
        assert m.species == tuple(species), m.force_map
        assert m.metadata()["species_names"] == ["C", "N"]
        assert m.metadata()["species_index"] == [0, 0, 1]


def test_alanine_heavy_atoms_share_six_species():
    """With hbonds constraints the aggregated alanine map still has 6 atom types."""
    from cgflow.systems.alanine_dipeptide import AlanineDipeptide

    heavy = AlanineDipeptide(constraints="hbonds").mappings()["heavy_atoms"]
    assert heavy.force_map == "aggregated"
    assert sorted(set(heavy.species)) == ["C", "CA", "CB", "CH3", "N", "O"]
