"""The molecular virial pressure of a periodic box (cgflow.reference.pressure)."""

import numpy as np
import pytest

openmm = pytest.importorskip("openmm")
unit = pytest.importorskip("openmm.unit")

from cgflow.reference.pressure import box_scaling_derivative  # noqa: E402
from cgflow.units import pressure_bar  # noqa: E402

A, RC, EDGE = 5.0, 0.8, 2.0  # soft repulsion A (1 - r/rc)^3 (kJ/mol, nm), box edge (nm)


def _diatomics(n_mol: int, rng):
    """n_mol two-atom molecules (0.25 nm long, masses 16 and 1) in a cubic box, some
    of them split across its faces."""
    centres = rng.uniform(0, EDGE, (n_mol, 3))
    axis = rng.standard_normal((n_mol, 3))
    axis *= 0.25 / np.linalg.norm(axis, axis=1, keepdims=True)
    x = np.stack([centres, centres + axis], 1).reshape(-1, 3)
    return x % EDGE  # wrapped atom by atom: molecules cross the box faces


def _system(n_mol: int, interacting: bool = True):
    system = openmm.System()
    box = np.eye(3) * EDGE
    system.setDefaultPeriodicBoxVectors(*[openmm.Vec3(*v) for v in box])
    bonds = openmm.HarmonicBondForce()
    bonds.setUsesPeriodicBoundaryConditions(True)
    pair = openmm.CustomNonbondedForce(f"{A}*(1-r/{RC})^3")
    pair.setNonbondedMethod(openmm.CustomNonbondedForce.CutoffPeriodic)
    pair.setCutoffDistance(RC)
    for m in range(n_mol):
        system.addParticle(16.0)
        system.addParticle(1.0)
        pair.addParticle([])
        pair.addParticle([])
        bonds.addBond(2 * m, 2 * m + 1, 0.2, 1000.0)  # stretched
        pair.addExclusion(2 * m, 2 * m + 1)
    system.addForce(bonds)
    if interacting:
        system.addForce(pair)
    return system, box


def _context(system):
    integrator = openmm.VerletIntegrator(0.001)
    return openmm.Context(system, integrator, openmm.Platform.getPlatformByName("Reference"))


def _mic(d):
    return d - EDGE * np.round(d / EDGE)


def _analytic_molecular_virial(x, molecule, masses):
    """sum over atom pairs of different molecules of U'(r) (d . D) / r, D the
    displacement of their molecules' centres of mass."""
    first = np.array([np.flatnonzero(molecule == m)[0] for m in molecule])
    whole = x[first] + _mic(x - x[first])
    com = np.array([np.average(whole[molecule == m], 0, masses[molecule == m])
                    for m in range(molecule.max() + 1)])  # fmt: skip
    offset = whole - com[molecule]
    total = 0.0
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            if molecule[i] == molecule[j]:
                continue
            d = _mic(whole[i] - whole[j])
            r = np.linalg.norm(d)
            if r >= RC:
                continue
            du = -3.0 * A / RC * (1.0 - r / RC) ** 2
            centres = d - (offset[i] - offset[j])
            total += du * d @ centres / r
    return total


def test_box_scaling_derivative_is_the_molecular_virial():
    rng = np.random.default_rng(0)
    n_mol = 30
    system, box = _system(n_mol)
    x = np.stack([_diatomics(n_mol, rng) for _ in range(3)])
    molecule = np.repeat(np.arange(n_mol), 2)
    masses = np.tile([16.0, 1.0], n_mol)
    got = box_scaling_derivative(_context(system), x, np.stack([box] * 3), molecule, masses,
                                 eps=1e-5)  # fmt: skip
    want = [_analytic_molecular_virial(f, molecule, masses) for f in x]
    assert np.all(np.abs(want) > 1.0)  # the test has something to measure
    np.testing.assert_allclose(got, want, rtol=1e-5)
    # scaling every atom (not the molecules' centres) stretches the bonds and
    # projects the pair forces on other vectors: another number
    atoms = box_scaling_derivative(_context(system), x, np.stack([box] * 3),
                                   np.arange(2 * n_mol), masses, eps=1e-5)  # fmt: skip
    assert np.all(np.abs(atoms - np.asarray(want)) > 0.05 * np.abs(want))


def test_an_ideal_gas_of_molecules_has_pressure_n_kT_over_V():
    rng = np.random.default_rng(1)
    n_mol = 10
    system, box = _system(n_mol, interacting=False)
    x = _diatomics(n_mol, rng)[None]
    molecule = np.repeat(np.arange(n_mol), 2)
    masses = np.tile([16.0, 1.0], n_mol)
    du = box_scaling_derivative(_context(system), x, box[None], molecule, masses)
    assert abs(du[0]) < 1e-6  # rigid shifts leave the (stretched) bonds as they are
    kT = 0.0083144626 * 300.0  # kJ/mol at 300 K
    p = pressure_bar(du, n_mol, kT, EDGE**3)
    # n k_B T / V in SI, then Pa -> bar
    want = n_mol / (EDGE * 1e-9) ** 3 * 1.380649e-23 * 300.0 / 1e5
    np.testing.assert_allclose(p, want, rtol=1e-6)


def _cg_model(x, edge, network="schnet"):
    import jax

    from cgflow.models import init_params
    from cgflow.models.prior import fit_prior

    n = x.shape[1]
    box = [edge] * 3
    desc = {"n_beads": n, "dim": 3, "kT": 2.5, "box": box, "species_names": ["W"],
            "species_index": [0] * n, "prior": fit_prior("pair_repulsion", x, 2.5, box=box),
            "network": {"type": network, "cutoff": 0.5, "features": 16}}  # fmt: skip
    return desc, init_params(desc, jax.random.PRNGKey(0))


@pytest.mark.slow
def test_the_cg_virial_of_a_pair_repulsion_is_minus_its_power_times_its_energy():
    """U = eps sum (sigma/r)^12 scales as s^-12: dU/ds = -12 U."""
    import jax.numpy as jnp

    from cgflow.models import box_scaling_derivative, build_energy

    rng = np.random.default_rng(2)
    x = rng.uniform(0.0, 1.5, (5, 30, 3))
    desc, params = _cg_model(x, 1.5, network="none")
    R = jnp.asarray(x[1])
    u = float(build_energy(desc)(params, R))
    assert float(box_scaling_derivative(desc)(params, R)) == pytest.approx(-12.0 * u, rel=1e-4)


@pytest.mark.slow
def test_the_cg_virial_of_a_cluster_is_r_dot_grad_u():
    """Beads in a 1 nm cube inside a 3 nm box, cutoffs 0.5 nm: no pair sees an
    image, so scaling the box changes nothing but the positions, and dU/ds =
    sum_i R_i . dU/dR_i (SchNet + prior)."""
    import jax
    import jax.numpy as jnp

    from cgflow.models import box_scaling_derivative, build_energy

    rng = np.random.default_rng(3)
    x = 1.0 + rng.uniform(0.0, 1.0, (5, 25, 3))
    desc, params = _cg_model(x, 3.0)
    R = jnp.asarray(x[0])
    grad = jax.grad(build_energy(desc), argnums=1)(params, R)
    want = float(jnp.sum(R * grad))
    got = float(box_scaling_derivative(desc)(params, R))
    assert abs(want) > 1.0
    assert got == pytest.approx(want, rel=1e-3)


@pytest.mark.slow
def test_the_cg_virial_in_a_dense_box_matches_a_finite_difference():
    """A dense periodic box (pairs across the faces): the derivative through the
    box equals central differences of the energy of models built with a scaled box."""
    import jax.numpy as jnp

    from cgflow.models import box_scaling_derivative, build_energy

    rng = np.random.default_rng(4)
    x = rng.uniform(0.0, 1.2, (5, 40, 3))
    desc, params = _cg_model(x, 1.2)
    R = jnp.asarray(x[2], jnp.float32)
    h = 1e-3

    def energy(s):
        d = {**desc, "box": [1.2 * s] * 3}
        return float(build_energy(d)(params, jnp.asarray(x[2] * s, jnp.float32)))

    fd = (energy(1 + h) - energy(1 - h)) / (2 * h)
    assert float(box_scaling_derivative(desc)(params, R)) == pytest.approx(fd, rel=2e-3)


def test_model_pressure_of_cg_frames():
    """A repulsion-only CG model: P = (N kT + 4 U) / V per frame (dU/ds = -12 U), in
    bar, over frames in chunks with a padded last one."""
    import jax.numpy as jnp

    from cgflow.models import build_energy
    from cgflow.simulate.pressure import model_pressure
    from cgflow.units import BAR_PER_KJ_MOL_NM3

    rng = np.random.default_rng(5)
    x = rng.uniform(0.0, 1.5, (7, 30, 3)).astype(np.float32)
    desc, params = _cg_model(x, 1.5, network="none")
    u = np.array([float(build_energy(desc)(params, jnp.asarray(f))) for f in x])
    want = (30 * 2.5 + 4.0 * u) / 1.5**3 * BAR_PER_KJ_MOL_NM3
    np.testing.assert_allclose(model_pressure(desc, params, x, chunk=4), want, rtol=1e-4)
