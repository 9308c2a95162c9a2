"""Study configuration: load, check against the JSON schema, fill defaults, check meaning.

Every problem found is reported at once, each line naming the field
(``systems.double_well.simulation.dt[1]``) and what is allowed, before any
step of the study starts.
"""

from __future__ import annotations

import inspect
from dataclasses import fields
from pathlib import Path

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """The study configuration is invalid; the message lists every problem."""


def _with_defaults(cls):
    validate_properties = cls.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = _copy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(cls, {"properties": set_defaults})


def _copy(value):
    return yaml.safe_load(yaml.safe_dump(value))


def _where(path) -> str:
    out = "config"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def load_config(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found")
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"config file {path}: expected a mapping at top level")
    return config


def validate_config(
    config: dict, schema_path: str | Path = SCHEMA_PATH, partial: bool = False
) -> dict:
    """Check ``config`` in place against the schema and the systems' rules; fill defaults.

    Args:
      config: the study config.
      schema_path: its JSON schema.
      partial: ``config`` holds the settings one step reads (``StudySettings.scoped``):
        it may name no methods, and checks between blocks it may lack are skipped.

    Returns:
      the same dict, with defaults filled in.

    Raises:
      ConfigError: listing every problem, each with the field it concerns.
    """
    schema = yaml.safe_load(Path(schema_path).read_text())
    if partial:
        del schema["properties"]["methods"]["minProperties"]
    validator = _with_defaults(jsonschema.Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    problems = [f"{_where(e.absolute_path)}: {_message(e)}" for e in errors]
    if not problems:
        problems = _semantic_problems(config, partial)
    if problems:
        raise ConfigError("invalid config:\n  - " + "\n  - ".join(problems))
    return config


def _message(err) -> str:
    if err.validator == "enum":
        return f"{err.instance!r} is not allowed; allowed: {err.validator_value}"
    return err.message


def _semantic_problems(config: dict, partial: bool = False) -> list[str]:
    from cgflow.systems import SYSTEM_TYPES, get_map, get_system

    problems = []
    for name, entry in config["systems"].items():
        where = f"config.systems.{name}"
        stype = entry.get("type", name)
        if stype not in SYSTEM_TYPES:
            problems.append(
                f"{where}: unknown system {stype!r}; allowed: {sorted(SYSTEM_TYPES)}"
                " (a system of another name needs 'type:' set to one of them)"
            )
            continue
        try:
            system = get_system(stype, entry)
        except ValueError as err:
            problems.append(f"{where}.potential: {err}")
            continue
        for i, m in enumerate(entry["mappings"]):
            try:
                get_map(system, m)
            except (ValueError, FileNotFoundError) as err:
                problems.append(f"{where}.mappings[{i}]: {err}")
        try:
            n_ref = system.n_reference_frames(entry)
        except ValueError as err:
            problems.append(f"{where}.reference: {err}")
            continue
        for i, n in enumerate(entry.get("n_train", [])):
            if n > n_ref:
                problems.append(f"{where}.n_train[{i}]: {n} exceeds the {n_ref} reference frames")
            if n < 2:
                problems.append(
                    f"{where}.n_train[{i}]: need at least 2 frames (training plus validation)"
                )
        for m, block in entry.get("methods", {}).items():
            if m not in config["methods"]:
                problems.append(
                    f"{where}.methods.{m}: the study does not run {m!r}; "
                    f"it runs {sorted(config['methods'])}"
                )
            elif m == "fm":
                from cgflow.method_settings import FMSettings

                try:
                    FMSettings.from_dict({**(config["methods"]["fm"] or {}), **block})
                except (TypeError, ValueError) as err:
                    problems.append(f"{where}.methods.fm: {err}")
            elif m in ("re", "fm_re"):
                from cgflow.method_settings import RESettings

                try:
                    RESettings.from_dict({**(config["methods"][m] or {}), **block}, m)
                except (TypeError, ValueError) as err:
                    problems.append(f"{where}.methods.{m}: {err}")
            elif block:
                problems.append(f"{where}.methods.{m}: takes no settings")
        runs = set(entry["methods"]) if "methods" in entry else set(config["methods"])
        if "fm_re" in runs and "fm" not in runs and not partial:
            problems.append(f"{where}: fm_re starts from the fm model, so it needs fm as well")
        allowed = _evaluation_keys(system)
        unknown = set(entry["evaluation"]) - allowed
        if unknown:
            problems.append(
                f"{where}.evaluation: unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}"
            )
        if "n_train" in entry and "simulation" not in entry:
            problems.append(f"{where}: 'simulation' is required when 'n_train' is given")
        sim = entry.get("simulation")
        if sim and sim["save_every"] > sim["n_steps"]:
            problems.append(
                f"{where}.simulation.save_every: {sim['save_every']} exceeds "
                f"n_steps ({sim['n_steps']}); no frame would be saved"
            )
    return problems


def _evaluation_keys(system) -> set[str]:
    params = inspect.signature(system.evaluate).parameters
    return set(params) - {"self", "cg_positions", "positions", "kT", "reference", "mapping"}


def require_positive(settings, block: str, names) -> None:
    """Raise ValueError naming ``block.name`` unless each named field is a number > 0."""
    for name in names:
        value = getattr(settings, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ValueError(f"{block}.{name} must be a number > 0, got {value!r}")


def require_fraction(settings, block: str, names, closed: bool = True) -> None:
    """Raise ValueError naming ``block.name`` unless each named field is a number in
    [0, 1] (``closed``) or [0, 1)."""
    for name in names:
        value = getattr(settings, name)
        ok = not isinstance(value, bool) and isinstance(value, int | float)
        ok = ok and (0 <= value <= 1 if closed else 0 <= value < 1)
        if not ok:
            raise ValueError(
                f"{block}.{name} must be in [0, {'1]' if closed else '1)'}, got {value!r}"
            )


def settings_from(cls, values: dict | None, owner: str, block: str):
    """Build dataclass ``cls`` from a config block, rejecting keys it does not have.

    Raises:
      ValueError: ``<owner>: unknown <block> keys [...]; allowed: [...]``.
    """
    values = dict(values or {})
    allowed = {f.name for f in fields(cls)}
    unknown = set(values) - allowed
    if unknown:
        raise ValueError(
            f"{owner}: unknown {block} keys {sorted(unknown)}; allowed: {sorted(allowed)}"
        )
    return cls(**values)


def system_entry(config: dict, system: str) -> dict:
    """The config block of ``system``, with a clear error for an unknown name."""
    if system not in config["systems"]:
        raise ConfigError(
            f"system {system!r} is not in config.systems ({sorted(config['systems'])})"
        )
    return config["systems"][system]
