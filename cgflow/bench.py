"""``cgflow bench``: a fixed synthetic workload timed piece by piece, written as JSON.

The workload is the alanine dipeptide CG model of the default study (10 heavy-atom
beads, the bonded prior, SchNet with 32 features, 2 interactions, 16 radial basis
functions, cutoff 0.5 nm) on synthetic frames: the shipped structure's beads with
Gaussian noise of 0.01 nm (seed 0), so it needs no reference run. It measures

- start-up: a light step (``cgflow check-config``) and a JAX step's imports and
  device query, each as a fresh process (median of three);
- CG sampling: BAOAB steps per second of 32 replicas, for the prior alone and for
  prior + SchNet, per replica and summed, with ns/day at 2 fs, after compilation;
  the floating-point operations of one force evaluation (XLA's cost analysis of
  the compiled program) and the rate they run at;
- the device's own rate: a large float32 matrix product timed the same way, and on
  an x86 CPU the nominal peak (cores x clock x FMA width), so the distance between
  the model's rate and the machine's is known;
- FM: training frames per second (batch 64) after compilation;
- RE: wall time per update and its simulating share (32 replicas, a re-simulation
  of 200 + 1,000 steps before every update, then the reweighted gradient);
- a liquid: 512 beads at water's density (a jittered 8 x 8 x 8 lattice in a 2.48 nm
  box), the pair-repulsion prior truncated at 0.5 nm and SchNet 16 x 1 (the
  default study's water model): listing the frames' pairs (ms per frame), FM
  training over the lists (frames per second, batch 16) and Nose-Hoover sampling
  of 4 replicas over neighbour lists (steps per second per replica, ns/day at 2 fs).

Absolute times drift on shared machines; compare two files (``--compare``) made on
the same machine close in time, as ratios.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

N_REPLICAS = 32
DT_PS = 0.002
NETWORK = {"type": "schnet", "features": 32, "interactions": 2, "rbf": 16, "cutoff": 0.5}


def machine() -> dict:
    """CPU model, cores, Python and JAX versions, JAX backend and device."""
    import jax

    from cgflow.runtime import cpu_model

    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "affinity_cores": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else None,
        "python": platform.python_version(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "device": jax.devices()[0].device_kind,
        "cpu_devices": len(jax.devices("cpu")),  # the sampler's replicas split over them
    }


def _median_time(command: list[str], repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def startup(config: Path) -> dict:
    light = [sys.executable, "-m", "cgflow.cli", "check-config", str(config)]
    jax_job = [sys.executable, "-c",
               "import cgflow.steps.simulate, cgflow.steps.train, jax; jax.devices()"]  # fmt: skip
    return {"light_job_s": _median_time(light), "jax_job_imports_s": _median_time(jax_job)}


def workload():
    """The model description, prior, parameters and synthetic frames of the workload."""
    import jax
    import mdtraj

    from cgflow.mapping.topology import bonded_terms
    from cgflow.models import ModelDescription, build_energy, fit_prior, init_params
    from cgflow.systems import get_map
    from cgflow.systems.alanine_dipeptide import AlanineDipeptide

    system = AlanineDipeptide(solvent="vacuum")
    cg_map = get_map(system, "heavy_atoms")
    top = system.cg_topology(cg_map)
    terms = bonded_terms(cg_map.n_beads, [(a.index, b.index) for a, b in top.bonds])
    x0 = np.asarray(cg_map.coord_matrix) @ mdtraj.load(str(system.pdb_path())).xyz[0]
    rng = np.random.default_rng(0)
    frames = (x0[None] + rng.normal(0, 0.01, (2000, *x0.shape))).astype(np.float32)
    kT = system.kT(300.0)
    prior = fit_prior("bonded", frames, kT, terms)
    meta = cg_map.metadata()
    desc = ModelDescription(
        n_beads=cg_map.n_beads,
        dim=3,
        kT=kT,
        prior=prior,
        network=NETWORK,
        species_names=tuple(meta["species_names"]),
        species_index=tuple(meta["species_index"]),
    )
    params = init_params(desc, jax.random.PRNGKey(0))
    return desc, build_energy, params, frames, np.asarray(cg_map.bead_masses), kT


def _runner_steps_per_s(runner, reps, params, steps: int) -> float:
    """Steps per second of each replica of a replica runner, timed after a first,
    compiling call (the step count is traced, so both calls run one program)."""
    import jax

    reps = runner.advance(reps, params, steps)
    jax.block_until_ready(reps.state.position)
    t = time.perf_counter()
    reps = runner.advance(reps, params, steps)
    jax.block_until_ready(reps.state.position)
    return steps / (time.perf_counter() - t)


def _trainer_steps_per_s(trainer, params, steps: int) -> float:
    """Steps per second of a pure trainer's jitted step (as the training driver runs
    it), timed after a first, compiling step."""
    import jax

    state = trainer.init(params, jax.random.PRNGKey(2))
    step = jax.jit(trainer.step)
    keys = jax.random.split(jax.random.PRNGKey(3), steps + 1)
    state, _ = step(state, keys[0])  # compile
    jax.block_until_ready(trainer.params(state))
    t = time.perf_counter()
    for i in range(steps):
        state, _ = step(state, keys[i + 1])
    jax.block_until_ready(trainer.params(state))
    return steps / (time.perf_counter() - t)


def sampling(desc, build_energy, params, frames, masses, kT, steps: int, replicas=()) -> dict:
    """BAOAB steps per second of N_REPLICAS replicas (the simulator's replica runner),
    timed after a first, compiling call; with ``replicas``, also at each of those
    counts (``scaling``: a row per model and count), each timed over about as many
    replica-steps as N_REPLICAS x ``steps``."""
    out, scaling = {}, []
    for label, network in (("prior", {"type": "none"}), ("schnet", NETWORK)):
        energy_fn = build_energy(desc.replace(network=network))
        p = params if network["type"] != "none" else {}
        out[label] = _sampling_rate(energy_fn, p, desc, frames, masses, kT, N_REPLICAS, steps)
        flops = force_flops(energy_fn, p, frames[:N_REPLICAS])
        out[label]["force_flops_per_replica"] = flops
        out[label]["force_gflop_per_s"] = flops * out[label]["steps_per_s_summed"] / 1e9
        for n in replicas:  # N_REPLICAS itself is timed above, with the same steps
            n_steps = max(20, steps * N_REPLICAS // n)
            rate = (
                out[label]
                if n == N_REPLICAS
                else _sampling_rate(energy_fn, p, desc, frames, masses, kT, n, n_steps)
            )
            scaling.append({"model": label, "replicas": n, **rate})
    if replicas:
        out["scaling"] = scaling
    return out


def force_flops(energy_fn, params, positions) -> float:
    """Floating-point operations of one force evaluation per replica: XLA's cost
    analysis of the compiled gradient of ``energy_fn(params, R)`` over the batch of
    replicas ``positions`` (n, beads, dim), divided by n. A BAOAB step evaluates the
    forces once; its other arithmetic is a few operations per coordinate."""
    import jax

    force = jax.jit(jax.vmap(jax.grad(lambda R, p: energy_fn(p, R)), (0, None)))
    cost = force.lower(positions, params).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost  # older JAX: a list
    return float(cost.get("flops", np.nan)) / len(positions)


FMA_FLOPS_PER_CYCLE = (("avx512f", 64), ("avx2", 32), ("avx", 16))
"""float32 operations per cycle and core by the widest vector extension the CPU
reports, assuming two FMA units per core (16 lanes x 2 operations x 2 units for
AVX-512); a core with one unit, or one that lowers its clock for wide vectors, does
less."""


def nominal_cpu_peak(cpuinfo: str | None = None, cores: int | None = None) -> dict | None:
    """The CPU's nominal float32 peak: ``cores`` (default: those this process may
    use) x the clock x ``FMA_FLOPS_PER_CYCLE``, read from ``cpuinfo`` (default:
    ``/proc/cpuinfo``); None where it cannot be read (not Linux on x86)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return None
    flags, mhz = set(), None
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags" and not flags:
            flags = set(value.split())
        elif key.strip() == "cpu MHz" and mhz is None:
            mhz = float(value)
    per_cycle = next((n for flag, n in FMA_FLOPS_PER_CYCLE if flag in flags), None)
    if mhz is None or per_cycle is None:
        return None
    if cores is None:
        from cgflow.runtime import usable_cores

        cores = usable_cores()
    return {
        "cores": cores,
        "mhz": mhz,
        "flops_per_cycle_per_core": per_cycle,
        "gflop_per_s": cores * mhz * 1e6 * per_cycle / 1e9,
    }


def device_rate(quick: bool) -> dict:
    """The device's float32 rate on a large matrix product (n x n by n x n, timed over
    repeats after a compiling call), beside the CPU's nominal peak when on a CPU."""
    import jax
    import jax.numpy as jnp

    n, repeats = (1024, 3) if quick else (2048, 10)
    a, b = jax.random.normal(jax.random.PRNGKey(5), (2, n, n), jnp.float32)
    product = jax.jit(jnp.matmul)
    jax.block_until_ready(product(a, b))
    t = time.perf_counter()
    for _ in range(repeats):
        c = product(a, b)
    jax.block_until_ready(c)
    out = {
        "matmul_n": n,
        "matmul_gflop_per_s": 2 * n**3 * repeats / (time.perf_counter() - t) / 1e9,
    }
    if jax.default_backend() == "cpu":
        out["nominal_cpu_peak"] = nominal_cpu_peak()
    return out


def _sampling_rate(energy_fn, params, desc, frames, masses, kT, n_replicas, steps) -> dict:
    import jax

    from cgflow.simulate.replicas import replica_runner
    from cgflow.simulate.settings import IntegratorSettings

    integrator = IntegratorSettings(dt=DT_PS, friction=10.0)
    runner = replica_runner(energy_fn, kT, integrator, desc.n_beads, 50, 1)
    start = np.resize(frames, (n_replicas, *frames.shape[1:]))  # the frames, repeated
    reps = runner.init(jax.random.PRNGKey(1), start, masses, params)
    per_replica = _runner_steps_per_s(runner, reps, params, steps)
    return {
        "steps_per_s_per_replica": per_replica,
        "steps_per_s_summed": per_replica * n_replicas,
        "ns_per_day_summed": per_replica * n_replicas * DT_PS * 86400 / 1000,
    }


def fm_speed(desc, build_energy, params, frames, steps: int) -> dict:
    import optax

    from cgflow.methods.base import Problem
    from cgflow.methods.fm import FMSettings, fm_trainer

    forces = np.random.default_rng(1).normal(0, 100, frames.shape).astype(np.float32)
    problem = Problem(build_energy(desc), params, frames[:1800], np.ones(frames.shape[1]), 1.0,
                      F_train=forces[:1800], R_val=frames[1800:], F_val=forces[1800:])  # fmt: skip
    trainer = fm_trainer(problem, FMSettings(batch_size=64), optax.adam(1e-3))
    return {"frames_per_s": 64 * _trainer_steps_per_s(trainer, params, steps)}


def re_speed(desc, build_energy, params, frames, masses, kT, updates: int) -> dict:
    import io

    import jax

    from cgflow.methods.base import Problem
    from cgflow.methods.re import RESettings, re_timing, train_re
    from cgflow.simulate.settings import IntegratorSettings

    # neff_threshold 1: every update re-simulates (any step of the parameters lowers
    # N_eff below N), so the split between simulating and reweighting is measured; at
    # the methods' default (0.9) this small learning rate re-simulates once in 12.
    s = RESettings(learning_rate=0.003, n_updates=updates, n_replicas=N_REPLICAS,
                   equilibration_steps=200, sample_steps=1000, save_every=10,
                   neff_threshold=1.0, ref_batch_size=1024)  # fmt: skip
    problem = Problem(build_energy(desc), params, frames, masses, kT, log=io.StringIO(),
                      integrator=IntegratorSettings(dt=DT_PS, friction=10.0))  # fmt: skip
    _, history = train_re(problem, s, jax.random.PRNGKey(4))
    timing = re_timing(history)
    return {
        "wall_per_update_s": timing["wall_per_update_s"],
        "simulating_per_update_s": timing["simulating_per_update_s"],
        "simulating_share": timing["simulating_share"],
        "resimulations": int(sum(h["resimulated"] for h in history)),
        "updates": len(history),
    }


LIQUID_SIDE, LIQUID_EDGE_NM = 8, 2.48
LIQUID_NETWORK = {"type": "schnet", "features": 16, "interactions": 1, "rbf": 16, "cutoff": 0.5}


def liquid(quick: bool) -> dict:
    """The liquid workload: pair listing, FM over the lists, CG sampling in the box."""
    import jax
    import optax

    from cgflow.methods.base import Problem
    from cgflow.methods.fm import FMSettings, fm_trainer
    from cgflow.models import ModelDescription, build_energy, fit_prior, init_params
    from cgflow.models.pairs import FramePairs
    from cgflow.simulate.replicas import Periodic, replica_runner
    from cgflow.simulate.settings import IntegratorSettings

    n, edge = LIQUID_SIDE**3, LIQUID_EDGE_NM
    grid = np.stack(np.meshgrid(*[np.arange(LIQUID_SIDE)] * 3, indexing="ij"), -1)
    sites = (grid.reshape(-1, 3) + 0.5) * (edge / LIQUID_SIDE)
    rng = np.random.default_rng(0)
    frames = (sites + rng.normal(0, 0.02, (96, n, 3))).astype(np.float32) % edge
    forces = rng.normal(0, 300, frames.shape).astype(np.float32)
    kT, box = 2.494, [edge] * 3
    desc = ModelDescription(
        n_beads=n, dim=3, kT=kT, box=tuple(box), network=LIQUID_NETWORK,
        species_names=("W",), species_index=(0,) * n,
        prior=fit_prior("pair_repulsion", frames, kT, box=box, cutoff=0.5),
    )  # fmt: skip
    energy_fn, params = build_energy(desc), init_params(desc, jax.random.PRNGKey(0))
    pairs = FramePairs(box, 0.5, n)
    jax.block_until_ready(pairs(frames[:8]))  # compiles
    t = time.perf_counter()
    jax.block_until_ready(pairs(frames))
    list_ms = 1000 * (time.perf_counter() - t) / len(frames)
    problem = Problem(energy_fn, params, frames[:80], np.full(n, 18.0), kT, F_train=forces[:80],
                      R_val=frames[80:], F_val=forces[80:], pairs=pairs)  # fmt: skip
    trainer = fm_trainer(problem, FMSettings(batch_size=16), optax.adam(1e-3))
    fm_fps = 16 * _trainer_steps_per_s(trainer, params, 3 if quick else 10)
    integrator = IntegratorSettings(dt=DT_PS, friction=2.0, thermostat="nose_hoover")
    runner = replica_runner(energy_fn, kT, integrator, n, 50, 1, Periodic(box, 0.5))
    reps = runner.init(jax.random.PRNGKey(1), frames[:4], np.full(n, 18.0), params)
    per_replica = _runner_steps_per_s(runner, reps, params, 20 if quick else 200)
    return {
        "beads": n,
        "pairs_listed": pairs.capacity,
        "all_pairs": n * (n - 1) // 2,
        "list_ms_per_frame": list_ms,
        "fm_frames_per_s": fm_fps,
        "sampling_steps_per_s_per_replica": per_replica,
        "sampling_ns_per_day_per_replica": per_replica * DT_PS * 86400 / 1000,
        "neighbor_list": runner.neighbors.stats(),
    }


CONFIG = """\
methods: {fm: {}}
systems:
  double_well:
    temperatures: [3.0]
    mappings: [x1]
    n_train: [100]
    simulation: {dt: [0.01], n_steps: 1000}
"""
"""The config the light job checks (a small study)."""


def run_bench(out: Path, quick: bool = False, replicas=()) -> dict:
    """Run the workload and write ``out`` (JSON); ``replicas``: more replica counts at
    which to time the sampling (``sampling.scaling``)."""
    import tempfile

    from cgflow.runtime import configure_jax

    configure_jax()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "bench.yaml"
        config.write_text(CONFIG)
        result = {"machine": machine(), "quick": quick, "startup": startup(config)}
    desc, build_energy, params, frames, masses, kT = workload()
    result["sampling"] = sampling(
        desc, build_energy, params, frames, masses, kT, 500 if quick else 5000, replicas
    )
    result["device_rate"] = device_rate(quick)
    result["fm"] = fm_speed(desc, build_energy, params, frames, 20 if quick else 300)
    result["re"] = re_speed(desc, build_energy, params, frames, masses, kT, 3 if quick else 12)
    result["liquid"] = liquid(quick)
    result["bench_wall_s"] = time.perf_counter() - t0
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result


FIGURES = (
    ("startup", "light_job_s", "lower"),
    ("startup", "jax_job_imports_s", "lower"),
    ("sampling.prior", "steps_per_s_summed", "higher"),
    ("sampling.schnet", "steps_per_s_summed", "higher"),
    ("fm", "frames_per_s", "higher"),
    ("re", "wall_per_update_s", "lower"),
    ("re", "simulating_per_update_s", "lower"),
    ("liquid", "list_ms_per_frame", "lower"),
    ("liquid", "fm_frames_per_s", "higher"),
    ("liquid", "sampling_steps_per_s_per_replica", "higher"),
    ("device_rate", "matmul_gflop_per_s", "higher"),
)
"""The figures ``compare`` shows; the last is the machine's, not the code's: its ratio
between two files is the drift of the machine between them."""


def compare(before: dict, after: dict) -> list[str]:
    """One line per figure: before, after, and the speed-up (> 1 is faster)."""
    lines = []
    for section, key, better in FIGURES:
        a, b = before, after
        for part in section.split("."):
            a, b = a.get(part, {}), b.get(part, {})
        if key not in a or key not in b:  # a file from before the figure existed
            lines.append(f"{section}.{key}: not in both files")
            continue
        x, y = a[key], b[key]
        if min(x, y) > 0:
            ratio = f"x{(x / y) if better == 'lower' else (y / x):.2f}"
        else:
            ratio = "n/a (a zero)"
        lines.append(f"{section}.{key}: {x:.4g} -> {y:.4g}  speed-up {ratio}")
    return lines
