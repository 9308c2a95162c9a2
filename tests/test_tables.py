"""Tabulated pair functions, and the sampler's form of a SchNet that uses them."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cgflow.models import build_energy, init_params
from cgflow.models.energy import sampling_form
from cgflow.models.tables import lookup, tabulate

CUTOFF = 0.5


def smooth(d):
    """Three columns of a smooth function that goes to zero at the cutoff with its
    slope, as a SchNet filter does (narrow features: a Gaussian of width 0.02)."""
    envelope = jnp.where(d < CUTOFF, 0.5 * (jnp.cos(jnp.pi * d / CUTOFF) + 1.0), 0.0)
    cols = [jnp.sin(9.0 * d), jnp.exp(-((d - 0.2) ** 2) / (2 * 0.02**2)), 3.0 - d]
    return jnp.stack(cols, -1) * envelope[:, None]


def table_errors(n_points):
    """Largest errors of the lookup's value and derivative against the function's."""
    table = tabulate(smooth, CUTOFF, n_points)
    d = jax.random.uniform(jax.random.PRNGKey(0), (4000,), minval=0.0, maxval=CUTOFF)
    value_err = jnp.max(jnp.abs(lookup(table, d, CUTOFF) - smooth(d)))
    slope = jax.vmap(jax.jacfwd(lambda x: lookup(table, x[None], CUTOFF)[0]))(d)
    exact = jax.vmap(jax.jacfwd(lambda x: smooth(x[None])[0]))(d)
    return float(value_err), float(jnp.max(jnp.abs(slope - exact)))


@pytest.mark.slow
def test_a_table_gives_the_function_and_its_derivative():
    """At 513 points the lookup is within float32 rounding of the function (values
    about 1, slopes up to about 20), and so is its derivative (interpolated from f'
    and f'', not differentiated from the values), to the last interval below the
    cutoff; a table 4 times coarser is not, so the tolerances can fail (measured:
    7e-6 and 7e-4 at 129 points, against 2e-7 and 6e-6 at 513)."""
    value_err, slope_err = table_errors(513)
    assert value_err < 1e-6 and slope_err < 2e-5
    coarse = table_errors(129)
    assert coarse[0] > 1e-6 and coarse[1] > 2e-5


@pytest.mark.slow
def test_a_table_is_zero_with_zero_slope_beyond_its_cutoff():
    table = tabulate(smooth, CUTOFF, 257)
    d = jnp.array([CUTOFF, 0.6, 3.0])
    assert float(jnp.max(jnp.abs(lookup(table, d, CUTOFF)))) < 1e-6
    grads = jax.grad(lambda x: jnp.sum(lookup(table, x, CUTOFF)))(d)
    np.testing.assert_array_equal(grads, 0.0)


@pytest.mark.slow
def test_a_lookup_is_differentiable_in_its_table():
    """The lookup is linear in the table: its derivative along a change of the table
    is the lookup of that change (the jvp rule's second branch)."""
    table = tabulate(smooth, CUTOFF, 65)
    change = jax.random.normal(jax.random.PRNGKey(1), table.shape)
    d = jnp.linspace(0.01, 0.49, 17)
    _, along = jax.jvp(lambda t: lookup(t, d, CUTOFF), (table,), (change,))
    np.testing.assert_allclose(along, lookup(change, d, CUTOFF), rtol=1e-5, atol=1e-5)


def schnet_desc(n, box=None, temperature=False):
    desc = {
        "n_beads": n,
        "dim": 3,
        "kT": 2.5,
        "prior": {"type": "none"},
        "species_names": ["A", "B", "C"],
        "species_index": (np.arange(n) % 3).tolist(),
        "network": {"type": "schnet", "cutoff": CUTOFF, "features": 16, "rbf": 16},
    }
    if box is not None:
        desc["box"] = list(box)
    if temperature:
        desc["network"]["temperature"] = {"form": "input", "kT_shift": 2.5, "kT_scale": 0.5}
    return desc


def scaled_params(desc, key, scale=3.0):
    """Parameters larger than at initialisation, so that the filters vary as much
    as a trained model's do (a trained alanine SchNet's network forces are ~100)."""
    return jax.tree.map(lambda x: scale * x, init_params(desc, key))


def forces(energy, params, R, **kw):
    return jax.vmap(jax.grad(lambda r: energy(params, r, **kw)))(R)


@pytest.mark.slow
@pytest.mark.parametrize("temperature", [False, True])
def test_the_sampling_form_of_a_schnet_gives_its_energies_and_forces(temperature):
    """Ten beads (alanine dipeptide's heavy atoms) in 32 spread-out configurations:
    the tabulated model's energies and forces are the network's, to float32
    rounding (measured: forces within 1e-5 of the largest)."""
    desc = schnet_desc(10, temperature=temperature)
    energy = build_energy(desc)
    params = scaled_params(desc, jax.random.PRNGKey(2))
    form = sampling_form(energy)
    assert form.energy_fn is not energy
    prepared = jax.jit(form.prepare)(params)
    base = jax.random.normal(jax.random.PRNGKey(3), (10, 3)) * 0.2
    R = base + 0.05 * jax.random.normal(jax.random.PRNGKey(4), (32, 10, 3))
    e_net, e_tab = (jax.vmap(lambda r, f=f, p=p: f(p, r))(R) for f, p in
                    ((energy, params), (form.energy_fn, prepared)))  # fmt: skip
    f_net, f_tab = forces(energy, params, R), forces(form.energy_fn, prepared, R)
    scale = float(jnp.max(jnp.abs(f_net)))
    assert scale > 10.0  # the model has forces worth comparing
    assert float(jnp.max(jnp.abs(f_tab - f_net))) < 2e-5 * scale
    np.testing.assert_allclose(e_tab, e_net, rtol=1e-5, atol=1e-4)


@pytest.mark.slow
def test_the_sampling_form_with_neighbour_lists_in_a_box():
    """A periodic SchNet over each-pair-once neighbour lists (the water form): the
    tabulated model's forces are the network's over the same lists."""
    from jax_md import partition, space

    box = jnp.array([1.6, 1.6, 1.6])
    desc = schnet_desc(64, box=box.tolist())
    energy = build_energy(desc)
    params = scaled_params(desc, jax.random.PRNGKey(5))
    form = sampling_form(energy)
    R = jax.random.uniform(jax.random.PRNGKey(6), (64, 3)) * box
    displacement, _ = space.periodic(box)
    neighbor_fn = partition.neighbor_list(
        displacement, box, CUTOFF, format=partition.NeighborListFormat.OrderedSparse
    )
    nbrs = neighbor_fn.allocate(R)
    f_net = jax.grad(lambda r: energy(params, r, neighbor=nbrs))(R)
    f_tab = jax.grad(lambda r: form.energy_fn(form.prepare(params), r, neighbor=nbrs))(R)
    scale = float(jnp.max(jnp.abs(f_net)))
    assert scale > 10.0
    assert float(jnp.max(jnp.abs(f_tab - f_net))) < 2e-5 * scale


def test_filter_tables_can_be_turned_off_and_other_models_are_themselves():
    desc = schnet_desc(10)
    energy = build_energy(desc)
    off = sampling_form(energy, {"CGFLOW_FILTER_TABLES": "off"})
    assert off.energy_fn is energy and off.prepare("p") == "p"
    mlp = {**desc, "dim": 1, "n_beads": 2, "network": {"type": "mlp", "hidden": [8],
           "input_shift": [0.0, 0.0], "input_scale": [1.0, 1.0]}}  # fmt: skip
    mlp_energy = build_energy(mlp)
    assert sampling_form(mlp_energy).energy_fn is mlp_energy


@pytest.mark.slow
def test_replicas_run_alike_with_and_without_filter_tables(monkeypatch):
    """The CG runner uses the tabulated form: 8 replicas of a SchNet, 200 BAOAB steps
    from the same start and noise, end within 1e-4 nm of the network's run (the
    forces differ by rounding only), and the tabulated run does use its tables (the
    programs' parameters are the prepared ones)."""
    from cgflow.simulate.replicas import replica_runner
    from cgflow.simulate.settings import IntegratorSettings

    desc = schnet_desc(10)
    desc["prior"] = {"type": "none"}
    energy = build_energy(desc)
    params = scaled_params(desc, jax.random.PRNGKey(7), scale=1.5)
    base = jax.random.normal(jax.random.PRNGKey(8), (10, 3)) * 0.2
    R0 = base + 0.02 * jax.random.normal(jax.random.PRNGKey(9), (8, 10, 3))
    masses = jnp.full((10,), 12.0)

    def run(setting):
        monkeypatch.setenv("CGFLOW_FILTER_TABLES", setting)
        runner = replica_runner(energy, 2.5, IntegratorSettings(dt=0.002), 10, 50, 4)
        reps = runner.init(jax.random.PRNGKey(10), R0, masses, params)
        reps = runner.advance(reps, params, 100)
        reps, frames = runner.record(reps, params, 2)
        return np.asarray(frames)

    tabulated, network = run("on"), run("off")
    assert np.all(np.isfinite(network)) and np.max(np.abs(network - R0[None])) > 0.01
    np.testing.assert_allclose(tabulated, network, atol=1e-4)
