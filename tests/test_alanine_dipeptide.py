"""Alanine dipeptide: structure, OpenMM forces, force maps with constraints, sampling."""

import io

import numpy as np
import openmm as mm
import openmm.unit as unit
import pytest

from cgflow.config import ConfigError, validate_config
from cgflow.io import load_dataset, read_json
from cgflow.mapping import aggregate_constraints, apply_map, slice_map
from cgflow.reference.openmm_sampler import partial_path, sample_openmm
from cgflow.systems import get_system
from cgflow.systems.alanine_dipeptide import AlanineDipeptide, build_structure
from cgflow.systems.molecular import MDSettings


def sample(system_def, md, out, log):
    """300 K reference MD of ``system_def``, as the sample step runs it."""
    return sample_openmm(system_def.openmm_setup(), 300.0, md, out, log, system_def.describe())


def test_shipped_structure_is_what_the_builder_makes(tmp_path):
    """Same atoms; heavy atoms and phi/psi as built (hydrogen placement by OpenMM's
    Modeller varies between builds, so methyl rotations may differ)."""
    import mdtraj

    (tmp_path / "built.pdb").write_text(build_structure())
    built = mdtraj.load(str(tmp_path / "built.pdb"))
    shipped = mdtraj.load(str(AlanineDipeptide().pdb_path()))
    names = [(a.residue.name, a.name) for a in shipped.topology.atoms]
    assert names == [(a.residue.name, a.name) for a in built.topology.atoms]
    heavy = shipped.topology.select("not element H")
    assert len(heavy) == 10
    assert mdtraj.rmsd(built, shipped, atom_indices=heavy)[0] < 0.005
    for f in (mdtraj.compute_phi, mdtraj.compute_psi):
        assert abs(f(built)[1][0, 0] - f(shipped)[1][0, 0]) < np.radians(2.0)

    def chirality(t):  # signed volume at CA; L-alanine as in OpenMM's own test protein
        x = t.xyz[0]
        at = {a.name: a.index for a in t.topology.residue(1).atoms}
        return np.dot(
            x[at["N"]] - x[at["CA"]], np.cross(x[at["C"]] - x[at["CA"]], x[at["CB"]] - x[at["CA"]])
        )

    assert chirality(built) > 0 and chirality(shipped) > 0


@pytest.mark.parametrize("solvent", ["vacuum", "implicit"])
def test_openmm_forces_are_minus_energy_gradient(solvent):
    system_def = AlanineDipeptide(solvent=solvent, constraints="none")
    topology, positions, system, _, _ = system_def.openmm_setup()
    ctx = mm.Context(system, mm.VerletIntegrator(0.001), mm.Platform.getPlatformByName("Reference"))
    x = positions.value_in_unit(unit.nanometer) if hasattr(positions, "value_in_unit") else None
    x = np.array([[p.x, p.y, p.z] for p in positions]) if x is None else np.asarray(x)
    x = x + np.random.default_rng(0).normal(0, 0.005, x.shape)  # off the minimum

    def energy(y):
        ctx.setPositions(y * unit.nanometer)
        return (
            ctx.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
        )

    ctx.setPositions(x * unit.nanometer)
    forces = (
        ctx.getState(getForces=True)
        .getForces(asNumpy=True)
        .value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
    )
    h = 1e-5
    for atom in (0, 4, 8, 10, 14, 19):
        for d in range(3):
            e = np.zeros_like(x)
            e[atom, d] = h
            fd = -(energy(x + e) - energy(x - e)) / (2 * h)
            assert fd == pytest.approx(forces[atom, d], rel=1e-4, abs=0.05)


def test_maps_of_the_molecule():
    dipeptide = get_system("alanine_dipeptide", {"potential": {"constraints": "hbonds"}})
    maps = dipeptide.mappings()
    heavy, backbone = maps["heavy_atoms"], maps["backbone"]
    assert heavy.n_beads == 10 and backbone.n_beads == 5
    assert backbone.bead_names == ("ACE-C", "ALA-N", "ALA-CA", "ALA-C", "NME-N")
    # united-atom masses: CH3 = C + 3 H
    assert heavy.bead_masses[0] == pytest.approx(12.011 + 3 * 1.008, abs=0.01)
    # aggregated map: each methyl bead carries its carbon and three hydrogens
    assert heavy.force_map == "aggregated"
    assert (heavy.force_matrix != 0).sum(axis=1).tolist() == [4, 1, 1, 2, 2, 4, 1, 1, 2, 4]
    np.testing.assert_allclose(heavy.force_matrix @ heavy.coord_matrix.T, np.eye(10))
    unconstrained = get_system("alanine_dipeptide", {"potential": {"constraints": "none"}})
    assert unconstrained.mappings()["heavy_atoms"].force_map == "slice"
    top = dipeptide.cg_topology(backbone)
    assert [(a.name, b.name) for a, b in top.bonds] == [
        ("C", "N"),
        ("N", "CA"),
        ("CA", "C"),
        ("C", "N"),
    ]


def test_aggregated_force_map_by_hand():
    # atoms: X (bead 0), H bonded and constrained to X, Y (bead 1)
    m = slice_map("xy", 3, [0, 2], ["X", "Y"], [13.0, 12.0])
    agg = aggregate_constraints(m, [(0, 1)])
    np.testing.assert_array_equal(agg.force_matrix, [[1, 1, 0], [0, 0, 1]])
    r = np.array([[[0.0, 0, 0], [0.1, 0, 0], [0.3, 0, 0]]])
    f = np.array([[[1.0, 2, 3], [0.5, -1, 0], [-2.0, 0, 1]]])
    R, F = apply_map(agg, r, f)
    np.testing.assert_allclose(R[0], [[0, 0, 0], [0.3, 0, 0]])
    np.testing.assert_allclose(F[0], [[1.5, 1, 3], [-2, 0, 1]])
    with pytest.raises(ValueError, match="no valid aggregated force map"):
        aggregate_constraints(m, [(0, 1), (1, 2)])  # one cluster feeding two beads


def test_constraint_aware_force_map_is_unbiased_and_slice_is_not():
    """X (12 amu) and H (1 amu) held 0.1 nm apart by a constraint, H tethered by
    U = k |r_H|^2 / 2. For the CG coordinate R = r_X, Stein's identity gives
    <F . R> = -3 kT for the mean force. The aggregated map (f_X + f_H) satisfies
    it; the slice map (f_X, here always 0) cannot: constraint forces are missing
    from what OpenMM reports."""
    T, k = 300.0, 500.0
    kT = 0.0083144626 * T
    system = mm.System()
    system.addParticle(12.0)
    system.addParticle(1.0)
    system.addConstraint(0, 1, 0.1)
    tether = mm.CustomExternalForce("0.5*k*(x^2+y^2+z^2)")
    tether.addGlobalParameter("k", k)
    tether.addParticle(1, [])
    system.addForce(tether)
    integ = mm.LangevinMiddleIntegrator(T, 5.0, 0.002)
    integ.setRandomNumberSeed(3)
    ctx = mm.Context(system, integ, mm.Platform.getPlatformByName("Reference"))
    ctx.setPositions([mm.Vec3(0, 0, 0), mm.Vec3(0.1, 0, 0)])
    ctx.setVelocitiesToTemperature(T, 4)
    integ.step(2000)
    virial_agg, virial_slice = [], []
    aggregated = aggregate_constraints(slice_map("x", 2, [0], ["X"], [13.0]), [(0, 1)])
    for _ in range(4000):
        integ.step(25)
        st = ctx.getState(getPositions=True, getForces=True)
        r = st.getPositions(asNumpy=True).value_in_unit(unit.nanometer)[None]
        f = st.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)[None]
        R, F = apply_map(aggregated, r, f)
        virial_agg.append(np.sum(R * F))
        virial_slice.append(np.sum(r[0, 0] * f[0, 0]))
    v = np.array(virial_agg)
    sem = v.std() / np.sqrt(len(v) / 5)  # frames 25 steps apart, allow correlation ~5 frames
    assert abs(v.mean() + 3 * kT) < 4 * sem
    assert 4 * sem < kT  # the test can tell 0 from -3 kT
    assert abs(np.mean(virial_slice) + 3 * kT) > 2.5 * kT


@pytest.mark.parametrize(
    "change, message",
    [
        ({"potential": {"forcefield": "charmm99"}}, "forcefield: 'charmm99' is not one of"),
        ({"potential": {"solvent": "gas"}}, "solvent: 'gas' is not one of"),
        ({"potential": {"pdb": "/nonexistent/ala.pdb"}}, "not found"),
        ({"mappings": ["side_chains"]}, "unknown mapping 'side_chains'"),
        (
            {"reference": {"production_ps": 10, "save_interval_ps": 0.3}},
            "must divide production_ps",
        ),
        (
            {"reference": {"timestep_fs": 2.0, "save_interval_ps": 0.003}},
            "whole number of time steps",
        ),
        ({"reference": {"platform": "TPU"}}, "platform: 'TPU' is not one of"),
    ],
)
def test_bad_alanine_config(change, message):
    entry = {"temperatures": [300], "mappings": ["heavy_atoms"]}
    entry.update(change)
    with pytest.raises(ConfigError, match=message):
        validate_config({"systems": {"alanine_dipeptide": entry}, "methods": {"fm": {}}})


def test_malformed_pdb(tmp_path):
    bad = tmp_path / "bad.pdb"
    bad.write_text("ATOM      1  CA  ALA A   1      this is not a pdb\n")
    with pytest.raises(ValueError, match="bad.pdb"):
        AlanineDipeptide(pdb=str(bad)).load_structure()


def test_a_structure_of_coincident_atoms_is_refused_at_validation(tmp_path):
    """A PDB with the right atoms all at the origin passes the residue check but would
    give OpenMM infinite forces: config validation names the file and the atoms."""
    from cgflow.config import ConfigError, validate_config

    good = AlanineDipeptide().pdb_path().read_text().splitlines()
    zeroed = [
        line[:30] + f"{0.0:8.3f}{0.0:8.3f}{0.0:8.3f}" + line[54:]
        if line.startswith(("ATOM", "HETATM")) else line
        for line in good
    ]  # fmt: skip
    bad = tmp_path / "zero.pdb"
    bad.write_text("\n".join(zeroed) + "\n")
    entry = {"potential": {"pdb": str(bad)}, "temperatures": [300], "mappings": ["heavy_atoms"]}
    with pytest.raises(ConfigError, match=r"zero.pdb: atoms 0 and 1 are 0 nm apart"):
        validate_config({"systems": {"alanine_dipeptide": entry}, "methods": {"fm": {}}})
    with pytest.raises(ValueError, match="not a structure to start from"):
        AlanineDipeptide(pdb=str(bad)).load_structure()


class StopAt(io.StringIO):
    """A log that interrupts the run once it reports a given frame."""

    def __init__(self, marker):
        super().__init__()
        self.marker = marker

    def write(self, text):
        if self.marker in text:
            raise KeyboardInterrupt
        return super().write(text)


@pytest.mark.parametrize("solvent", ["vacuum", "implicit"])
def test_short_sampling_run(solvent, tmp_path):
    system_def = AlanineDipeptide(solvent=solvent)
    md = MDSettings(
        equilibration_ps=0.2, production_ps=1.0, save_interval_ps=0.1, platform="CPU", seed=1
    )
    meta = sample(system_def, md, tmp_path / "aa.npz", io.StringIO())
    data, saved = load_dataset(tmp_path / "aa.npz")
    assert data["positions"].shape == (10, 22, 3) and data["forces"].shape == (10, 22, 3)
    assert np.all(np.isfinite(data["energies"])) and saved["platform"] == "CPU"
    assert meta["ns_per_day"] > 0 and saved["kT"] == pytest.approx(2.4943, rel=1e-4)
    import mdtraj

    traj = mdtraj.load(str(tmp_path / "aa.h5"))
    np.testing.assert_allclose(traj.xyz, data["positions"], atol=1e-6)


def test_interrupted_sampling_resumes(tmp_path):
    system_def = AlanineDipeptide(solvent="vacuum")
    md = MDSettings(
        equilibration_ps=0.1,
        production_ps=2.0,
        save_interval_ps=0.1,
        checkpoint_interval_ps=0.5,
        platform="Reference",
        seed=2,
    )
    out = tmp_path / "aa.npz"
    with pytest.raises(KeyboardInterrupt):
        sample(system_def, md, out, StopAt("frame 10/20"))
    assert not out.exists() and partial_path(out).exists()
    meta = sample(system_def, md, out, io.StringIO())
    assert meta["resumed_from_frame"] == 10 and not partial_path(out).exists()
    resumed, _ = load_dataset(out)
    fresh_out = tmp_path / "fresh" / "aa.npz"
    sample(system_def, md, fresh_out, io.StringIO())
    fresh, _ = load_dataset(fresh_out)
    # The Reference platform's checkpoint restores positions, velocities and the
    # random state: the resumed run is the uninterrupted run.
    np.testing.assert_allclose(resumed["positions"], fresh["positions"], atol=1e-5)
    assert read_json(tmp_path / "aa.json")["n_frames"] == 20


@pytest.mark.slow
@pytest.mark.parametrize("solvent", ["vacuum", "implicit"])
def test_one_seed_gives_one_trajectory_on_the_cpu_platform(solvent, tmp_path):
    """With OpenMM's DeterministicForces (set wherever a platform has it) and one
    thread on the CPU platform, two CPU runs with one seed give identical frames;
    before, threads summing forces in another order drove trajectories 0.5 nm apart
    by frame 200 (DeterministicForces alone still left them 1e-2 nm apart by frame
    20 in vacuum)."""
    system_def = AlanineDipeptide(solvent=solvent)
    md = MDSettings(equilibration_ps=0.2, production_ps=4.0, save_interval_ps=0.2,
                    checkpoint_interval_ps=2.0, platform="CPU", seed=3)  # fmt: skip
    runs = []
    for k in range(2):
        meta = sample(system_def, md, tmp_path / f"{k}" / "aa.npz", io.StringIO())
        runs.append(load_dataset(tmp_path / f"{k}" / "aa.npz")[0]["positions"])
    assert meta["device"].get("DeterministicForces") == "true"
    assert meta["device"].get("Threads") == (
        "1" if solvent == "implicit" else meta["device"]["Threads"]
    )
    np.testing.assert_array_equal(runs[0], runs[1])


def test_unreadable_partial_run_is_set_aside(tmp_path):
    """A corrupt partial file (a disk that filled up mid-write, a crash) is named on
    the log, renamed aside (not deleted) and the run starts afresh."""
    system_def = AlanineDipeptide(solvent="vacuum")
    md = MDSettings(equilibration_ps=0.1, production_ps=1.0, save_interval_ps=0.1,
                    checkpoint_interval_ps=0.5, platform="Reference", seed=2)  # fmt: skip
    out = tmp_path / "aa.npz"
    partial_path(out).write_bytes(b"PK\x03\x04 not a whole zip file")
    log = io.StringIO()
    meta = sample(system_def, md, out, log)
    text = log.getvalue()
    assert str(partial_path(out)) in text and "unreadable" in text and "starting afresh" in text
    aside = partial_path(out).with_name(partial_path(out).name + ".unreadable")
    assert aside.read_bytes().startswith(b"PK") and meta["n_frames"] == 10
    assert meta.get("resumed_from_frame", 0) == 0


@pytest.mark.slow
def test_kinetic_temperature_matches_thermostat(tmp_path):
    """Instantaneous temperatures average to the set temperature (equipartition).

    22 atoms, 12 hydrogen bonds constrained, centre-of-mass motion removed: 51 degrees
    of freedom. The mean is tested against 4 block-averaged standard errors, and the
    test checks that this bound is below the 16.7 K (300 K x 3/54) by which a count
    that forgot the removed centre of mass (54) would be off, so that count, or one
    forgetting the constraints (63), fails.
    """
    from cgflow.reference.openmm_sampler import _degrees_of_freedom

    system_def = AlanineDipeptide(solvent="vacuum")
    assert _degrees_of_freedom(system_def.openmm_setup().system) == 51
    md = MDSettings(
        equilibration_ps=1.0,
        production_ps=100.0,
        save_interval_ps=0.1,
        friction_per_ps=10.0,
        platform="CPU",
        seed=5,
    )
    sample(system_def, md, tmp_path / "aa.npz", io.StringIO())
    T = load_dataset(tmp_path / "aa.npz")[0]["temperature"]
    # friction 10/ps decorrelates the kinetic energy in ~0.05 ps; 25 blocks of 4 ps
    blocks = T.reshape(25, -1).mean(axis=1)
    sem = blocks.std(ddof=1) / np.sqrt(len(blocks))
    assert 4 * sem < 300.0 * 3 / 54, f"bound 4 x {sem:.1f} K cannot detect a wrong count"
    assert abs(T.mean() - 300.0) < 4 * sem
    # per-frame spread of a 51-dof kinetic temperature: 300 sqrt(2/51) = 59 K
    assert T.std() == pytest.approx(300.0 * np.sqrt(2 / 51), rel=0.2)


@pytest.mark.slow
def test_prior_can_leave_the_scored_dihedrals_to_the_network(tmp_path):
    """prior_cv_dihedrals: omit fits no prior term on phi and psi (the network alone
    learns them, and the training frames' phi/psi histogram is not counted twice);
    fit (the default) keeps them; other dihedrals stay in both."""
    import mdtraj

    from cgflow.io import save_dataset
    from cgflow.steps.map import map_dataset
    from cgflow.steps.prior import fit_prior_step
    from cgflow.study import StudySettings

    rng = np.random.default_rng(0)
    xyz = mdtraj.load(str(AlanineDipeptide().pdb_path())).xyz[0]
    aa = xyz[None] + 0.02 * rng.standard_normal((200, *xyz.shape))
    save_dataset(tmp_path / "aa.npz",
                 {"positions": aa, "forces": np.zeros_like(aa), "energies": np.zeros(200)},
                 {"kT": 2.49, "temperature": 300.0, "units": {}})  # fmt: skip
    quads = {}
    for choice in ("fit", "omit"):
        entry = {"temperatures": [300], "mappings": ["heavy_atoms"], "prior": "bonded",
                 "prior_cv_dihedrals": choice, "potential": {"solvent": "vacuum"}}  # fmt: skip
        config = {"systems": {"alanine_dipeptide": entry}, "methods": {}, "val_fraction": 0.1}
        study = StudySettings.from_config(config, "alanine_dipeptide")
        map_dataset(study, "heavy_atoms", str(tmp_path / "aa.npz"), str(tmp_path / "cg.npz"))
        fit_prior_step(study, str(tmp_path / "cg.npz"), 200, 0, str(tmp_path / f"{choice}.json"))
        prior = read_json(tmp_path / f"{choice}.json")
        quads[choice] = {
            tuple(q) for q in prior["dihedrals"]["idx"] + prior["narrow_dihedrals"]["idx"]
        }
        quads[f"{choice}_omitted"] = prior["omitted_dihedrals"]
    cg_map = AlanineDipeptide().mappings()["heavy_atoms"]
    phi_psi = {tuple(q) for q in AlanineDipeptide().cv_dihedrals(cg_map)}
    assert phi_psi <= quads["fit"] and not phi_psi & quads["omit"]
    assert quads["omit"] == quads["fit"] - phi_psi and len(quads["omit"]) > 0
    assert {tuple(q) for q in quads["omit_omitted"]} == phi_psi and quads["fit_omitted"] == []
    bad = {"temperatures": [3], "mappings": ["x1"], "prior_cv_dihedrals": "omit"}
    with pytest.raises(ConfigError, match="prior_cv_dihedrals: omit needs a bonded prior"):
        validate_config({"methods": {"fm": {}}, "systems": {"double_well": bad}})


def test_hydrogen_mass_repartitioning_moves_mass_from_the_bonded_heavy_atom():
    """With ``hydrogen_mass_amu`` every hydrogen weighs that much, its heavy atom
    the difference less, and the molecule as much as before; forces do not change."""

    def masses(system):
        n = system.getNumParticles()
        return np.array([system.getParticleMass(i).value_in_unit(unit.amu) for i in range(n)])

    system_def = AlanineDipeptide(solvent="vacuum")
    plain = system_def.openmm_setup()
    heavy = system_def.openmm_setup(hydrogen_mass_amu=3.0)
    m0, m1 = masses(plain.system), masses(heavy.system)
    hydrogens = np.array([a.element.symbol == "H" for a in plain.topology.atoms()])
    assert np.allclose(m1[hydrogens], 3.0)
    assert m1.sum() == pytest.approx(m0.sum(), abs=1e-6)
    methyl_carbon = next(
        a.index for a in plain.topology.atoms() if a.residue.name == "ACE" and a.name == "CH3"
    )
    assert m1[methyl_carbon] == pytest.approx(m0[methyl_carbon] - 3 * (3.0 - m0[hydrogens][0]))
    assert MDSettings(hydrogen_mass_amu=3.0).hydrogen_mass_amu == 3.0


@pytest.mark.slow
def test_the_jax_energy_in_vacuum_matches_openmm_on_thermal_frames():
    """JAX MD's conversion of the amber14 System in vacuum (what the data-free method
    queries) against OpenMM's Reference platform, in float64, on frames of a short
    300 K trajectory: energies and forces within 1e-4 relative error."""
    import jax
    import jax.numpy as jnp
    import openmm.app as app

    system_def = get_system("alanine_dipeptide", {"potential": {"solvent": "vacuum"}})
    assert system_def.jax_energy
    topology, positions = system_def.load_structure()
    system = system_def.forcefield_object().createSystem(
        topology, nonbondedMethod=app.NoCutoff, constraints=None
    )
    integrator = mm.LangevinMiddleIntegrator(300 * unit.kelvin, 5 / unit.picosecond,
                                             0.5 * unit.femtosecond)  # fmt: skip
    integrator.setRandomNumberSeed(3)
    context = mm.Context(system, integrator, mm.Platform.getPlatformByName("Reference"))
    context.setPositions(positions)
    mm.LocalEnergyMinimizer.minimize(context)
    context.setVelocitiesToTemperature(300 * unit.kelvin, 3)
    with jax.enable_x64(True):
        energy = system_def.aa_energy_jax(precision="double")
        value_and_grad = jax.jit(jax.value_and_grad(energy))
        for _ in range(3):
            integrator.step(400)
            state = context.getState(getEnergy=True, getForces=True, getPositions=True)
            x = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
            e_ref = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
            f_ref = state.getForces(asNumpy=True).value_in_unit(
                unit.kilojoule_per_mole / unit.nanometer
            )
            e, g = value_and_grad(jnp.asarray(x, jnp.float64).ravel())
            assert abs(float(e) - e_ref) <= 1e-4 * max(abs(e_ref), 1.0), (float(e), e_ref)
            diff = np.abs(-np.asarray(g).reshape(-1, 3) - f_ref).max()
            assert diff <= 1e-4 * np.abs(f_ref).max(), (diff, np.abs(f_ref).max())


@pytest.mark.slow
def test_the_jitted_single_precision_jax_energy_is_finite_at_the_minimum():
    """The float32 energy a generator trains on, jitted, at the shipped (minimised)
    structure: finite and within 1e-4 of OpenMM's (it was NaN while JAX MD's list
    kept its padding entries)."""
    import jax
    import jax.numpy as jnp
    import openmm.app as app

    system_def = get_system("alanine_dipeptide", {"potential": {"solvent": "vacuum"}})
    topology, positions = system_def.load_structure()
    system = system_def.forcefield_object().createSystem(
        topology, nonbondedMethod=app.NoCutoff, constraints=None
    )
    context = mm.Context(system, mm.VerletIntegrator(0.001),
                         mm.Platform.getPlatformByName("Reference"))  # fmt: skip
    context.setPositions(positions)
    e_ref = (
        context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    )
    x = np.asarray(positions.value_in_unit(unit.nanometer), np.float32).ravel()
    energy = jax.jit(system_def.aa_energy_jax())
    for shift in (0.0, 0.37):  # also away from the origin
        e = float(energy(jnp.asarray(x + shift)))
        assert np.isfinite(e) and abs(e - e_ref) <= 1e-4 * abs(e_ref), (e, e_ref)


def test_the_jax_energy_is_refused_with_solvent():
    system_def = get_system("alanine_dipeptide", {"potential": {"solvent": "implicit"}})
    assert not system_def.jax_energy
    with pytest.raises(ValueError, match="in vacuum only"):
        system_def.aa_energy_jax()


def test_a_reference_of_several_runs_is_sampled_run_by_run_and_pooled(tmp_path):
    """n_runs 2: each run is half the production time with its own seed, the pooled
    data set is the runs one after the other with each frame's run, and the map step
    keeps the runs; a run that is not one of the reference's is refused."""
    from cgflow.steps.map import map_dataset
    from cgflow.steps.sample import run_path, sample_step
    from cgflow.study import StudySettings

    entry = {"potential": {"solvent": "vacuum", "constraints": "hbonds"},
             "reference": {"equilibration_ps": 0.1, "production_ps": 1.0,
                           "save_interval_ps": 0.1, "platform": "CPU", "seed": 4,
                           "n_runs": 2}}  # fmt: skip
    study = StudySettings("alanine_dipeptide", entry, {}, 0.1)
    out = tmp_path / "aa.npz"
    meta = sample_step(study, 300.0, str(out), io.StringIO())
    data, saved = load_dataset(out)
    runs = [load_dataset(run_path(out, k)) for k in range(2)]
    assert data["positions"].shape == (10, 22, 3) and list(data["run"]) == [0] * 5 + [1] * 5
    np.testing.assert_array_equal(
        data["positions"], np.concatenate([r["positions"] for r, _ in runs])
    )
    assert [r["seed"] for r in saved["runs"]] == [4, 4 + 1009] == [m["md"]["seed"] for _, m in runs]
    assert meta["n_frames"] == 10 and saved["md"]["n_runs"] == 2
    assert not np.allclose(runs[0][0]["positions"][0], runs[1][0]["positions"][0], atol=1e-3)
    import mdtraj

    assert mdtraj.load(str(out.with_suffix(".h5"))).n_frames == 10
    mapped = tmp_path / "cg.npz"
    map_dataset(study, "heavy_atoms", str(out), str(mapped))
    assert list(load_dataset(mapped)[0]["run"]) == list(data["run"])
    with pytest.raises(ValueError, match="run 2 is not one of the reference's 2 runs"):
        sample_step(study, 300.0, str(tmp_path / "x.npz"), io.StringIO(), run=2)
    with pytest.raises(ValueError, match="pools 2 runs, got 1 data sets"):
        sample_step(study, 300.0, str(tmp_path / "x.npz"), io.StringIO(), pool=[str(out)])
    with pytest.raises(ValueError, match="must divide production_ps / n_runs"):
        MDSettings(production_ps=1.0, save_interval_ps=0.1, n_runs=3)
