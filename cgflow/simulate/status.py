"""A sampling step's ``status.json``: what a CG simulation did
(``SimulationStatus``, written by ``cgflow simulate``) or what a generator's draws
measured (``GeneratorStatus``, written by ``cgflow generate``); ``cgflow evaluate``
reads either with :func:`read_status`.

Both are frozen. ``from_json`` reads the files written before the records existed
(the same keys) and keeps keys it does not know under ``extra``, which ``to_json``
writes back; fields that are None are left out of the file, except those every file
states (``ALWAYS``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import ClassVar

from cgflow.jsonrecord import missing_fields, record_json, split_known


@dataclass(frozen=True)
class Failure:
    """Where a CG simulation blew up: the step at which the check found it, the
    replicas that failed it and the first one's reason."""

    step: int
    replicas: tuple[int, ...]
    reason: str

    @classmethod
    def from_json(cls, d: dict) -> Failure:
        return cls(step=int(d["step"]), replicas=tuple(d["replicas"]), reason=d["reason"])

    def to_json(self) -> dict:
        return {"step": self.step, "replicas": list(self.replicas), "reason": self.reason}


@dataclass(frozen=True)
class Round:
    """One round of replicas of a run with a CI target: the replicas run so far and
    the CG side's CI half-width they gave (None for a round that blew up)."""

    replicas: int
    ci_halfwidth: float | None


def speed(steps: int, wall: float, dt: float, n_replicas: int) -> dict:
    """The speed fields of a status: ``steps`` per replica in ``wall`` seconds,
    ``n_replicas`` replicas at once, each step ``dt`` (the system's time unit)."""
    per_second = steps / wall if wall > 0 else math.nan
    per_day = per_second * dt * 86400.0
    return {"steps_done": int(steps), "wall_time_s": float(wall), "steps_per_second": per_second,
            "time_per_day_per_replica": per_day,
            "time_per_day_all_replicas": per_day * n_replicas}  # fmt: skip


@dataclass(frozen=True)
class SimulationStatus:
    """What a CG simulation did.

    Attributes:
      stable: whether every replica stayed healthy to the end.
      failure: where it blew up (None when stable).
      reason: why there was no simulation (a model whose training diverged).
      steps_done, wall_time_s, steps_per_second, time_per_day_per_replica,
        time_per_day_all_replicas: the work done and its speed (time per day in the
        system's time unit; ``ns_per_day_*`` the same in ns where that unit is ps).
      n_steps_requested, equilibration_steps_done, n_frames_saved: per replica.
      settings: the integrator's and the run's settings; kT: the temperature.
      resumed_at_step: the step a checkpoint resumed it at (0: a fresh start).
      neighbor_list: the lists' cutoff, skin, capacity and reallocations.
      ci_halfwidth: the CG side's CI half-width after this round (one round).
      rounds: each round of a run with a CI target.
      time_unit, frame_order: how to read samples.npz.
      model, device: what ran it; samples_write_id: the samples.npz it wrote.
    """

    ALWAYS: ClassVar[tuple[str, ...]] = ("stable", "failure")
    generator: ClassVar[bool] = False

    stable: bool = True
    failure: Failure | None = None
    reason: str | None = None
    steps_done: int = 0
    wall_time_s: float = 0.0
    steps_per_second: float | None = None
    time_per_day_per_replica: float | None = None
    time_per_day_all_replicas: float | None = None
    ns_per_day_per_replica: float | None = None
    ns_per_day_all_replicas: float | None = None
    n_steps_requested: int | None = None
    equilibration_steps_done: int | None = None
    n_frames_saved: int | None = None
    settings: dict | None = None
    kT: float | None = None
    resumed_at_step: int | None = None
    neighbor_list: dict | None = None
    ci_halfwidth: float | None = None
    rounds: tuple[Round, ...] | None = None
    time_unit: str | None = None
    frame_order: str | None = None
    model: str | None = None
    device: dict | None = None
    samples_write_id: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def why_unstable(self) -> str | None:
        """Why the run has no usable samples (None when stable)."""
        if self.stable:
            return None
        return self.reason or (self.failure.reason if self.failure else "blew up")

    def replace(self, **changes) -> SimulationStatus:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_json(cls, d: dict, where: str = "status.json") -> SimulationStatus:
        known, extra = split_known(cls, d)
        if known.get("failure") is not None:
            known["failure"] = Failure.from_json(known["failure"])
        if known.get("rounds") is not None:
            known["rounds"] = tuple(Round(**r) for r in known["rounds"])
        return cls(**known, extra=extra)

    def to_json(self) -> dict:
        return record_json(self, self.ALWAYS, {
            "failure": Failure.to_json,
            "rounds": lambda rs: [dataclasses.asdict(r) for r in rs],
        })  # fmt: skip


@dataclass(frozen=True)
class GeneratorStatus:
    """What a data-free generator's draws measured.

    Attributes:
      stable: whether every draw was finite; reason: why not.
      n_samples, wall_time_s: the draws and the time they took.
      bound, bound_se: the variational bound L over the draws, its standard error.
      log_z_estimate: the importance-sampling estimate of ln Z.
      ess_fraction: the importance weights' effective sample size over n_samples.
      energy_evaluations: the training's cost in force-field evaluations.
      exact_log_z, gap, gap_ci95: where ln Z is known, it and L + ln Z with its CI.
      basin_fractions, basin_fractions_reweighted: the draws' basin occupancies, as
        drawn and importance-reweighted.
      model, device: what drew them; samples_write_id: the samples.npz written.
    """

    ALWAYS: ClassVar[tuple[str, ...]] = ("stable", "reason")
    generator: ClassVar[bool] = True

    stable: bool
    n_samples: int
    bound: float
    bound_se: float
    log_z_estimate: float
    ess_fraction: float
    reason: str | None = None
    wall_time_s: float = 0.0
    energy_evaluations: int | None = None
    exact_log_z: float | None = None
    gap: float | None = None
    gap_ci95: tuple[float, float] | None = None
    basin_fractions: dict = field(default_factory=dict)
    basin_fractions_reweighted: dict = field(default_factory=dict)
    model: str | None = None
    device: dict | None = None
    samples_write_id: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def why_unstable(self) -> str | None:
        return None if self.stable else (self.reason or "non-finite draws")

    def replace(self, **changes) -> GeneratorStatus:
        return dataclasses.replace(self, **changes)

    def metrics(self) -> tuple[dict, dict]:
        """What the draws measured, as metrics and their CIs: ``ess_fraction`` (low
        means the weights cannot repair the samples, but a high one can hide a missing
        mode), the gap L + ln Z to the exact ln Z (``bound_gap``) and the basin
        occupancies as drawn (``p_<basin>``) and reweighted (``p_<basin>_reweighted``).
        Empty for draws that were not finite."""
        if not self.stable:
            return {}, {}
        metrics, cis = {"ess_fraction": self.ess_fraction}, {}
        if self.gap is not None:
            metrics["bound_gap"] = self.gap
            cis["bound_gap"] = tuple(self.gap_ci95)
        for suffix, fractions in (("", self.basin_fractions),
                                  ("_reweighted", self.basin_fractions_reweighted)):  # fmt: skip
            for basin, fraction in fractions.items():
                metrics[f"p_{basin}{suffix}"] = fraction
        return metrics, cis

    @classmethod
    def from_json(cls, d: dict, where: str = "status.json") -> GeneratorStatus:
        known, extra = split_known(cls, d)
        extra.pop("generator", None)
        missing = missing_fields(cls, known)
        if missing:
            raise ValueError(f"{where}: a generator's status without {missing}")
        if known.get("gap_ci95") is not None:
            known["gap_ci95"] = tuple(known["gap_ci95"])
        return cls(**known, extra=extra)

    def to_json(self) -> dict:
        out = record_json(self, self.ALWAYS)
        out["generator"] = True
        return out


def read_status(d, where: str = "status.json") -> SimulationStatus | GeneratorStatus:
    """The record of a status.json's dict: a generator's where it says so, else a
    simulation's (ValueError naming ``where`` when it is neither)."""
    if not isinstance(d, dict) or not isinstance(d.get("stable"), bool):
        raise ValueError(f"{where}: not a status.json of cgflow simulate or generate "
                         "(no 'stable' true or false)")  # fmt: skip
    if d.get("generator"):
        return GeneratorStatus.from_json(d, where)
    return SimulationStatus.from_json(d, where)
