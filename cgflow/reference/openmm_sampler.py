"""Reference MD with OpenMM: minimise, equilibrate, then save solute frames.

Every saved frame holds the solute's positions (nm), the forces on the solute
atoms from every interaction, solvent included (kJ/mol/nm), the total potential
energy (kJ/mol) and the box (nm).  Progress goes to ``log``.  During production
the frames so far and an OpenMM checkpoint are written together, atomically, to
one partial file beside the output; a restarted run with the same settings
resumes from it, and the final data set appears only when the run is complete.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from cgflow.io import atomic_write, save_dataset, write_trajectory
from cgflow.runtime import scheduler_info, warn_if_gpu_unused
from cgflow.units import MOLAR_GAS_CONSTANT, MOLECULAR

PLATFORM_ORDER = ("CUDA", "OpenCL", "CPU")


def make_simulation(topology, system, integrator, platform: str, deterministic: bool = True):
    """An OpenMM Simulation on ``platform``, or on the first that works for ``auto``.

    With ``deterministic``, one seed gives one trajectory: the platform's
    DeterministicForces is set where it has one (CPU, CUDA), and the CPU platform
    runs one thread, because with two its sums still differ from run to run even
    with DeterministicForces set, and the difference grows along the trajectory
    (tests/test_faults.py resumes an OpenMM run and checks it against an uninterrupted
    one).

    Returns:
      (simulation, platform name).
    """
    import openmm as mm
    import openmm.app as app

    names = PLATFORM_ORDER if platform == "auto" else (platform,)
    errors = []
    for name in names:
        try:
            plat = mm.Platform.getPlatformByName(name)
            props = _deterministic(plat) if deterministic else {}
            sim = app.Simulation(topology, system, integrator, plat, props)
            return sim, name
        except Exception as err:  # platform absent or no device
            errors.append(f"{name}: {err}")
            integrator = mm.XmlSerializer.clone(integrator)
    raise RuntimeError("no usable OpenMM platform: " + "; ".join(errors))


def _deterministic(plat) -> dict:
    """Platform properties that make a run repeatable (see make_simulation)."""
    names = plat.getPropertyNames()
    props = {"DeterministicForces": "true"} if "DeterministicForces" in names else {}
    if plat.getName() == "CPU":
        props["Threads"] = "1"
    return props


def platform_device(sim) -> dict:
    """The platform's own description of where it runs: GPU name and index, or CPU threads."""
    plat = sim.context.getPlatform()
    wanted = ("DeviceName", "DeviceIndex", "CudaDeviceIndex", "OpenCLDeviceIndex", "Threads",
              "DeterministicForces")  # fmt: skip
    names = set(plat.getPropertyNames())
    return {name: plat.getPropertyValue(sim.context, name) for name in wanted if name in names}


def _fingerprint(system_desc: dict, temperature: float, md: dict) -> str:
    text = json.dumps({"system": system_desc, "T": temperature, "md": md}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def partial_path(out: Path) -> Path:
    return out.with_name(f".{out.stem}.partial.npz")


def sample_openmm(setup, temperature: float, md, out, log, description: dict) -> dict:
    """Run reference MD of an OpenMM ``setup`` at ``temperature`` (K); write data set ``out``.

    Args:
      setup: ``cgflow.systems.base.OpenMMSetup`` (topology, positions, System, solute
        atoms and their MDTraj topology).
      temperature: in K.
      md: MD settings (timestep_fs, friction_per_ps, equilibration_ps, save_interval_ps,
        checkpoint_interval_ps, platform, seed; steps_per_frame, n_frames, ...).
      out: the data set to write.
      log: progress.
      description: the system's description (metadata, and the checkpoint's
        fingerprint with the settings).

    Writes ``out`` (.npz: positions, forces (frames, solute atoms, 3), energies
    (frames,), box (frames, 3, 3), instantaneous kinetic temperature (frames,), and for
    a periodic box whose every particle is saved the molecular virial pressure
    ``pressure_bar`` (frames,)), its
    JSON metadata (kT, units, platform, ns/day, settings) and ``out`` with suffix
    ``.h5``: the solute trajectory for MDTraj.
    """
    import openmm as mm
    import openmm.unit as unit

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    topology, positions, system, solute, solute_top = setup
    kT = MOLAR_GAS_CONSTANT * temperature
    dt_ps = md.timestep_fs / 1000.0
    integrator = mm.LangevinMiddleIntegrator(
        temperature * unit.kelvin, md.friction_per_ps / unit.picosecond, dt_ps * unit.picoseconds
    )
    integrator.setRandomNumberSeed(md.seed + 1)
    sim, platform = make_simulation(topology, system, integrator, md.platform, md.deterministic)
    device = platform_device(sim)
    print(f"sample: {system.getNumParticles()} atoms, platform {platform} {device}", file=log,
          flush=True)  # fmt: skip
    warn_if_gpu_unused("sample", platform, log)
    fingerprint = _fingerprint(description, temperature, asdict(md))
    partial = partial_path(out)
    n_frames = md.n_frames
    frames = _empty_frames(n_frames, len(solute))
    dof = _degrees_of_freedom(system)
    done = _resume(partial, fingerprint, frames, sim, log)
    total = md.equilibration_steps + n_frames * md.steps_per_frame
    every = md.steps_per_frame * md.frames_per_checkpoint
    sim.reporters.append(_reporter(log, every, total))
    if done == 0:
        _equilibrate(sim, positions, temperature, md, log)
    t0 = time.perf_counter()
    steps_run = 0
    for k in range(done, n_frames):
        sim.step(md.steps_per_frame)
        steps_run += md.steps_per_frame
        _record(sim.context, frames, k, solute, dof)
        if (k + 1) % md.frames_per_checkpoint == 0 and k + 1 < n_frames:
            _checkpoint(partial, fingerprint, frames, k + 1, sim)
            print(f"sample: checkpoint at frame {k + 1}/{n_frames}", file=log, flush=True)
    wall = time.perf_counter() - t0
    ns_per_day = steps_run * dt_ps / 1000.0 / wall * 86400.0 if wall > 0 else float("nan")
    print(f"sample: {n_frames} frames, {ns_per_day:.1f} ns/day", file=log, flush=True)
    if system.usesPeriodicBoundaryConditions() and len(solute) == system.getNumParticles():
        frames["pressure_bar"] = _pressure(sim.context, topology, system, frames, kT, log)
    meta = {
        "system": description,
        "temperature": temperature,
        "kT": kT,
        "units": MOLECULAR,
        "sampler": "OpenMM LangevinMiddleIntegrator",
        "platform": platform,
        "device": {**device, **scheduler_info()},
        "ns_per_day": ns_per_day,
        "n_frames": n_frames,
        "md": asdict(md),
        "resumed_from_frame": done,
        **_simulated(system),
    }
    _write(out, frames, meta, solute_top, md.save_interval_ps)
    return meta


def _simulated(system) -> dict:
    """What was simulated besides the settings: atoms, constraints, OpenMM's version."""
    import openmm as mm

    return {"n_atoms_simulated": system.getNumParticles(), "openmm_version": mm.__version__,
            "n_constraints": system.getNumConstraints()}  # fmt: skip


def _write(out: Path, frames: dict, meta: dict, solute_top, save_interval_ps: float) -> None:
    """The data set, its trajectory for MDTraj beside it; the partial run is spent."""
    time_ps = np.arange(1, len(frames["energies"]) + 1) * save_interval_ps
    write_trajectory(out.with_suffix(".h5"), frames["positions"], solute_top, time_ps)
    save_dataset(out, frames, meta)
    partial_path(out).unlink(missing_ok=True)


def _empty_frames(n_frames: int, n_solute: int) -> dict:
    return {
        "positions": np.zeros((n_frames, n_solute, 3), np.float32),
        "forces": np.zeros((n_frames, n_solute, 3), np.float32),
        "energies": np.zeros(n_frames),
        "box": np.zeros((n_frames, 3, 3), np.float32),
        "temperature": np.zeros(n_frames),
    }


def _equilibrate(sim, positions, temperature: float, md, log) -> None:
    """From the start structure: minimised, velocities drawn at ``temperature``
    (seed + 2), ``equilibration_steps`` run."""
    import openmm.unit as unit

    sim.context.setPositions(positions)
    sim.minimizeEnergy()
    sim.context.setVelocitiesToTemperature(temperature * unit.kelvin, md.seed + 2)
    t0 = time.perf_counter()
    sim.step(md.equilibration_steps)
    print(f"sample: equilibrated {md.equilibration_ps} ps in {time.perf_counter() - t0:.1f} s",
          file=log, flush=True)  # fmt: skip


def _record(context, frames: dict, k: int, solute, dof: int) -> None:
    """Frame ``k`` of the solute from the context's state: positions, forces, the
    potential energy, the box and the instantaneous kinetic temperature."""
    import openmm.unit as unit

    state = context.getState(getPositions=True, getForces=True, getEnergy=True)
    kinetic = state.getKineticEnergy().value_in_unit(unit.kilojoule_per_mole)
    frames["temperature"][k] = 2.0 * kinetic / (dof * MOLAR_GAS_CONSTANT)
    pos = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
    frc = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
    frames["positions"][k] = pos[solute]
    frames["forces"][k] = frc[solute]
    frames["energies"][k] = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    frames["box"][k] = state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.nanometer)


def _pressure(context, topology, system, frames: dict, kT: float, log) -> np.ndarray:
    """Per-frame molecular virial pressure (bar) of a box whose every particle is
    saved (:mod:`cgflow.reference.pressure`); overwrites the context's state."""
    from cgflow.reference.pressure import box_scaling_derivative, molecules_of
    from cgflow.units import pressure_bar

    t0 = time.perf_counter()
    molecule = molecules_of(topology)
    masses = np.array([system.getParticleMass(i)._value for i in range(system.getNumParticles())])
    du_ds = box_scaling_derivative(context, frames["positions"], frames["box"], molecule, masses)
    volume = np.abs(np.linalg.det(frames["box"].astype(float)))
    p = pressure_bar(du_ds, int(molecule.max()) + 1, kT, volume)
    print(f"sample: molecular virial pressure {p.mean():.0f} bar (per-frame sd {p.std():.0f}), "
          f"{time.perf_counter() - t0:.1f} s", file=log, flush=True)  # fmt: skip
    return p


def _degrees_of_freedom(system) -> int:
    """3 N minus constraints minus 3 when the centre-of-mass motion is removed."""
    import openmm as mm

    dof = 3 * sum(system.getParticleMass(i)._value > 0 for i in range(system.getNumParticles()))
    dof -= system.getNumConstraints()
    if any(isinstance(f, mm.CMMotionRemover) for f in system.getForces()):
        dof -= 3
    return dof


def _checkpoint(partial: Path, fingerprint: str, frames: dict, done: int, sim) -> None:
    chk = np.frombuffer(sim.context.createCheckpoint(), dtype=np.uint8)
    arrays = {k: v[:done] for k, v in frames.items()}
    atomic_write(
        partial,
        lambda fh: np.savez(fh, checkpoint=chk, done=done, fingerprint=fingerprint, **arrays),
    )


def _resume(partial: Path, fingerprint: str, frames: dict, sim, log) -> int:
    """Frames done by an earlier run with this ``fingerprint`` (0 for none); its state
    is loaded into ``sim``. An unreadable partial file is set aside (renamed with
    suffix ``.unreadable``, not deleted) and the run starts afresh, saying so."""
    if not partial.is_file():
        return 0
    try:
        with np.load(partial, allow_pickle=False) as data:
            if str(data["fingerprint"]) != fingerprint:
                print(f"sample: {partial} is from other settings; starting afresh", file=log)
                return 0
            done = int(data["done"])
            saved = {k: data[k] for k in frames}
            state = data["checkpoint"].tobytes()
        for k in frames:
            frames[k][:done] = saved[k]
        sim.context.loadCheckpoint(state)
    except Exception as err:  # noqa: BLE001 -- any unreadable file: zip, npz, keys, shapes, OpenMM state
        aside = partial.with_name(partial.name + ".unreadable")
        partial.replace(aside)
        print(
            f"sample: the partial run {partial} is unreadable ({type(err).__name__}: {err}); "
            f"set aside as {aside}, starting afresh",
            file=log,
            flush=True,
        )
        return 0
    print(f"sample: resuming from frame {done} ({partial})", file=log, flush=True)
    return done


class _FlushingLog:
    """A log that OpenMM's reporter writes to line by line (visible while it runs)."""

    def __init__(self, log):
        self._log = log

    def write(self, text):
        self._log.write(text)
        self._log.flush()

    def flush(self):
        self._log.flush()


def _reporter(log, every: int, total: int):
    """OpenMM's own progress report: step, % done, speed (ns/day), time left."""
    import openmm.app as app

    return app.StateDataReporter(
        _FlushingLog(log), every, step=True, progress=True, speed=True, remainingTime=True,
        temperature=True, totalSteps=total, separator="  ",
    )  # fmt: skip
