"""Molecular CG models: bonded priors fitted by Boltzmann inversion, and the SchNet energy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from cgflow.models import build_energy, fit_prior, init_params
from cgflow.models.geometry import angles, bond_lengths, dihedrals
from cgflow.systems.alanine_dipeptide import _place


def chain_samples(n, rng, kT, bond, angle, dihedral_u):
    """5-bead chains with Gaussian bonds/angles and dihedrals from exp(-U(phi)/kT)."""
    grid = np.linspace(-np.pi, np.pi, 20001)
    cdf = np.cumsum(np.exp(-dihedral_u(grid) / kT))
    cdf /= cdf[-1]
    out = np.zeros((n, 5, 3))
    for f in range(n):
        r = bond[0] + rng.standard_normal(4) * np.sqrt(kT / bond[1])
        th = angle[0] + rng.standard_normal(3) * np.sqrt(kT / angle[1])
        ph = np.interp(rng.uniform(size=2), cdf, grid)
        x = [np.zeros(3), np.array([r[0], 0, 0])]
        x.append(x[1] + r[1] * np.array([-np.cos(th[0]), np.sin(th[0]), 0]))
        x.append(_place(x[0], x[1], x[2], r[2], np.degrees(th[1]), np.degrees(ph[0])))
        x.append(_place(x[1], x[2], x[3], r[3], np.degrees(th[2]), np.degrees(ph[1])))
        out[f] = x
    return out


def chain_model(prior, network):
    """Description of a 5-bead chain model of one species."""
    return {
        "n_beads": 5,
        "dim": 3,
        "kT": 2.5,
        "prior": prior,
        "species_names": ["A"],
        "species_index": [0] * 5,
        "network": network,
    }


TOPOLOGY = {
    "bonds": [[0, 1], [1, 2], [2, 3], [3, 4]],
    "angles": [[0, 1, 2], [1, 2, 3], [2, 3, 4]],
    "dihedrals": [[0, 1, 2, 3], [1, 2, 3, 4]],
}


@pytest.mark.slow
def test_bonded_prior_recovers_known_parameters():
    kT, rng = 2.5, np.random.default_rng(0)

    def u(phi):
        return 1.5 * np.cos(phi) - 0.8 * np.sin(2 * phi)

    R = chain_samples(20_000, rng, kT, (0.15, 4e4), (1.9, 300.0), u)
    prior = fit_prior("bonded", R, kT, TOPOLOGY)
    # k = kT/var: relative standard error sqrt(2/n) = 1 % with n = 2e4 per term
    np.testing.assert_allclose(prior["bonds"]["k"], 4e4, rtol=0.05)
    np.testing.assert_allclose(prior["bonds"]["x0"], 0.15, atol=1e-3)
    np.testing.assert_allclose(prior["angles"]["k"], 300.0, rtol=0.05)
    np.testing.assert_allclose(prior["angles"]["x0"], 1.9, atol=5e-3)
    for a, b in zip(prior["dihedrals"]["a"], prior["dihedrals"]["b"], strict=True):
        np.testing.assert_allclose(a, [1.5, 0.0, 0.0], atol=0.15)
        np.testing.assert_allclose(b, [0.0, -0.8, 0.0], atol=0.15)
    assert prior["repulsion"]["idx"] == [[0, 4]]  # the only pair beyond three bonds
    d04 = np.linalg.norm(R[:, 0] - R[:, 4], axis=1)
    assert prior["repulsion"]["sigma"][0] == pytest.approx(d04.min())


@pytest.mark.slow
def test_bonded_prior_energy_matches_its_terms():
    kT, rng = 2.5, np.random.default_rng(1)
    R = chain_samples(2000, rng, kT, (0.15, 4e4), (1.9, 300.0), lambda p: np.cos(p))
    prior = fit_prior("bonded", R, kT, TOPOLOGY)
    desc = chain_model(prior, {"type": "schnet", "features": 8, "interactions": 1, "rbf": 4})
    energy = build_energy(desc)
    params = jax.tree.map(jnp.zeros_like, init_params(desc, jax.random.PRNGKey(0)))
    x = jnp.asarray(R[7])
    b = bond_lengths(x, jnp.asarray(TOPOLOGY["bonds"]))
    a = angles(x, jnp.asarray(TOPOLOGY["angles"]))
    phi = dihedrals(x, jnp.asarray(TOPOLOGY["dihedrals"]))
    expect = 0.5 * np.sum(
        np.asarray(prior["bonds"]["k"]) * (b - np.asarray(prior["bonds"]["x0"])) ** 2
    ) + 0.5 * np.sum(
        np.asarray(prior["angles"]["k"]) * (a - np.asarray(prior["angles"]["x0"])) ** 2
    )
    n = np.arange(1, 4)
    for p, ca, cb in zip(phi, prior["dihedrals"]["a"], prior["dihedrals"]["b"], strict=True):
        expect += np.sum(np.asarray(ca) * np.cos(n * p) + np.asarray(cb) * np.sin(n * p))
    d = np.linalg.norm(x[0] - x[4])
    expect += kT * (prior["repulsion"]["sigma"][0] / d) ** 12
    assert float(energy(params, x)) == pytest.approx(float(expect), rel=1e-4)


@pytest.mark.slow
def test_bonded_prior_works_across_a_periodic_boundary():
    """In a box the prior reads minimum-image geometry: chains wrapped into the box
    (split across its faces) fit the same parameters and have the same energies and
    forces as the unwrapped chains in free space."""
    kT, rng, L = 2.5, np.random.default_rng(3), 1.2  # > twice the longest chain
    R = chain_samples(500, rng, kT, (0.15, 4e4), (1.9, 300.0), lambda p: np.cos(p))
    R += rng.uniform(0, L, (len(R), 1, 3))  # place each chain somewhere in the box
    wrapped = np.mod(R, L)
    split = np.flatnonzero(np.any(np.abs(np.diff(wrapped, axis=1)) > L / 2, axis=(1, 2)))
    assert len(split) > 50  # many chains are split across the box's faces
    free = fit_prior("bonded", R, kT, TOPOLOGY)
    boxed = fit_prior("bonded", wrapped, kT, TOPOLOGY, box=[L] * 3)
    for term in ("bonds", "angles"):
        np.testing.assert_allclose(boxed[term]["k"], free[term]["k"], rtol=1e-3)
    np.testing.assert_allclose(boxed["repulsion"]["sigma"], free["repulsion"]["sigma"], rtol=1e-4)
    e_free = build_energy(chain_model(free, {"type": "none"}))
    e_box = build_energy({**chain_model(free, {"type": "none"}), "box": [L] * 3})
    for k in split[:5]:
        x, xw = jnp.asarray(R[k]), jnp.asarray(wrapped[k])
        assert float(e_box({}, xw)) == pytest.approx(float(e_free({}, x)), rel=1e-4)
        f_box = jax.grad(e_box, argnums=1)({}, xw)
        np.testing.assert_allclose(f_box, jax.grad(e_free, argnums=1)({}, x), rtol=1e-3, atol=1e-2)
    # without the box the wrapped chains are torn apart: the test can tell the two
    k = split[0]
    assert float(e_free({}, jnp.asarray(wrapped[k]))) > 100 * float(e_free({}, R[k]))


def test_bonded_prior_needs_topology_and_sane_data():
    with pytest.raises(ValueError, match="needs the CG topology"):
        fit_prior("bonded", np.zeros((5, 3, 3)), 1.0)
    R = np.tile(np.array([[0.0, 0, 0], [0.1, 0, 0], [0.1, 0.1, 0]]), (10, 1, 1))
    with pytest.raises(ValueError, match="not finite and positive"):
        fit_prior("bonded", R, 1.0, {"bonds": [[0, 1]], "angles": [], "dihedrals": []})


@pytest.fixture
def schnet():
    species = [0, 0, 1, 2, 0, 0, 0, 1, 2, 0]
    desc = {
        "n_beads": 10,
        "dim": 3,
        "kT": 2.5,
        "prior": {"type": "none"},
        "species_names": ["C", "N", "O"],
        "species_index": species,
        "network": {"type": "schnet", "cutoff": 0.6},
    }
    return build_energy(desc), init_params(desc, jax.random.PRNGKey(0)), np.array(species)


@pytest.mark.slow
def test_schnet_invariances(schnet):
    energy, params, species = schnet
    R = np.random.default_rng(2).normal(0, 0.25, (10, 3))
    e0 = float(energy(params, jnp.asarray(R)))
    rot = Rotation.random(random_state=3).as_matrix()
    assert float(energy(params, jnp.asarray(R @ rot.T + [0.3, -1.0, 2.0]))) == pytest.approx(
        e0, rel=1e-5, abs=1e-5
    )
    # swapping two beads of the same species leaves the energy unchanged
    same = np.flatnonzero(species == 0)[:2]
    perm = np.arange(10)
    perm[same] = perm[same[::-1]]
    assert float(energy(params, jnp.asarray(R[perm]))) == pytest.approx(e0, rel=1e-5, abs=1e-5)
    # ... but swapping beads of different species changes it
    perm = np.arange(10)
    perm[[0, 2]] = [2, 0]
    assert abs(float(energy(params, jnp.asarray(R[perm]))) - e0) > 1e-4


@pytest.mark.slow
def test_schnet_forces_are_minus_gradient(schnet):
    energy, params, _ = schnet
    jax.config.update("jax_enable_x64", True)
    try:
        R = jnp.asarray(np.random.default_rng(4).normal(0, 0.25, (10, 3)))
        params64 = jax.tree.map(lambda p: p.astype(jnp.float64), params)
        force = -jax.grad(energy, argnums=1)(params64, R)
        h = 1e-6
        for i, a in [(0, 0), (3, 1), (9, 2)]:
            e = jnp.zeros((10, 3)).at[i, a].set(h)
            fd = -(energy(params64, R + e) - energy(params64, R - e)) / (2 * h)
            assert float(force[i, a]) == pytest.approx(float(fd), rel=1e-5, abs=1e-8)
    finally:
        jax.config.update("jax_enable_x64", False)


def test_schnet_energy_is_smooth_at_the_cutoff(schnet):
    energy, params, _ = schnet
    far = np.zeros((10, 3))
    far[:, 0] = np.arange(10) * 5.0  # every pair beyond the cutoff: beads do not interact
    e_far = float(energy(params, jnp.asarray(far)))
    moved = far.copy()
    moved[3, 1] = 1.0
    assert float(energy(params, jnp.asarray(moved))) == pytest.approx(e_far, abs=1e-6)
    near = far.copy()
    near[1] = far[0] + [0.6 - 1e-4, 0, 0]  # just inside the cutoff
    assert float(energy(params, jnp.asarray(near))) == pytest.approx(e_far, abs=1e-4)


@pytest.mark.slow
def test_narrow_dihedral_gets_a_harmonic_term():
    """A dihedral held near 180 degrees (a planar group) is fitted as a periodic
    harmonic well: k = kT / circular variance, phi0 = circular mean across +-pi."""
    kT, rng, k_true = 2.5, np.random.default_rng(5), 80.0

    def u(phi):  # periodic harmonic well at pi: the distribution wraps around +-pi
        d = np.angle(np.exp(1j * (phi - np.pi)))
        return 0.5 * k_true * d**2

    R = chain_samples(20_000, rng, kT, (0.15, 4e4), (1.9, 300.0), u)
    prior = fit_prior("bonded", R, kT, TOPOLOGY)
    assert prior["dihedrals"]["idx"] == []
    assert prior["narrow_dihedrals"]["idx"] == TOPOLOGY["dihedrals"]
    np.testing.assert_allclose(prior["narrow_dihedrals"]["k"], k_true, rtol=0.05)
    np.testing.assert_allclose(np.abs(prior["narrow_dihedrals"]["x0"]), np.pi, atol=0.01)
    # and the energy is periodic: phi0 + d and phi0 + d - 2 pi are the same point
    desc = chain_model(prior, {"type": "none"})
    energy = build_energy(desc)
    e = float(energy({}, jnp.asarray(R[0])))
    assert np.isfinite(e) and e < 50 * kT


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["Sparse", "OrderedSparse"])
def test_neighbour_list_energy_equals_all_pairs_in_a_periodic_box(fmt):
    """64 beads in a 1.6 nm box: SchNet over a JAX MD neighbour list (cell list;
    every ordered pair, or each pair once with messages sent both ways) gives the
    same energy and forces as over all pairs with minimum-image distances; and
    pairs across the boundary do interact."""
    from jax_md import partition, space

    box = jnp.array([1.6, 1.6, 1.6])
    species = (np.arange(64) % 2).tolist()
    desc = {
        "n_beads": 64,
        "dim": 3,
        "kT": 2.5,
        "box": box.tolist(),
        "prior": {"type": "none"},
        "species_names": ["A", "B"],
        "species_index": species,
        "network": {"type": "schnet", "cutoff": 0.5, "features": 16},
    }
    energy = build_energy(desc)
    params = init_params(desc, jax.random.PRNGKey(0))
    R = jax.random.uniform(jax.random.PRNGKey(1), (64, 3)) * box
    displacement, _ = space.periodic(box)
    neighbor_fn = partition.neighbor_list(
        displacement, box, 0.5, format=getattr(partition.NeighborListFormat, fmt)
    )
    nbrs = neighbor_fn.allocate(R)
    assert not nbrs.did_buffer_overflow
    e_all, e_nl = float(energy(params, R)), float(energy(params, R, neighbor=nbrs))
    assert e_nl == pytest.approx(e_all, rel=1e-5)
    f_all = jax.grad(energy, argnums=1)(params, R)
    f_nl = jax.grad(lambda p, r: energy(p, r, neighbor=nbrs), argnums=1)(params, R)
    np.testing.assert_allclose(f_nl, f_all, rtol=1e-4, atol=1e-5)
    # a pair 0.2 nm apart across the boundary interacts exactly as one inside the box
    pair = jnp.array([[0.05, 0.8, 0.8], [1.45, 0.8, 0.8]])
    inside = jnp.array([[0.7, 0.8, 0.8], [0.9, 0.8, 0.8]])
    desc2 = {**desc, "n_beads": 2, "species_index": [0, 1]}
    e2 = build_energy(desc2)
    p2 = init_params(desc2, jax.random.PRNGKey(3))
    far = jnp.array([[0.1, 0.8, 0.8], [0.8, 0.8, 0.8]])  # 0.7 nm: beyond the cutoff
    assert float(e2(p2, pair)) == pytest.approx(float(e2(p2, inside)), rel=1e-5)
    assert abs(float(e2(p2, pair)) - float(e2(p2, far))) > 1e-4


@pytest.mark.slow
def test_schnet_over_each_pair_once_equals_every_ordered_pair():
    """The default edge list (each pair once, messages both ways) gives the energy
    and forces of the explicit list of every ordered pair i != j."""
    from cgflow.models.energy import SchNetEnergy

    n = 7
    module = SchNetEnergy(n_species=3, features=16)
    species = jnp.arange(n) % 3
    R = jax.random.uniform(jax.random.PRNGKey(4), (n, 3)) * 0.6
    params = module.init(jax.random.PRNGKey(5), R, species)
    ordered = jnp.stack(jnp.nonzero(~jnp.eye(n, dtype=bool)))  # (receivers, senders)

    def energy(r, edges):
        return module.apply(params, r, species, edges)

    assert float(energy(R, None)) == pytest.approx(float(energy(R, ordered)), rel=1e-5)
    np.testing.assert_allclose(
        jax.grad(energy)(R, None), jax.grad(energy)(R, ordered), rtol=1e-4, atol=1e-5
    )
    # and the one-way list without edges_once is not the same model (it would drop
    # half of the messages), so the test above can fail
    once = jnp.stack([jnp.asarray(a) for a in np.triu_indices(n, 1)])
    assert abs(float(energy(R, once)) - float(energy(R, None))) > 1e-4


@pytest.mark.slow
def test_chunked_energies_and_gradient_equal_one_vmap():
    """Energies and the weighted parameter gradient over frames in chunks (with a
    padded last chunk) equal those of one vmap over all frames."""
    from cgflow.models import batch

    n, frames = 10, 150
    assert batch.chunk_size(n) < frames < 2 * batch.chunk_size(n) + 1  # 2 chunks, padded
    desc = {
        "n_beads": n,
        "dim": 3,
        "kT": 2.5,
        "prior": {"type": "none"},
        "species_names": ["A", "B"],
        "species_index": (np.arange(n) % 2).tolist(),
        "network": {"type": "schnet", "features": 16},
    }
    energy = build_energy(desc)
    params = init_params(desc, jax.random.PRNGKey(0))
    X = jax.random.uniform(jax.random.PRNGKey(1), (frames, n, 3)) * 0.8
    c = jax.random.normal(jax.random.PRNGKey(2), (frames,))
    plain = jax.vmap(energy, (None, 0))
    u, g = jax.jit(batch.weighted_grad_fn(energy, n))(params, X, c)
    g_plain = jax.grad(lambda p: jnp.sum(c * plain(p, X)))(params)
    np.testing.assert_allclose(u, plain(params, X), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(jax.jit(batch.energies_fn(energy, n))(params, X), u, rtol=1e-6)
    for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(g_plain), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * float(jnp.max(jnp.abs(b))))
