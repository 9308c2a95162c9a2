"""The records that describe a trained model, as written to its ``model.json``.

``ModelDescription`` rebuilds an energy model (prior + network,
:func:`cgflow.models.energy.build_energy`); ``GeneratorDescription`` a data-free
generator (its ``generator`` block, :mod:`cgflow.methods.rkl`). Both are frozen:
a change is a new record (``replace``). ``from_json`` reads the files written before
the records existed (they hold the same keys), keeps keys it does not know under
``extra`` and writes them back, so nothing a newer or older cgflow wrote is lost;
``to_json`` leaves out what a model does not have (no ``box`` for a model in free
space), so a model.json reads as it did.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from cgflow.jsonrecord import missing_fields, record_json, split_known

MODEL_KEYS = ("kT", "n_beads", "dim", "prior", "network")
"""What every energy model's model.json holds."""


@dataclass(frozen=True)
class _Run:
    """What every trained model records about its run (``params_sha256``: the
    SHA-256 of the params.msgpack written with it, :mod:`cgflow.integrity`)."""

    kT: float
    system: str = ""
    mapping: str = ""
    method: str = ""
    n_train: int = 0
    seed: int = 0
    units: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    params_sha256: str | None = None
    extra: dict = field(default_factory=dict)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict:
        """The model.json dict: every field but ``extra`` (whose keys are merged in),
        less optional ones that are None."""
        return record_json(self)

    @classmethod
    def from_json(cls, d: dict, where: str = "model.json"):
        """The record of a model.json dict; ValueError naming ``where`` when it lacks
        what the record needs."""
        if not isinstance(d, dict):
            raise ValueError(f"{where}: not a cgflow model description (not a mapping)")
        missing = missing_fields(cls, d)
        if missing:
            raise ValueError(f"{where}: not a cgflow model description (lacks {missing})")
        known, extra = split_known(cls, d)
        known = {k: (tuple(v) if k in _TUPLES and v is not None else v)
                 for k, v in known.items()}  # fmt: skip
        return cls(**known, extra=extra)


_TUPLES = ("bead_masses", "species_names", "species_index", "box", "train_sets")


@dataclass(frozen=True)
class ModelDescription(_Run):
    """An energy model: enough to rebuild ``energy_fn(params, R)``.

    Attributes:
      kT: the thermal energy it is simulated at (for a temperature-aware model, the
        one it runs at unless told another).
      n_beads, dim: the CG configuration's shape.
      prior: the prior's description (:mod:`cgflow.models.prior`).
      network: the network's (``type`` mlp, schnet or none; its sizes; for a
        temperature-aware model a ``temperature`` block).
      bead_masses, species_names, species_index: the beads (from the CG map).
      box: the periodic box (nm), or None in free space.
      train_sets: for a model trained across temperatures, each training data set's
        kT and share of n_train.
      trained_at_kT: where a model that does not read kT was trained, when it is run
        at another (no transfer: the baseline of a held-out temperature).
      usable: False for a training that diverged (``unusable_reason`` says why).
      training: what the training recorded (steps, time, device, ...).
    """

    n_beads: int = 0
    dim: int = 0
    prior: dict = field(default_factory=dict)
    network: dict = field(default_factory=dict)
    bead_masses: tuple = ()
    species_names: tuple = ()
    species_index: tuple = ()
    box: tuple | None = None
    train_sets: tuple | None = None
    trained_at_kT: float | None = None
    usable: bool = True
    unusable_reason: str | None = None

    @classmethod
    def from_json(cls, d: dict, where: str = "model.json") -> ModelDescription:
        missing = [k for k in MODEL_KEYS if not isinstance(d, dict) or k not in d]
        if missing:
            raise ValueError(f"{where}: not a cgflow model description (lacks {missing})")
        return super().from_json(d, where)

    @property
    def network_type(self) -> str:
        return self.network["type"]

    @property
    def temperature_aware(self) -> bool:
        """Whether the model is a free energy A(R, kT) (its network reads kT)."""
        return "temperature" in self.network


@dataclass(frozen=True)
class GeneratorDescription(_Run):
    """A data-free generator: its ``generator`` block (type and sizes) rebuilds it,
    ``potential`` is the all-atom system it was trained against."""

    generator: dict = field(default_factory=dict)
    potential: dict = field(default_factory=dict)


def as_model(desc: ModelDescription | dict[str, Any]) -> ModelDescription:
    """A ModelDescription, from one or from its JSON dict."""
    return desc if isinstance(desc, ModelDescription) else ModelDescription.from_json(desc)
