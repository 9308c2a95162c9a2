"""The system protocol: what every benchmark system provides to the study.

A system is one module under ``cgflow/systems/`` with a class that satisfies
:class:`System` and one line in ``cgflow.systems.SYSTEMS``. Its capabilities are
declared as class attributes (``reference_kind``, ``has_topology``, ``periodic``), so
the steps never probe for methods. File I/O lives in the steps, not here: a system
returns arrays and descriptions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple, Protocol, runtime_checkable

import numpy as np

from cgflow.mapping.linear import LinearMap

REFERENCE_KINDS = ("exact", "openmm")
FIGURE_KINDS = ("profile_1d", "surface_2d", "structure")


class OpenMMSetup(NamedTuple):
    """What the OpenMM sampler needs from a molecular system.

    Attributes:
      topology: OpenMM topology of everything simulated (solvent included).
      positions: start positions (OpenMM quantity).
      system: the OpenMM System with its force field and constraints.
      solute: indices of the atoms saved (the molecule), (n_solute,).
      solute_topology: MDTraj topology of the saved atoms.
    """

    topology: Any
    positions: Any
    system: Any
    solute: np.ndarray
    solute_topology: Any


class ExactProfile(NamedTuple):
    """A system's exact free energy along its collective variable, on a fine grid.

    Attributes:
      grid: CV values, increasing (n,).
      free_energy: A(grid) in energy units, up to a constant (n,).
      cdf: the exact cumulative distribution at ``grid`` (n,), 0 to 1.
    """

    grid: np.ndarray
    free_energy: np.ndarray
    cdf: np.ndarray

    @classmethod
    def from_free_energy(cls, grid, free_energy, kT: float) -> ExactProfile:
        """The profile of A(grid) at ``kT``, its CDF by the trapezoid rule."""
        p = np.exp(-(free_energy - free_energy.min()) / kT)
        cdf = np.concatenate([[0.0], np.cumsum(0.5 * (p[1:] + p[:-1]) * np.diff(grid))])
        return cls(grid, free_energy, cdf / cdf[-1])


@runtime_checkable
class System(Protocol):
    """A benchmark system.

    Its class attributes declare its capabilities.

    Attributes:
      type: the system type in config (``systems.<name>.type``).
      units: units of its data sets.
      dim: spatial dimension of its particles.
      reference_kind: ``exact`` (independent samples from ``sample_exact``) or
        ``openmm`` (MD of ``openmm_setup()``).
      has_topology: CG maps have an MDTraj topology (``cg_topology``): bonded
        priors, trajectories any viewer opens.
      periodic: CG models live in the periodic box of the data set.
      jax_energy: ``aa_energy_jax()`` gives the all-atom energy as a JAX function
        of flat all-atom coordinates (data-free methods need it), and
        ``log_partition(kT)`` its exact ln Z where known; a property of the
        instance where it depends on the settings (alanine: vacuum only). A
        molecule may also give ``generator_coordinates(kT, energy)``, the coordinates a
        generator proposes it in (an object with ``dim``, ``to_cartesian(y) ->
        (x (n, 3), ln |dx/dy|)``): internal coordinates, free of rigid-body motion.
      cv_names: the collective variables the free energy is scored on.
      cv_periodic: whether they are angles in (-pi, pi].
      basin_names: the metastable states whose free energies (relative to the
        first) are scored; ``basins(cv values) -> (n,)`` assigns them.
      metric_names: the metrics its evaluation reports.
      primary_metric: the one the benchmark table and error plots show.
      figure_kind: ``profile_1d``, ``surface_2d`` (scored on CV free energies) or
        ``structure`` (a liquid, scored on g(r) and the ADF).
      reference_settings, evaluation_settings: Settings classes of its
        ``reference`` and ``evaluation`` config blocks.
    """

    type: ClassVar[str]
    units: ClassVar[dict]
    dim: ClassVar[int]
    reference_kind: ClassVar[str]
    has_topology: ClassVar[bool]
    periodic: ClassVar[bool]
    jax_energy: ClassVar[bool]
    cv_names: ClassVar[tuple[str, ...]]
    cv_periodic: ClassVar[bool]
    basin_names: ClassVar[tuple[str, ...]]
    metric_names: ClassVar[tuple[str, ...]]
    primary_metric: ClassVar[str]
    figure_kind: ClassVar[str]
    reference_settings: ClassVar[type]
    evaluation_settings: ClassVar[type]

    def describe(self) -> dict:
        """JSON-ready description of the system (its type and potential settings)."""

    def kT(self, temperature: float) -> float:
        """Thermal energy at ``temperature`` in the system's energy unit."""

    def n_reference_frames(self, reference) -> int:
        """Frames a reference run with these ``reference`` settings yields."""

    def mappings(self) -> dict[str, LinearMap]:
        """The CG maps offered, by name."""

    def cv(self, cg_map: LinearMap) -> Callable[[np.ndarray], np.ndarray]:
        """``cv(positions (n, beads, dim)) -> (n, len(cv_names))``."""

    def basins(self, cv_values: np.ndarray) -> np.ndarray:
        """Index into ``basin_names`` of each row of ``cv_values`` (n, len(cv_names))."""


def check_declarations(system_cls) -> list[str]:
    """Problems with a system class's declarations (empty when it satisfies the protocol)."""
    problems = []
    for name in System.__annotations__:
        if not hasattr(system_cls, name):
            problems.append(f"{system_cls.__name__} lacks {name}")
    if problems:
        return problems
    if system_cls.reference_kind not in REFERENCE_KINDS:
        problems.append(f"reference_kind {system_cls.reference_kind!r} not in {REFERENCE_KINDS}")
    if system_cls.figure_kind not in FIGURE_KINDS:
        problems.append(f"figure_kind {system_cls.figure_kind!r} not in {FIGURE_KINDS}")
    if system_cls.primary_metric not in system_cls.metric_names:
        problems.append(f"primary_metric {system_cls.primary_metric!r} not in metric_names")
    needs = {"exact": ("sample_exact", "exact_profile"), "openmm": ("openmm_setup",)}
    for method in needs.get(system_cls.reference_kind, ()):
        if not callable(getattr(system_cls, method, None)):
            problems.append(f"reference_kind {system_cls.reference_kind} needs {method}()")
    if system_cls.figure_kind == "profile_1d" and not hasattr(system_cls, "basin_edges"):
        problems.append("figure_kind profile_1d needs basin_edges (the exact basin split)")
    if system_cls.jax_energy and not callable(getattr(system_cls, "aa_energy_jax", None)):
        problems.append("jax_energy needs aa_energy_jax()")
    if system_cls.has_topology and not callable(getattr(system_cls, "cg_topology", None)):
        problems.append("has_topology needs cg_topology()")
    return problems
