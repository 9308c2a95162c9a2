"""The system protocol: what every benchmark system provides to the study.

A system is one module under ``cgflow/systems/`` with a class that satisfies
:class:`System` and one line in ``cgflow.systems.SYSTEMS``. Its capabilities are
declared as class attributes (``reference_kind``, ``has_topology``, ``periodic``), so
the steps never probe for methods. File I/O lives in the steps, not here: a system
returns arrays and descriptions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, Protocol, runtime_checkable

import numpy as np

from cgflow.mapping.linear import LinearMap
from cgflow.settings import Settings

REFERENCE_KINDS = ("exact", "openmm")
FIGURE_KINDS = {
    "profile_1d": "a 1-D free-energy profile, scored against the system's exact one",
    "surface_2d": "the free-energy surface of two CVs, scored against a test reference",
    "structure": "a liquid's g(r) and ADF, scored against a test reference",
}
"""How a system's samples are scored and drawn, by ``figure_kind``."""

SCORED_EXACTLY = ("profile_1d",)
"""The figure kinds scored against the system's exact answer (no test reference)."""


def scored_exactly(system) -> bool:
    """Whether ``system`` is scored against its exact answer rather than a test
    reference (it then needs none, and its models' own PMFs are scored too)."""
    return system.figure_kind in SCORED_EXACTLY


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


@dataclass(frozen=True)
class ReferenceSettings(Settings):
    """Base of a system's ``reference`` settings: what the steps ask of every
    reference, with the answers of one set of independent samples. A time series
    (MD) overrides them."""

    n_runs: ClassVar[int] = 1
    """Independent runs pooled into the reference."""

    frame_interval: ClassVar[float | None] = None
    """Time between saved frames, for autocorrelation times (None: no time series)."""


class SystemDefaults:
    """What a system may provide, with the answer the steps take when it does not.

    A system class inherits these and overrides the ones it knows, so that the steps
    call them on any system instead of probing for them.
    """

    entry_blocks: ClassVar[tuple[str, ...]] = ()
    """Blocks of its config entry, besides the common ones, that the system reads
    (a molecule's declared maps, CVs and basins)."""

    @classmethod
    def from_entry(cls, entry: dict):
        """The system of a config entry: its ``potential`` block, by default."""
        return cls.from_dict(entry.get("potential"), f"{cls.type}.potential")

    @classmethod
    def potential_settings(cls) -> type:
        """The settings class of the ``potential`` block (the system's own class,
        by default)."""
        return cls

    def declaration_problems(self, mappings, parameterise: bool = True) -> list[str]:
        """Problems of the entry that only the system's files show (a molecule's
        selections against its structure), for the maps ``mappings`` the study uses,
        and with ``parameterise`` whether its force field covers the structure; none
        by default."""
        return []

    def reference_problems(self, cg_map, positions) -> list[str]:
        """Problems of a mapped reference (CG ``positions`` of ``cg_map``) with the
        system's declarations, e.g. basins that hold none of its frames; none by
        default."""
        return []

    def log_partition(self, kT: float) -> float | None:
        """The exact ln Z of exp(-U / kT) over all-atom coordinates (a data-free
        generator's bound is then logged as a gap); None: not known."""
        return None

    def generator_coordinates(self, kT: float, energy=None):
        """The coordinates a data-free generator proposes the system in (an object with
        ``dim`` and ``to_cartesian(y) -> (x (n, 3), ln |dx/dy|)``, e.g. a molecule's
        internal coordinates); None: its flat Cartesian coordinates."""
        return None

    def mean_energy_x1(self, x1, kT: float):
        """<U | CV> at kT along a 1-D system's CV, exact (a temperature-aware model's
        conditional energy is scored against it); None: not known."""
        return None


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
        of flat all-atom coordinates (data-free methods need it); a property of the
        instance where it depends on the settings (alanine: vacuum only). What a
        system may know besides (its exact ln Z, the coordinates a generator
        proposes it in) it gives by overriding :class:`SystemDefaults`.
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
    """Problems with a system class's declarations (empty when it satisfies the protocol).

    A declaration that is a property (a molecule's CV, basin and metric names come
    from its config entry) is checked on the instance, when it is built."""
    problems = [f"{system_cls.__name__} lacks {name}" for name in System.__annotations__
                if not hasattr(system_cls, name)]  # fmt: skip
    if problems:
        return problems
    ref = system_cls.reference_settings
    for cls, base in ((system_cls, SystemDefaults), (ref, ReferenceSettings)):
        if not (isinstance(cls, type) and issubclass(cls, base)):
            problems.append(f"{cls.__name__} does not subclass cgflow.systems.base.{base.__name__}")
    if system_cls.reference_kind not in REFERENCE_KINDS:
        problems.append(f"reference_kind {system_cls.reference_kind!r} not in {REFERENCE_KINDS}")
    if system_cls.figure_kind not in FIGURE_KINDS:
        problems.append(f"figure_kind {system_cls.figure_kind!r} not in {sorted(FIGURE_KINDS)}")
    if not isinstance(system_cls.metric_names, property) and (
        system_cls.primary_metric not in system_cls.metric_names
    ):
        problems.append(f"primary_metric {system_cls.primary_metric!r} not in metric_names")
    return problems + _missing_methods(system_cls)


def _missing_methods(system_cls) -> list[str]:
    """The methods a system's declared capabilities need and it lacks."""
    needs = {
        "exact": ("sample_exact", "exact_profile"),
        "openmm": ("openmm_setup",),
    }.get(system_cls.reference_kind, ())
    declared = [
        (True, f"reference_kind {system_cls.reference_kind}", needs),
        (system_cls.jax_energy, "jax_energy", ("aa_energy_jax",)),
        (system_cls.has_topology, "has_topology", ("cg_topology",)),
    ]
    problems = [
        f"{what} needs {method}()"
        for on, what, methods in declared
        if on
        for method in methods
        if not callable(getattr(system_cls, method, None))
    ]
    if scored_exactly(system_cls) and not hasattr(system_cls, "basin_edges"):
        problems.append("figure_kind profile_1d needs basin_edges (the exact basin split)")
    return problems
