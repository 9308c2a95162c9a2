"""A small periodic box of SchNet beads sampled over neighbour lists. Run as a script
(argv: output .npy, replica count) it sets JAX's CPU devices from the environment
(``CGFLOW_CPU_DEVICES``), saves the frames and prints how many devices the replicas
ran on and how many JAX has; tests/test_simulate.py also calls ``sample`` in-process."""

import sys

import numpy as np


def sample(n_replicas: int):
    """The last state's replicas and 20 frames (every 10 steps, after 30)."""
    import jax

    from cgflow.models import build_energy, fit_prior, init_params
    from cgflow.simulate.replicas import Periodic, replica_runner
    from cgflow.simulate.settings import IntegratorSettings

    side, edge, kT = 4, 1.24, 2.494
    grid = np.stack(np.meshgrid(*[np.arange(side)] * 3, indexing="ij"), -1).reshape(-1, 3)
    rng = np.random.default_rng(0)
    frames = ((grid + 0.5) * (edge / side) + rng.normal(0, 0.02, (6, side**3, 3))) % edge
    frames = frames.astype(np.float32)
    box = [edge] * 3
    desc = {
        "n_beads": side**3, "dim": 3, "kT": kT, "box": box, "species_names": ["W"],
        "species_index": [0] * side**3,
        "network": {"type": "schnet", "features": 4, "interactions": 1, "rbf": 4, "cutoff": 0.5},
        "prior": fit_prior("pair_repulsion", frames, kT, box=box, cutoff=0.5),
    }  # fmt: skip
    energy, params = build_energy(desc), init_params(desc, jax.random.PRNGKey(0))
    integrator = IntegratorSettings(dt=0.002, friction=2.0)
    runner = replica_runner(energy, kT, integrator, side**3, 10, 20, Periodic(box, 0.5))
    masses = np.full(side**3, 18.0)
    reps = runner.init(jax.random.PRNGKey(1), frames[:n_replicas], masses, params)
    reps = runner.advance(reps, params, 30)
    return runner.record(reps, params, 20)


if __name__ == "__main__":
    from cgflow.runtime import configure_jax

    configure_jax()  # before JAX starts: its CPU devices
    import jax

    reps, frames = sample(int(sys.argv[2]))
    np.save(sys.argv[1], np.asarray(frames))
    print(len(reps.state.position.sharding.device_set), len(jax.devices()))
