"""The records a run's scores cross modules in: its identity (``RunId``) and its
``metrics.json`` (``MetricsRecord``), written by ``cgflow evaluate`` and read by
``cgflow aggregate``.

Both are frozen. ``from_json`` reads the files written before the records existed
(the same keys) and keeps keys it does not know under ``extra``, which ``to_json``
writes back; ``to_json`` gives the JSON form, so a metrics.json reads as it did.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from cgflow.jsonrecord import split_known

RUN_KEYS = ("system", "mapping", "method", "n_train", "seed", "dt", "temperature", "run_dir")
"""A run's identity (every metrics.json's ``run`` holds them)."""
RECORD_KEYS = ("run", "metrics", "primary_metric", "figure_kind")
"""What every metrics.json of cgflow evaluate holds."""


@dataclass(frozen=True)
class RunId:
    """Where a score sits in the study: system, CG map, method, training-set size,
    seed, CG time step (NaN for the reference; 0 for a generator, which has none),
    temperature and the folder of its samples."""

    system: str
    mapping: str
    method: str
    n_train: int
    seed: int
    dt: float
    temperature: float
    run_dir: str

    @classmethod
    def from_json(cls, d: dict, where: str = "metrics.json") -> RunId:
        missing = [k for k in RUN_KEYS if not isinstance(d, dict) or k not in d]
        if missing:
            raise ValueError(f"{where}: run identity lacks {missing}")
        dt = d["dt"]
        return cls(system=d["system"], mapping=d["mapping"], method=d["method"],
                   n_train=d["n_train"], seed=d["seed"],
                   dt=math.nan if dt is None else dt, temperature=d["temperature"],
                   run_dir=d["run_dir"])  # fmt: skip

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class MetricsRecord:
    """A run's ``metrics.json``.

    Attributes:
      run: its identity.
      metrics: each metric's point value (``stable``: 1, or 0 for a run that blew up).
      ci95: each metric's 95 % CI, where it has one.
      bootstrap: how the bootstrap grouped the frames, by side (``samples``,
        ``reference``), each side's CIs (``ci95_by_side``) and the noise-biased values
        before correction (``raw``).
      primary_metric, figure_kind, units: the system's.
      speed: how fast its frames were made (ns/day), where measured.
      unstable_reason: why a run that blew up did.
    """

    run: RunId
    metrics: dict
    primary_metric: str
    figure_kind: str
    ci95: dict = field(default_factory=dict)
    bootstrap: dict = field(default_factory=dict)
    units: dict | None = None
    speed: dict = field(default_factory=dict)
    unstable_reason: str | None = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_json(cls, d: dict, where: str = "metrics.json") -> MetricsRecord:
        """The record of a metrics.json dict (ValueError naming ``where`` when it
        is not one)."""
        missing = [k for k in RECORD_KEYS if not isinstance(d, dict) or k not in d]
        if missing:
            raise ValueError(f"{where}: not a metrics.json of cgflow evaluate (lacks {missing})")
        known, extra = split_known(cls, d)
        known = {k: v for k, v in known.items() if v is not None}
        known["run"] = RunId.from_json(d["run"], where)
        return cls(**known, extra=extra)

    def to_json(self) -> dict:
        out = dict(self.extra)
        for f in dataclasses.fields(self):
            if f.name != "extra":
                out[f.name] = getattr(self, f.name)
        out["run"] = self.run.to_json()
        return out


@dataclass(frozen=True)
class FailedRun:
    """A run whose scores could not be read: its ``metrics.json`` (or the bootstrap
    draws beside it) missing or damaged. The aggregate leaves it out of every table,
    lists it in ``failed_runs.csv`` and leaves the claims it may bear on undecided.

    Attributes:
      path: its metrics.json.
      reason: the error, naming the file.
      run: what the path says of the run (``names.run_of_scores``): system, mapping,
        temperature, method, and n_train, seed and dt where the path has them; {} for
        a path outside the workflow's layout.
    """

    path: str
    reason: str
    run: dict = field(default_factory=dict)

    def bears_on(self, system: str, methods: tuple) -> bool:
        """Whether a claim about ``system`` comparing ``methods`` may read this run:
        a run of one of them, or the system's reference, or a run the path does not
        name."""
        if not self.run:
            return True
        return self.run["system"] == system and self.run["method"] in (*methods, "reference")
