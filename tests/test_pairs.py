"""Pair lists of fixed frames (training on liquids): the listed model is the
all-pairs model, in energies, forces, the FM loss and RE's gradient, and RE runs
its replicas in the box with them."""

import io

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cgflow.methods.base import Problem
from cgflow.methods.fm import force_loss_fn
from cgflow.methods.re import RESettings, re_gradient_fn, train_re
from cgflow.models import build_energy, init_params
from cgflow.models.batch import frame_energy
from cgflow.models.pairs import FramePairs
from cgflow.models.prior import fit_prior
from cgflow.simulate.settings import IntegratorSettings

EDGE, N, CUTOFF = 1.6, 48, 0.5


def liquid(n_frames=12, seed=0):
    """Beads on a jittered lattice (no overlaps), so the prior stays finite."""
    rng = np.random.default_rng(seed)
    side = round(N ** (1 / 3)) + 1
    grid = np.stack(np.meshgrid(*[np.arange(side)] * 3, indexing="ij"), -1).reshape(-1, 3)
    sites = grid[:N] * (EDGE / side)
    return (sites + rng.normal(0, 0.04, (n_frames, N, 3))).astype(np.float32)


def model():
    x = liquid(seed=9)
    box = [EDGE] * 3
    desc = {"n_beads": N, "dim": 3, "box": box, "species_names": ["W"], "kT": 2.5,
            "species_index": [0] * N,
            "prior": fit_prior("pair_repulsion", x, 2.5, box=box, cutoff=CUTOFF),
            "network": {"type": "schnet", "cutoff": CUTOFF, "features": 8, "rbf": 8}}  # fmt: skip
    return desc, build_energy(desc), init_params(desc, jax.random.PRNGKey(0))


@pytest.mark.slow
def test_listed_energies_and_forces_equal_all_pairs_ones():
    """Every pair within the cutoff is listed once, i < j, padded with N; the listed
    energy and force (SchNet and the prior truncated at the same cutoff) equal the
    all-pairs ones, also after a bead is wrapped."""
    desc, energy, params = model()
    X = liquid()
    pairs = FramePairs(desc["box"], CUTOFF, N)
    idx = np.asarray(pairs(X))
    assert idx.shape == (len(X), 2, pairs.capacity)
    for f in range(len(X)):
        real = idx[f][:, idx[f][0] < N]
        d = X[f][real[1]] - X[f][real[0]]
        d -= EDGE * np.round(d / EDGE)
        assert np.all(real[0] < real[1]) and np.all(np.linalg.norm(d, axis=-1) < CUTOFF)
        dist = np.linalg.norm(X[f][:, None] - X[f][None] - EDGE * np.round(
            (X[f][:, None] - X[f][None]) / EDGE), axis=-1)  # fmt: skip
        assert real.shape[1] == np.sum(np.triu(dist < CUTOFF, 1))  # none missing
    listed = frame_energy(energy)
    X[3, 5] += EDGE  # wrapped across the box: nothing changes
    idx = pairs(X)
    for f in (0, 3):
        e_all, g_all = jax.value_and_grad(energy, 1)(params, X[f])
        e_pair, g_pair = jax.value_and_grad(lambda R, i: listed(params, (R, i)))(X[f], idx[f])
        assert float(e_pair) == pytest.approx(float(e_all), rel=1e-6, abs=1e-6)
        np.testing.assert_allclose(g_pair, g_all, rtol=1e-5, atol=1e-4)
        assert float(jnp.abs(g_all).max()) > 1.0  # real forces


@pytest.mark.slow
def test_the_capacity_grows_for_denser_frames_and_old_lists_are_padded():
    """Listed first on dilute frames, a lister meets denser ones: it grows, lists them
    whole, and pads the old lists to the new capacity without changing them."""
    desc, energy, params = model()
    X = liquid()
    pairs = FramePairs(desc["box"], CUTOFF, N, margin=1.0)
    sparse = pairs(X)
    first = pairs.capacity
    dense = X * 0.8  # 0.8 of the distances: more pairs within the cutoff
    idx = pairs(dense)
    assert pairs.capacity > first
    e_all = jax.vmap(energy, (None, 0))(params, jnp.asarray(dense))
    e_pair = jax.vmap(frame_energy(energy), (None, 0))(params, (jnp.asarray(dense), idx))
    np.testing.assert_allclose(e_pair, e_all, rtol=1e-5)
    grown = pairs.fit(sparse)
    assert grown.shape[-1] == pairs.capacity
    np.testing.assert_array_equal(grown[..., :first], sparse)
    assert np.all(np.asarray(grown[..., first:]) == N)


@pytest.mark.slow
def test_the_fm_loss_and_re_gradient_with_lists_equal_all_pairs_ones():
    desc, energy, params = model()
    X = liquid(16)
    F = np.random.default_rng(1).normal(0, 50, X.shape).astype(np.float32)
    idx = FramePairs(desc["box"], CUTOFF, N)(X)
    loss = jax.jit(jax.value_and_grad(force_loss_fn(energy)))
    l_all, g_all = loss(params, X, F)
    l_pair, g_pair = loss(params, X, F, idx)
    assert float(l_pair) == pytest.approx(float(l_all), rel=1e-5)
    close(g_pair, g_all)
    grad = jax.jit(re_gradient_fn(energy, 1 / 2.5, N))
    U_old = jax.vmap(energy, (None, 0))(params, X[8:]) + 0.3
    out_all = grad(params, X[:8], X[8:], U_old)
    out_pair = grad(params, (X[:8], idx[:8]), (X[8:], idx[8:]), U_old)
    close(out_pair, out_all)


def close(got, want):
    """Every leaf equal to 1e-3 of the largest element of any leaf."""
    scale = max(float(jnp.abs(b).max()) for b in jax.tree.leaves(want))
    assert scale > 0
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-3, atol=1e-3 * scale)


@pytest.mark.slow
def test_re_with_lists_samples_in_the_box_and_resumes(tmp_path):
    """RE on a periodic model: its replicas run in the box with neighbour lists, and
    its checkpoint holds no list (whose capacity may change), so that a stopped run
    resumes from it."""
    desc, energy, params = model()
    X = liquid(40)
    s = RESettings(learning_rate=0.05, n_updates=4, n_replicas=2, equilibration_steps=10,
                   sample_steps=40, save_every=10, ref_batch_size=8, checkpoint_every=2,
                   neff_threshold=0.999)  # fmt: skip
    sim = IntegratorSettings(dt=0.002, friction=5.0)
    masses = np.full(N, 18.0)
    ckpt = tmp_path / "re.ckpt"

    def run(stop_after=None, log=None):
        pairs = FramePairs(desc["box"], CUTOFF, N)
        problem = Problem(energy, params, X, masses, 2.5, integrator=sim, checkpoint=ckpt,
                          pairs=pairs, log=log)  # fmt: skip
        return train_re(problem, s, jax.random.PRNGKey(3), stop_after), pairs

    (_, h_first), pairs = run(stop_after=2)
    assert len(h_first) == 2 and ckpt.exists() and pairs.capacity > 0
    log = io.StringIO()
    (p_resumed, h_resumed), _ = run(log=log)
    assert "resumed" in log.getvalue() and "at check 2" in log.getvalue()
    assert [h["update"] for h in h_resumed] == list(range(4))
    assert all(np.isfinite(h["loss"]) for h in h_resumed)
    assert sum(h["resimulated"] for h in h_resumed) >= 2  # lists made for new samples
    assert all(np.all(np.isfinite(a)) for a in jax.tree.leaves(p_resumed))


@pytest.mark.slow
def test_the_truncated_pair_repulsion():
    """Fitted with a cutoff, each pair term and its force go to zero at the cutoff,
    match (s/r)^12 shifted by a linear term below it, and the energy from a JAX MD
    neighbour list (cutoff + skin) equals the all-pairs one; a cutoff inside the
    repulsion is refused."""
    from cgflow.jaxmd import partition, space
    from cgflow.models.prior import prior_energy

    x = liquid(seed=9)
    prior = fit_prior("pair_repulsion", x, 2.5, box=[EDGE] * 3, cutoff=CUTOFF)
    s = prior["sigma"][0][0]
    assert prior["cutoff"] == CUTOFF and 0.15 < s < CUTOFF / 1.5
    energy = prior_energy(prior, [EDGE] * 3)
    two = prior_energy({**prior, "species": [0, 0]}, [EDGE] * 3)
    pair = lambda r: two(jnp.array([[0.1, 0.1, 0.1], [0.1 + r, 0.1, 0.1]]))  # noqa: E731
    for r in (0.9 * s, 1.2 * s, 0.45):
        xc = (s / CUTOFF) ** 12
        want = 2.5 * ((s / r) ** 12 - xc + 12 * xc * (r - CUTOFF) / CUTOFF)
        assert float(pair(r)) == pytest.approx(want, rel=1e-4)
    assert abs(float(pair(CUTOFF - 1e-4))) < 1e-9 and float(pair(CUTOFF + 1e-3)) == 0.0
    push = float(jax.grad(pair)(1.2 * s))
    assert push < -1.0  # repels
    assert abs(float(jax.grad(pair)(CUTOFF - 1e-3))) < 1e-4 * abs(push)  # force -> 0
    displacement, _ = space.periodic(jnp.full(3, EDGE))
    nl = partition.neighbor_list(displacement, jnp.full(3, EDGE), CUTOFF + 0.1,
                                 format=partition.NeighborListFormat.OrderedSparse)  # fmt: skip
    R = jnp.asarray(x[3])
    e_all = float(energy(R))
    assert e_all > 0
    assert float(energy(R, nl.allocate(R))) == pytest.approx(e_all, rel=1e-5)
    with pytest.raises(ValueError, match="cutoff 0.2 is within"):
        fit_prior("pair_repulsion", x, 2.5, box=[EDGE] * 3, cutoff=0.2)
