"""Liquid water: the box, the reference, the force maps, and the structural metrics
(g(r), ADF) on cases with known answers."""

import math

import numpy as np
import openmm as mm
import openmm.unit as unit
import pytest

from cgflow.analysis.structure import adf, adf_counts, pair_distance_counts, rdf_of_counts
from cgflow.io import load_dataset, read_json, write_trajectory
from cgflow.mapping import apply_map
from cgflow.systems.water import Water, WaterMD


def small_box(**kw):
    return Water(**{"n_molecules": 64, "cutoff_nm": 0.6, **kw})


def test_the_box_holds_its_density_and_the_lattice_its_molecules():
    w = small_box()
    grams = 64 * 18.01528 / 6.02214076e23
    assert grams / (w.box_nm * 1e-7) ** 3 == pytest.approx(0.997, rel=1e-4)
    x = w.start_positions().reshape(64, 3, 3)
    r_oh = np.linalg.norm(x[:, 1:] - x[:, :1], axis=-1)
    np.testing.assert_allclose(r_oh, 0.09572, atol=1e-9)
    assert x.min() > -0.1 and x.max() < w.box_nm + 0.1
    with pytest.raises(ValueError, match="cutoff_nm 0.9 must be below half the box"):
        Water(n_molecules=64, cutoff_nm=0.9)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model", "mapping"), [("spce", "com"), ("spce", "oxygen"), ("tip4pew", "com")]
)
def test_the_summed_force_map_is_minus_the_gradient_along_a_rigid_translation(model, mapping):
    """For rigid water, moving one molecule rigidly by delta changes U by -F_I . delta
    with F_I the molecule's summed atomic force (constraint forces are internal):
    the map's force passes a central finite difference of OpenMM's energy (Reference
    platform, double precision); the oxygen's force alone fails it."""
    w = small_box(model=model)
    setup = w.openmm_setup()
    ctx = mm.Context(setup.system, mm.VerletIntegrator(0.001),
                     mm.Platform.getPlatformByName("Reference"))  # fmt: skip
    ctx.setPositions(setup.positions)
    mm.LocalEnergyMinimizer.minimize(ctx, maxIterations=200)
    state = ctx.getState(getPositions=True, getForces=True)
    x = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    f = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
    cg = w.mappings()[mapping]
    _, F = apply_map(cg, x[None], f[None])
    rng = np.random.default_rng(0)
    h = 1e-5
    for molecule in (0, 17, 42):
        delta = rng.standard_normal(3)
        delta *= h / np.linalg.norm(delta)

        def energy(sign, molecule=molecule, delta=delta):
            moved = x.copy()
            moved[w.sites * molecule : w.sites * (molecule + 1)] += sign * delta
            ctx.setPositions(moved * unit.nanometer)
            return (
                ctx.getState(getEnergy=True)
                .getPotentialEnergy()
                .value_in_unit(unit.kilojoule_per_mole)
            )

        derivative = (energy(1) - energy(-1)) / (2 * h)  # dU along delta / |delta|
        mapped = -F[0, molecule] @ delta / h
        oxygen_only = -f[w.sites * molecule] @ delta / h
        assert mapped == pytest.approx(derivative, abs=1e-3 * np.abs(F[0, molecule]).max())
        assert abs(oxygen_only - derivative) > 1.0  # a wrong map fails by far


@pytest.mark.slow
def test_a_short_reference_run_is_liquid_water(tmp_path):
    """64 TIP3P molecules, 2 ps at 300 K: kinetic temperature near 300 K, potential
    energy near TIP3P's -41 kJ/mol per molecule, and the CG g(r) peaking at the
    O-O first shell (about 0.28 nm)."""
    import io

    from cgflow.reference.openmm_sampler import sample_openmm

    w = small_box()
    md = WaterMD(equilibration_ps=2, production_ps=4, save_interval_ps=0.1, platform="CPU")
    sample_openmm(w.openmm_setup(), 300.0, md, tmp_path / "aa.npz", io.StringIO(), w.describe())
    data, _ = load_dataset(tmp_path / "aa.npz")
    assert data["positions"].shape == (40, 192, 3) and data["box"].shape == (40, 3, 3)
    assert abs(data["temperature"].mean() - 300.0) < 30.0
    assert -46 < data["energies"].mean() / 64 < -36
    # the molecular virial pressure: TIP3P is denser than 0.997 g/cm^3 at 1 bar, so a
    # few hundred bar; the ideal-gas term alone is 1,380 bar, its sign flipped 2,760
    assert data["pressure_bar"].shape == (40,)
    assert -700 < data["pressure_bar"].mean() < 1100, data["pressure_bar"].mean()
    R, _ = apply_map(w.mappings()["oxygen"], data["positions"], data["forces"])
    r, g = rdf(R, np.diag(data["box"][0]), 0.6, 60)
    assert 0.26 < r[np.argmax(g)] < 0.30 and g.max() > 2.0
    descriptors = w.cv(w.mappings()["oxygen"])(R)
    assert descriptors.shape == (40, len(w.cv_names)) and descriptors[:, 1].mean() > 2.0


def rdf(x, box_lengths, r_max, bins):
    edges = np.linspace(0.0, r_max, bins + 1)
    counts = pair_distance_counts(x, box_lengths, edges).sum(0)
    g = rdf_of_counts(counts, len(x), x.shape[1], edges, float(np.prod(box_lengths)))
    return 0.5 * (edges[1:] + edges[:-1]), g


def ideal_gas(n_frames=100, n=64, edge=2.0, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, edge, (n_frames, n, 3))
    return x, np.tile(np.eye(3) * edge, (n_frames, 1, 1))


def test_the_rdf_of_an_ideal_gas_is_one():
    """Independent uniform beads: g(r) = 1 (MDTraj normalises by the pair density);
    each bin within 5 of its Poisson standard errors."""
    x, box = ideal_gas()
    r, g = rdf(x, np.full(3, 2.0), 0.95, 20)
    shell = 4 * np.pi * r**2 * (0.95 / 20)
    expected_pairs = 100 * 64 * 63 / 2 * shell / 2.0**3
    se = 1 / np.sqrt(expected_pairs)
    keep = r > 0.2
    assert np.all(np.abs(g[keep] - 1) < 5 * se[keep])
    assert np.abs(g[keep] - 1).mean() < 0.05


def test_cgflows_rdf_equals_mdtrajs_on_a_cg_trajectory_read_back(tmp_path):
    """A CG trajectory written with its unit cell and read back: MDTraj's
    compute_rdf on it equals cgflow's per-frame counts on the frames, and both a
    brute-force minimum-image count."""
    import mdtraj as md

    x, box = ideal_gas(n_frames=5, n=40, edge=1.5, seed=1)
    w = Water(n_molecules=40, density_g_cm3=40 * 18.01528 / 6.02214076e23 / (1.5e-7) ** 3,
              cutoff_nm=0.6)  # fmt: skip
    write_trajectory(tmp_path / "cg.h5", x, w.cg_topology(w.mappings()["com"]), box=box)
    traj = md.load(str(tmp_path / "cg.h5"))
    np.testing.assert_allclose(traj.unitcell_lengths, 1.5, rtol=1e-6)
    r, g = md.compute_rdf(traj, traj.topology.select_pairs("all", "all"), r_range=(0.0, 0.7),
                          n_bins=14, periodic=True)  # fmt: skip
    np.testing.assert_allclose(g, rdf(x, np.full(3, 1.5), 0.7, 14)[1], rtol=1e-4)
    d = x[:, None] - x[:, :, None]
    d -= 1.5 * np.round(d / 1.5)
    dist = np.linalg.norm(d, axis=-1)[:, *np.triu_indices(40, 1)]
    counts = np.histogram(dist, bins=14, range=(0, 0.7))[0]
    edges = np.linspace(0, 0.7, 15)
    shells = 4 / 3 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    direct = counts / (5 * 40 * 39 / 2 * shells / 1.5**3)
    np.testing.assert_allclose(g, direct, rtol=1e-4)


@pytest.mark.slow
def test_the_adf_of_independent_neighbours_is_half_the_sine():
    """For an ideal gas the directions to two neighbours are independent and
    uniform, so the angle between them has density sin(theta) / 2."""
    x, box = ideal_gas(n_frames=40, n=300, edge=2.0, seed=2)
    theta, density = adf(x, box, cutoff=0.4, bins=18)
    counts = adf_counts(x, box, cutoff=0.4, bins=18).sum()
    se = np.sqrt(np.sin(theta) / 2 / (counts * math.pi / 18))
    assert np.all(np.abs(density - np.sin(theta) / 2) < 5 * se)


def test_the_pair_repulsion_prior_in_a_box():
    """Fitted sigma is the closest pair distance seen (minimum image); its energy is
    unchanged by moving every bead by one vector and by wrapping a bead across the
    box, and equals a direct sum."""
    import jax.numpy as jnp

    from cgflow.models.prior import fit_prior, prior_energy

    x, _ = ideal_gas(n_frames=10, n=30, edge=1.5, seed=4)
    box = np.full(3, 1.5)
    prior = fit_prior("pair_repulsion", x, 2.5, box=box)
    d = x[:, None] - x[:, :, None]
    d -= 1.5 * np.round(d / 1.5)
    dist = np.linalg.norm(d, axis=-1)[:, *np.triu_indices(30, 1)]
    assert prior["sigma"][0][0] == pytest.approx(dist.min())
    energy = prior_energy(prior, box)
    R = x[0]
    direct = 2.5 * np.sum((dist.min() / dist[0]) ** 12)
    assert float(energy(jnp.asarray(R))) == pytest.approx(direct, rel=1e-4)
    shifted = R + np.array([0.3, -0.7, 1.1])
    wrapped = R.copy()
    wrapped[3] += np.array([1.5, 0.0, -1.5])
    for moved in (shifted, wrapped):
        assert float(energy(jnp.asarray(moved))) == pytest.approx(direct, rel=1e-4)


@pytest.mark.slow
def test_evaluate_scores_a_liquid_on_its_structure(tmp_path):
    """The evaluate step on water: one half of a short reference run scored against
    the other gives small, finite rdf/adf errors with CIs that hold them; the same
    frames with the molecules squeezed toward each other (a wrong liquid) score far
    worse; the curves for the structure figure are written."""
    import io

    from cgflow.config import validate_config
    from cgflow.io import save_dataset
    from cgflow.reference.openmm_sampler import sample_openmm
    from cgflow.steps.evaluate import evaluate_step
    from cgflow.study import StudySettings

    w = small_box()
    md = WaterMD(equilibration_ps=2, production_ps=6, save_interval_ps=0.05, platform="CPU")
    sample_openmm(w.openmm_setup(), 300.0, md, tmp_path / "aa.npz", io.StringIO(), w.describe())
    data, _ = load_dataset(tmp_path / "aa.npz")
    R, _ = apply_map(w.mappings()["com"], data["positions"], data["forces"])
    pressure = data["pressure_bar"]
    test = {"positions": R[60:], "pressure_bar": pressure[60:]}
    save_dataset(tmp_path / "test.npz", test, {"kT": w.kT(300)})
    config = validate_config({
        "seeds": [0], "methods": {"fm": {}},
        "systems": {"water": {"potential": {"n_molecules": 64, "cutoff_nm": 0.6},
                              "temperatures": [300], "mappings": ["com"],
                              "evaluation": {"r_max_nm": 0.6, "rdf_bins": 30,
                                             "adf_frames": 30}}},
    })  # fmt: skip
    study = StudySettings.from_config(config, "water")
    scores = {}
    jitter = 0.04 * np.random.default_rng(0).standard_normal(R[:60].shape)
    for name, frames in (("same liquid", R[:60]), ("jittered", R[:60] + jitter)):
        samples = {
            "positions": frames,
            "replica": np.arange(60) % 6,
            "pressure_bar": pressure[:60] + (1000.0 if name == "jittered" else 0.0),
        }
        save_dataset(tmp_path / f"{name}.npz", samples, {"kT": w.kT(300)})
        run = {"system": "water", "mapping": "com", "method": name, "n_train": 60, "seed": 0,
               "dt": 0.002, "temperature": 300.0, "run_dir": str(tmp_path)}  # fmt: skip
        out = tmp_path / name / "metrics.json"
        out.parent.mkdir()
        scores[name] = evaluate_step(study, tmp_path / f"{name}.npz", run, str(out),
                                     reference_path=str(tmp_path / "test.npz"))  # fmt: skip
        curves, _ = load_dataset(out.with_name("curves.npz"))
        assert {"r", "rdf_model", "rdf_reference", "theta", "adf_model"} <= set(curves)
    same, jittered = scores["same liquid"], scores["jittered"]
    assert np.isfinite(same["rdf_rmse"]) and np.isfinite(same["adf_rmse"])
    assert same["rdf_rmse"] < 0.25 and jittered["rdf_rmse"] > 2 * same["rdf_rmse"]
    assert jittered["adf_rmse"] > 1.5 * same["adf_rmse"]
    # the pressure: the same liquid's mean within its CI of the other half's, and a
    # sample 1000 bar off found 1000 bar off
    record = read_json(tmp_path / "same liquid" / "metrics.json")
    low, high = record["ci95"]["pressure_error_bar"]
    assert low < 0 < high and high - low < 1000
    assert same["pressure_bar"] == pytest.approx(pressure[:60].mean())
    assert same["reference_pressure_bar"] == pytest.approx(pressure[60:].mean())
    assert jittered["pressure_error_bar"] == pytest.approx(1000 + same["pressure_error_bar"])


def test_a_water_config_is_checked_for_what_works_in_a_box():
    from cgflow.config import ConfigError, validate_config

    entry = {"potential": {"n_molecules": 64, "cutoff_nm": 0.6}, "temperatures": [300],
             "mappings": ["com"], "prior": "harmonic_position",
             "network": {"type": "mlp"}, "n_train": [50],
             "evaluation": {"r_max_nm": 0.7},
             "simulation": {"dt": [0.002], "n_steps": 100, "save_every": 10}}  # fmt: skip
    with pytest.raises(ConfigError) as err:
        validate_config({"seeds": [0], "methods": {"fm": {}}, "systems": {"water": entry}})
    text = str(err.value)
    assert "water.prior: harmonic_position is not defined in a periodic box" in text
    assert "water.network.type: the mlp reads free-space coordinates" in text
    assert "water.evaluation.r_max_nm: 0.7 must be below half the box edge (0.621 nm)" in text


@pytest.mark.slow
def test_the_periodic_model_is_invariant_under_translation_and_wrapping():
    """SchNet + pair_repulsion in the box, as a water model is built: the same
    energy after every bead moves by one vector and after one bead is wrapped
    across the box."""
    import jax
    import jax.numpy as jnp

    from cgflow.models import build_energy, init_params
    from cgflow.models.prior import fit_prior

    x, _ = ideal_gas(n_frames=4, n=40, edge=1.5, seed=5)
    box = [1.5, 1.5, 1.5]
    desc = {"n_beads": 40, "dim": 3, "kT": 2.5, "box": box, "species_names": ["W"],
            "species_index": [0] * 40, "prior": fit_prior("pair_repulsion", x, 2.5, box=box),
            "network": {"type": "schnet", "cutoff": 0.5, "features": 16}}  # fmt: skip
    energy = build_energy(desc)
    params = init_params(desc, jax.random.PRNGKey(0))
    R = jnp.asarray(x[0])
    e0 = float(energy(params, R))
    wrapped = R.at[7].add(jnp.array([-1.5, 1.5, 0.0]))
    for moved in (R + jnp.array([0.37, -1.1, 0.52]), wrapped):
        assert float(energy(params, moved)) == pytest.approx(e0, rel=1e-4, abs=1e-4)


def test_the_benchmark_gives_cg_and_all_atom_speeds(tmp_path):
    from cgflow.analysis.markdown import speed_markdown
    from cgflow.io import write_json
    from cgflow.simulate.status import SimulationStatus
    from cgflow.steps.evaluate import sampling_speed

    write_json(tmp_path / "aa.json", {"ns_per_day": 49.8, "n_atoms_simulated": 768})
    aa = sampling_speed(SimulationStatus(), {"source": str(tmp_path / "aa.npz")})
    assert aa == {"kind": "aa", "ns_per_day": 49.8, "n_atoms_simulated": 768}
    status = SimulationStatus(ns_per_day_per_replica=10.0, ns_per_day_all_replicas=40.0)
    cg = sampling_speed(status, {})
    assert sampling_speed(SimulationStatus(), {}) == {}  # exact samples: nothing measured
    run = {"system": "water", "mapping": "com", "temperature": 300.0, "method": "fm"}
    records = [{"run": {**run, "method": "reference", "dt": float("nan")}, "speed": aa}]
    records += [{"run": {**run, "dt": 0.004, "seed": s}, "speed": cg} for s in (0, 1)]
    text = speed_markdown([as_record(r) for r in records])
    assert "All-atom reference MD (768 atoms): 49.8 ns/day." in text
    assert "| fm | 0.004 | 10 | 40 |" in text


def as_record(d: dict):
    """A MetricsRecord of a test's partial metrics.json dict (the rest filled in)."""
    from cgflow.analysis.records import MetricsRecord

    run = {"mapping": "m", "n_train": 0, "seed": 0, "dt": float("nan"), "run_dir": "r",
           **d["run"]}  # fmt: skip
    return MetricsRecord.from_json({"metrics": {}, "primary_metric": "x",
                                    "figure_kind": "surface_2d", **d, "run": run})  # fmt: skip


@pytest.mark.slow
def test_fit_prior_in_a_box_ends_the_pair_repulsion_at_the_network_cutoff(tmp_path):
    """fit-prior on a periodic CG data set, as the workflow runs it (a water entry of
    the default config with a SchNet): the pair prior is fitted and ends at the
    network's cutoff. It failed once on a network block that was not a model."""
    import json

    import yaml
    from conftest import REPO

    from cgflow.cli import main

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    entry = config["systems"]["water"]
    entry["reference"].update(equilibration_ps=2, production_ps=4, platform="CPU")
    entry["n_train"] = [20]
    path = tmp_path / "water.yaml"
    path.write_text(yaml.safe_dump(config))
    study = f"--config {path} --system water"
    t = tmp_path
    assert main(f"sample {study} --temperature 300 --out {t}/aa.npz".split()) == 0
    assert main(f"map {study} --mapping com --input {t}/aa.npz --out {t}/cg.npz".split()) == 0
    fit = f"fit-prior {study} --data {t}/cg.npz --n-train 20 --seed 0 --out {t}/prior.json"
    assert main(fit.split()) == 0
    prior = json.loads((t / "prior.json").read_text())
    assert prior["type"] == "pair_repulsion" and prior["system"] == "water"
    assert prior["cutoff"] == pytest.approx(entry["network"]["cutoff"])
