"""Settings of CG dynamics: the integrator (what a trained RE model depends on) and the
run (how long, how many replicas, when a replica has blown up).

Both come from a system's ``simulation`` config block; its ``dt`` list is expanded by
the workflow into one job per time step, and each job gets its ``dt`` from the
wildcard alone. No JAX here: the config check builds these too.
"""

from __future__ import annotations

from dataclasses import dataclass

from cgflow.settings import Settings, setting

THERMOSTATS = ("langevin", "nose_hoover", "brownian")


@dataclass(frozen=True)
class IntegratorSettings(Settings):
    """The NVT integrator (time in the system's unit).

    Attributes:
      dt: time step.
      thermostat: ``langevin`` (BAOAB; ``friction`` is gamma), ``nose_hoover`` (a
        Nose-Hoover chain with JAX MD's defaults; ``friction`` is 1 / tau) or
        ``brownian`` (overdamped Langevin by Euler-Maruyama, JAX MD's
        ``simulate.brownian``: dR = F dt / (m gamma) + sqrt(2 kT dt / (m gamma)) xi;
        first order in dt, so its sampling bias grows with dt, but it stays stable
        where BAOAB would not: the integrator of the time-step claim).
      friction: Langevin (and Brownian) friction coefficient gamma (1 / time), or
        1 / tau.
    """

    block = "simulation"

    dt: float = setting(gt=0, doc="time step, in the system's time unit")
    thermostat: str = setting(
        "langevin",
        choices=THERMOSTATS,
        doc="langevin (BAOAB), nose_hoover or brownian (overdamped, Euler-Maruyama)",
    )
    friction: float = setting(
        1.0, gt=0, doc="Langevin gamma (1/time); for nose_hoover, 1/tau of the chain"
    )


@dataclass(frozen=True)
class RunSettings(Settings):
    """One CG simulation run: length, replicas, saving and blow-up checks.

    Attributes:
      n_steps: production steps per replica (after equilibration).
      equilibration_steps: steps discarded before saving (rounded up to whole save
        intervals).
      save_every: steps between saved frames.
      n_replicas: independent replicas run in parallel.
      chunk_steps: steps between blow-up checks, progress reports and checkpoints.
      max_position: a replica with any |coordinate| above this has blown up.
      max_bond_stretch: a bond longer than this multiple of its reference length
        has blown up.
      min_pair_fraction: two beads closer than this fraction of their closest
        reference distance overlap: a blow-up.
      neighbor_skin: periodic systems only: the neighbour list holds pairs within
        the model's cutoff plus this distance, and is rebuilt once a bead has moved
        half of it.
      target_halfwidth: sample in rounds of ``n_replicas`` replicas (fresh start
        frames and noise each) until the CG side of the primary metric's 95 % CI,
        scored against the training reference, has at most this half-width, or
        ``max_replicas`` have run (None: one round). The CG side of a model's CI
        shrinks only with independent replicas where they relax between basins slowly.
      max_replicas: the most replicas a run with ``target_halfwidth`` may use, a
        multiple of ``n_replicas``.
    """

    block = "simulation"

    n_steps: int = setting(ge=1, doc="production steps per replica")
    equilibration_steps: int = setting(0, ge=0, doc="steps discarded before saving")
    save_every: int = setting(10, ge=1, doc="steps between saved frames")
    n_replicas: int = setting(16, ge=1, doc="replicas run in parallel")
    chunk_steps: int = setting(
        5000, ge=1, doc="steps between blow-up checks, progress reports and checkpoints"
    )
    max_position: float = setting(1000.0, gt=0, doc="a coordinate beyond this is a blow-up")
    max_bond_stretch: float = setting(
        2.0, gt=1, doc="a bond longer than this multiple of its length is a blow-up"
    )
    min_pair_fraction: float = setting(
        0.5, gt=0, lt=1, doc="beads closer than this fraction of their closest distance overlap"
    )
    neighbor_skin: float = setting(
        0.1,
        gt=0,
        doc="periodic systems: neighbour lists hold pairs within the model's cutoff plus "
        "this distance (length unit of the system)",
    )

    target_halfwidth: float | None = setting(
        None,
        gt=0,
        doc="add rounds of n_replicas replicas until the CG side of the primary metric's "
        "95 % CI half-width (against the training reference) is at most this",
    )
    max_replicas: int | None = setting(
        None, ge=1, doc="with target_halfwidth: the most replicas, a multiple of n_replicas"
    )

    @property
    def n_rounds(self) -> int:
        """The most rounds of ``n_replicas`` replicas the run may take."""
        return 1 if self.target_halfwidth is None else self.max_replicas // self.n_replicas

    def check(self):
        if (self.target_halfwidth is None) != (self.max_replicas is None):
            raise ValueError(
                "simulation.target_halfwidth and simulation.max_replicas go together: "
                "give both (rounds of replicas until the CI is narrow enough) or neither"
            )
        if self.max_replicas is not None and (
            self.max_replicas < self.n_replicas or self.max_replicas % self.n_replicas
        ):
            raise ValueError(
                f"simulation.max_replicas: {self.max_replicas} is not a multiple of "
                f"n_replicas ({self.n_replicas}); replicas are added in rounds of n_replicas"
            )
        if self.save_every > self.n_steps:
            raise ValueError(
                f"simulation.save_every: {self.save_every} exceeds n_steps ({self.n_steps}); "
                "no frame would be saved"
            )
        if self.n_steps % self.save_every:
            raise ValueError(
                f"simulation.n_steps: {self.n_steps} is not a multiple of save_every "
                f"({self.save_every}); the run would be cut short"
            )


def integrator_settings(block: dict, dt: float) -> IntegratorSettings:
    """The integrator of a ``simulation`` config block at time step ``dt``."""
    keys = set(IntegratorSettings.__dataclass_fields__) - {"dt"}
    return IntegratorSettings.from_dict({k: v for k, v in block.items() if k in keys} | {"dt": dt})


def run_settings(block: dict) -> RunSettings:
    """The run settings of a ``simulation`` config block."""
    keys = set(RunSettings.__dataclass_fields__)
    return RunSettings.from_dict({k: v for k, v in block.items() if k in keys})


FRAME_COPIES = 5
"""Copies of the saved frames a run holds at its peak: on the device, on the host,
reordered by replica, in the npz buffer and in the MDTraj trajectory."""
PAIR_INTERMEDIATES = 16
"""Per bead pair and network feature, the float32 values a force evaluation keeps
for its backward pass (a generous count for the networks cgflow builds)."""


def sampling_memory(n_replicas: int, n_saved: int, n_beads: int, dim: int, width: int) -> int:
    """Bytes a CG sampling run needs at its peak (an estimate, for refusing runs that
    cannot fit before they allocate): its saved frames, in ``FRAME_COPIES`` copies,
    plus one force evaluation of all replicas (every bead pair, ``width`` features).

    Args:
      n_replicas, n_saved: replicas, and frames saved per replica.
      n_beads, dim: beads and their dimension.
      width: the network's widest layer (features or hidden units), 1 for none.
    """
    frames = 4 * n_replicas * n_saved * n_beads * dim
    working = 4 * n_replicas * n_beads * n_beads * max(width, 1) * PAIR_INTERMEDIATES
    return int(FRAME_COPIES * frames + working)


def network_width(network: dict) -> int:
    """The widest layer of a model description's ``network`` block."""
    return int(max([network.get("features", 1), *network.get("hidden", [1])]))
