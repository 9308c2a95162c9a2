"""A study's settings for one system, as every step receives them.

Steps get either a validated config file plus a system name (by hand), or the
JSON that the workflow passes (``--settings``); both resolve to ``StudySettings``.

The workflow passes each step only the parts of the config that step reads
(``StudySettings.scoped``): Snakemake reruns a job when its parameters change, so a
step that saw the whole config would rerun (and overwrite its results) whenever
anything in it changed; adding a method must not resample the reference.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cgflow.config import load_config, system_entry, system_method_names, validate_config
from cgflow.systems import DECLARED_BLOCKS, get_system

SYSTEM_KEYS = ("type", "potential", "mappings", "reference")
"""Entry keys that every step sees: what the system is and how its reference is made.
The list of ``temperatures`` is not among them: a step gets its one temperature from
the ``temperature`` wildcard (and a model trained across temperatures its data sets
from the DAG), so adding a temperature to a system adds that temperature's jobs and
reruns none of the others."""

DECLARED_KEYS = DECLARED_BLOCKS
"""Entry keys of a molecule's declared maps, CVs and basins: every step sees them but
the reference sampling, which reads the structure and force field alone (so that
declaring another CV does not resample the reference)."""


@dataclass(frozen=True)
class StudySettings:
    """Settings of one system in a study.

    Attributes:
      system: the system's name in the config (the ``system`` wildcard).
      entry: its config block, defaults filled.
      methods: the ``methods`` block (hyperparameters by method).
      val_fraction: share of each run's frames held out for validation.
      scope: for settings cut down by ``scoped``, the entry keys kept beyond
        ``SYSTEM_KEYS``; None for a whole system.
    """

    system: str
    entry: dict
    methods: dict
    val_fraction: float
    scope: tuple[str, ...] | None = None

    @property
    def system_type(self) -> str:
        return self.entry.get("type", self.system)

    def build_system(self):
        return get_system(self.system_type, self.entry)

    def scoped(self, keys=(), methods=(), reference: bool = True,
               declared: bool = True) -> StudySettings:  # fmt: skip
        """These settings cut down to what one step reads.

        Args:
          keys: entry blocks the step reads beyond ``SYSTEM_KEYS`` (which define
            the system and its reference data, and are kept); ``block.key`` keeps
            one key of a block. The time steps (``simulation.dt``) are never kept: a
            step gets its one time step from the ``dt`` wildcard.
          methods: the methods whose settings the step reads.
          reference: keep the ``reference`` block; False for steps that use no
            reference data (a data-free generator's training), so that changing
            how the reference is sampled does not retrain them.
          declared: keep a molecule's ``DECLARED_KEYS``; False for the reference
            sampling.
        """
        unknown = set(methods) - set(self.methods)
        if unknown:
            raise ValueError(f"{self.system} does not run {sorted(unknown)}")
        kept = SYSTEM_KEYS if reference else tuple(k for k in SYSTEM_KEYS if k != "reference")
        kept += DECLARED_KEYS if declared else ()
        entry = {k: v for k, v in self.entry.items() if k in kept}
        for key in keys:
            block, _, sub = key.partition(".")
            if block not in self.entry:
                continue
            if sub:
                if sub in self.entry[block]:
                    entry.setdefault(block, {})[sub] = self.entry[block][sub]
            elif isinstance(self.entry[block], dict):
                entry[block] = dict(self.entry[block])
            else:
                entry[block] = self.entry[block]
        entry.get("simulation", {}).pop("dt", None)
        return StudySettings(
            self.system,
            entry,
            {m: self.methods[m] for m in methods},
            self.val_fraction,
            tuple(sorted(keys)),
        )

    def to_json(self) -> str:
        d = {
            "system": self.system,
            "entry": self.entry,
            "methods": self.methods,
            "val_fraction": self.val_fraction,
        }
        if self.scope is not None:
            d["scope"] = list(self.scope)
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_config(cls, config: dict, system: str) -> StudySettings:
        entry = system_entry(config, system)
        return cls(system, entry, method_settings(config, entry), config["val_fraction"])


def method_settings(config: dict, entry: dict) -> dict:
    """Settings of the methods a system runs (``system_method_names``): the study's,
    with the system's on top."""
    overrides = entry.get("methods") or {}
    return {
        m: {**(config["methods"][m] or {}), **(overrides.get(m) or {})}
        for m in system_method_names(config, entry)
    }


def resolve(config_path: str | None, system: str | None, settings_json: str | None,
            scope: tuple[str, ...] | None = None):  # fmt: skip
    """Build StudySettings from ``--config``/``--system`` or from ``--settings``.

    ``scope`` (entry blocks, as for ``StudySettings.scoped``, with no methods) cuts a
    config file down before it is checked, as the workflow does: a step that reads no
    method settings then needs no method's module (the OpenMM side has no JAX).
    """
    if settings_json:
        if config_path:
            raise ValueError("give either --settings or --config, not both")
        d = json.loads(settings_json)
        # Re-validate: a hand-written --settings gets the same checks as a config file
        # (those that need a block left out of scoped settings are skipped).
        config = {"systems": {d["system"]: d["entry"]}, "methods": d["methods"]}
        if d.get("val_fraction") is not None:  # else the schema's default
            config["val_fraction"] = d["val_fraction"]
        scope = d.get("scope")
        validate_config(config, partial=scope is not None)
        study = StudySettings.from_config(config, d["system"])
        # cut the schema defaults of left-out blocks away again: a step that reads
        # outside its scope fails loudly instead of reading a default
        return study if scope is None else study.scoped(scope, list(study.methods))
    if not (config_path and system):
        raise ValueError("need --config FILE and --system NAME (or --settings JSON)")
    config = load_config(Path(config_path))
    if scope is None:
        return StudySettings.from_config(validate_config(config), system)
    entry = system_entry(config, system)
    cut = StudySettings(system, entry, {}, config.get("val_fraction")).scoped(scope)
    return resolve(None, None, cut.to_json())
