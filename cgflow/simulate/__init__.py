"""CG dynamics in JAX: many replicas at once, run in chunks with blow-up checks."""

from cgflow.simulate.langevin import SimSettings, simulate_langevin
from cgflow.simulate.step import simulate_step

__all__ = ["SimSettings", "simulate_langevin", "simulate_step"]
