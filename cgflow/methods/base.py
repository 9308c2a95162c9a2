"""What every method's ``train`` receives and returns.

The train step (:mod:`cgflow.steps.train`) builds one :class:`Problem` per run from
the data set, the fitted prior and the model description; a method's module turns it
into a :class:`Trained` with its settings and a JAX key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TextIO

import numpy as np

from cgflow.models.description import ModelDescription
from cgflow.simulate.settings import IntegratorSettings


@dataclass(frozen=True)
class Problem:
    """One run's training problem.

    Attributes:
      energy_fn: ``energy_fn(params, R) -> scalar``, R (beads, dim).
      params: initial parameters (the fitted prior's network part, untrained).
      R_train: training frames (n, beads, dim).
      masses: bead masses (beads,).
      kT: thermal energy of the data.
      F_train: the training frames' mapped forces (n, beads, dim), for methods that
        fit forces.
      R_val, F_val: held-out validation frames and forces (m, beads, dim); m may be 0
        (None: no held-out frames).
      integrator: the CG integrator at the run's time step (methods declared
        ``per_dt``), else None.
      start: parameters of the start model (methods declared ``start_from``), else None.
      start_description: that model's description.
      checkpoint: file to checkpoint to and resume from, or None.
      log: where progress goes.
      inputs: digest of everything the result depends on beyond the method's
        settings (data, split, prior, model description, start model): a checkpoint
        written with other inputs is not resumed.
      features: ``features(positions) -> (n, k)``, the system's collective variables
        as NumPy features (angles as cos and sin), for sample-based scores; None:
        the flat positions.
      free_energy_fn: ``A(params, R, kT) -> scalar`` of a temperature-aware model
        (methods declared ``temperatures="training"``), else None.
      U_train, U_val: the frames' all-atom potential energies (n,), (m,), for methods
        declared ``aa_energies``; else None.
      kT_train, kT_val: the thermal energy each frame was sampled at (n,), (m,), for
        methods trained across temperatures; else None (all at ``kT``).
      pairs: a periodic SchNet model's pair lister (:class:`cgflow.models.pairs.
        FramePairs`): methods that list their frames' pairs within the cutoff
        (fm, re) evaluate the model on those alone; None: all pairs.
    """

    energy_fn: Callable
    params: Any
    R_train: np.ndarray
    masses: np.ndarray
    kT: float
    F_train: np.ndarray | None = None
    R_val: np.ndarray | None = None
    F_val: np.ndarray | None = None
    integrator: IntegratorSettings | None = None
    start: Any = None
    start_description: ModelDescription | None = None
    checkpoint: Path | None = None
    log: TextIO | None = None
    inputs: str = ""
    features: Callable | None = None
    free_energy_fn: Callable | None = None
    U_train: np.ndarray | None = None
    U_val: np.ndarray | None = None
    kT_train: np.ndarray | None = None
    kT_val: np.ndarray | None = None
    pairs: Any = None

    def __post_init__(self):
        empty = np.zeros((0, *np.shape(self.R_train)[1:]), np.float32)
        if self.R_val is None:  # no held-out frames: none, of the frames' shape
            object.__setattr__(self, "R_val", empty)
        if self.F_val is None:
            object.__setattr__(self, "F_val", empty)

    def forces(self, method: str) -> tuple[tuple, tuple]:
        """``((R_train, F_train), (R_val, F_val))`` for a method that fits forces."""
        if self.F_train is None or len(self.F_val) != len(self.R_val):
            raise ValueError(f"{method}: needs the mapped forces of its training and held-out "
                             "frames")  # fmt: skip
        return (self.R_train, self.F_train), (self.R_val, self.F_val)


class Trained(NamedTuple):
    """A method's result.

    Attributes:
      params: the parameters kept.
      history: one dict per logged check (written as train_log.csv).
      info: what the model description records under ``training``.
      plot: ``plot(history, path, title)`` draws the log, or None.
    """

    params: Any
    history: list[dict]
    info: dict
    plot: Callable | None = None


@dataclass(frozen=True)
class GeneratorProblem:
    """What a data-free method trains on: the all-atom energy, no data.

    Attributes:
      energy_fn: ``energy_fn(x) -> scalar``, x the flat all-atom coordinates (D,).
      data_dim: D.
      kT: thermal energy of the target exp(-U / kT).
      checkpoint: file to checkpoint to and resume from, or None.
      log: where progress goes.
      inputs: digest of what the result depends on beyond the settings (the system
        and kT): a checkpoint written with other inputs is not resumed.
      log_z: the exact ln Z of the target where the system knows it (the gap
        L + ln Z is then logged), else None.
    """

    energy_fn: Callable
    data_dim: int
    kT: float
    checkpoint: Path | None = None
    log: TextIO | None = None
    inputs: str = ""
    log_z: float | None = None
