"""Internal coordinates (cgflow.mapping.internal): the Z-matrix, the maps both ways,
and the Jacobian a generator's density in internal coordinates needs."""

import jax
import jax.numpy as jnp
import mdtraj
import numpy as np
import pytest

from cgflow.mapping import internal
from cgflow.systems import get_system


@pytest.fixture(scope="module")
def alanine():
    system = get_system("alanine_dipeptide", {"potential": {"solvent": "vacuum"}})
    traj = system._load_trajectory()
    return system, traj


def _distances(x):
    x = np.asarray(x, float)
    return np.linalg.norm(x[:, None] - x[None], axis=-1)


@pytest.mark.slow
def test_cartesian_to_internal_and_back_is_a_rigid_motion(alanine):
    system, traj = alanine
    coords = system.generator_coordinates(system.kT(300.0))
    zm = coords.zmatrix
    assert sorted(zm.order.tolist()) == list(range(22)) and zm.dim == 60
    rng = np.random.default_rng(0)
    for _ in range(3):  # thermal-looking distortions of the structure
        x = traj.xyz[0] + rng.normal(0, 0.005, traj.xyz[0].shape)
        y = coords.to_standard(x)
        back, _ = coords.to_cartesian(jnp.asarray(y, jnp.float32))
        assert np.abs(_distances(back) - _distances(x)).max() < 2e-5
        assert np.abs(coords.to_standard(np.asarray(back)) - y).max() < 2e-2  # y units


def test_phi_and_psi_are_proper_torsions_of_the_alanine_zmatrix(alanine):
    """The generator works in phi and psi directly: they are two of its torsions,
    with the sign convention of MDTraj's dihedrals."""
    system, traj = alanine
    zm = system.generator_coordinates(system.kT(300.0)).zmatrix
    _, _, torsions = internal.to_internal(zm, traj.xyz[0].astype(float))
    quads = {(int(zm.refs[k, 2]), int(zm.refs[k, 1]), int(zm.refs[k, 0]), int(a)): k
             for k, a in enumerate(zm.order) if k >= 3}  # fmt: skip
    for compute in (mdtraj.compute_phi, mdtraj.compute_psi):
        indices, angle = compute(traj)
        quad = tuple(int(i) for i in indices[0])
        k = quads.get(quad, quads.get(quad[::-1]))
        assert k is not None, f"{compute.__name__}: {quad} is not a torsion of the Z-matrix"
        assert not zm.improper[k]
        assert abs(torsions[k - 3] - angle[0, 0]) < 1e-5


def _euler(a, b, c):
    def rz(t):
        return jnp.array([[jnp.cos(t), -jnp.sin(t), 0.0], [jnp.sin(t), jnp.cos(t), 0.0],
                          [0.0, 0.0, 1.0]])  # fmt: skip

    def ry(t):
        return jnp.array([[jnp.cos(t), 0.0, jnp.sin(t)], [0.0, 1.0, 0.0],
                          [-jnp.sin(t), 0.0, jnp.cos(t)]])  # fmt: skip

    return rz(a) @ ry(b) @ rz(c)


@pytest.mark.slow
def test_the_log_jacobian_is_that_of_the_full_change_of_variables():
    """For 5 atoms, the Jacobian of (translation, ZYZ Euler angles, internal
    coordinates) -> Cartesian is sin(beta) prod b^2 prod sin(theta): its determinant
    divided by exp(log_jacobian) must not change with the internal coordinates."""
    zm = internal.zmatrix_from_bonds(5, [(0, 1), (1, 2), (2, 3), (3, 4)])
    assert zm.dim == 9
    rotation = jnp.array([0.3, 1.1, -0.7])

    def cartesian(q):
        bonds, angles, torsions = q[6:10], q[10:13], q[13:15]
        x = internal.to_cartesian(zm, bonds, angles, torsions)
        return (x @ _euler(*q[3:6]).T + q[:3]).reshape(-1)

    with jax.enable_x64(True):
        rng = np.random.default_rng(1)
        ratios = []
        for _ in range(4):
            ic = np.concatenate([rng.uniform(0.1, 0.2, 4), rng.uniform(1.2, 2.4, 3),
                                 rng.uniform(-3, 3, 2)])  # fmt: skip
            q = jnp.concatenate([jnp.array([0.5, -0.2, 0.1]), rotation, jnp.asarray(ic)])
            det = abs(np.linalg.det(np.asarray(jax.jacfwd(cartesian)(q))))
            log_j = internal.log_jacobian(ic[:4], ic[4:7])
            ratios.append(det / np.exp(log_j))
        assert np.allclose(ratios, np.sin(1.1), rtol=1e-8)


def test_a_disconnected_molecule_has_no_zmatrix():
    with pytest.raises(ValueError, match="not connected: 1 atoms unreached"):
        internal.zmatrix_from_bonds(5, [(0, 1), (1, 2), (2, 3)])


def test_the_generator_scales_are_thermal_widths(alanine):
    """Bonds fluctuate by about sqrt(kT / k_bond) (0.002-0.004 nm at 300 K in amber14),
    angles by a few degrees, proper torsions get the torsion scale."""
    system, _ = alanine
    coords = system.generator_coordinates(system.kT(300.0))
    n = 22
    bonds, angles = coords.scale[: n - 1], coords.scale[n - 1 : 2 * n - 3]
    torsions = coords.scale[2 * n - 3 :]
    assert np.all((bonds > 0.0015) & (bonds < 0.004))
    assert np.all((angles > 0.02) & (angles < 0.15))
    proper = ~coords.zmatrix.improper[3:]
    assert np.all(torsions[proper] == internal.TORSION_SCALE)
    assert np.all(torsions[~proper] < 0.5)
