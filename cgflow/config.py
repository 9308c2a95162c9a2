"""Study configuration: load, check against the JSON schema, fill defaults, check meaning.

The schema (``workflow/schemas/config.schema.yaml``) describes the study's shape; the
blocks that belong to a method or to the CG simulator are generated from their settings
dataclasses (:mod:`cgflow.settings`), and the method names from the registry
(:mod:`cgflow.methods`), so no default or bound is written twice. Every problem found
is reported at once, each line naming the field
(``systems.double_well.simulation.dt[1]``) and what is allowed, before any step of the
study starts.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import shutil
from pathlib import Path

import jsonschema
import yaml

from cgflow import methods
from cgflow.analysis.claims import registry as claim_kinds
from cgflow.analysis.claims.core import Claim
from cgflow.runtime import total_memory
from cgflow.settings import json_schema
from cgflow.simulate.settings import (
    IntegratorSettings,
    RunSettings,
    network_width,
    sampling_memory,
)
from cgflow.systems import (
    DECLARED_BLOCKS,
    SYSTEMS,
    evaluation_settings,
    get_map,
    get_system,
    reference_settings,
    test_reference_settings,
)

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """The study configuration is invalid; the message lists every problem."""


def _strict_integer(checker, instance) -> bool:
    """JSON Schema's ``integer`` admits 1.0; cgflow's counts, sizes and seeds do not
    (``n_train: [100.0]`` would name its jobs ``n100.0``)."""
    return isinstance(instance, int) and not isinstance(instance, bool)


@functools.cache
def _with_defaults(cls):
    """``cls`` filling in defaults as it validates, with strict integers."""
    validate_properties = cls.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    checker = cls.TYPE_CHECKER.redefine("integer", _strict_integer)
    return jsonschema.validators.extend(cls, {"properties": set_defaults}, type_checker=checker)


def _non_finite(value, path=()):
    """(path, value) of every NaN or infinite number in a config (YAML's .nan, .inf):
    no setting of cgflow takes one, and the schema's bounds let NaN through."""
    if isinstance(value, float) and not math.isfinite(value):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _non_finite(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _non_finite(v, (*path, i))


def _where(path) -> str:
    out = "config"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key written twice in one mapping (YAML keeps the
    last silently); merge keys (``<<: *anchor``) may be overridden as usual."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice (also on line {seen[key] + 1})",
                    key_node.start_mark,
                )  # fmt: skip
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep)


def load_config(path: str | Path) -> dict:
    """Read a config file (YAML): the mapping it holds. A duplicate key, a YAML error
    (with its line and column) or another top level raises ConfigError."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found")
    try:
        config = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"config file {path}: expected a mapping at top level")
    return config


@functools.lru_cache(maxsize=4)
def _parsed_schema(path: str, mtime_ns: int) -> dict:
    """The schema file's YAML, parsed once per process (and again if the file
    changes): the Snakefile, a Slurm job's own Snakemake and check-config each
    validate a config, and pure-Python YAML parsing was most of that."""
    return yaml.safe_load(Path(path).read_text())


def load_schema(schema_path: str | Path = SCHEMA_PATH, method_names=None) -> dict:
    """The config schema with its generated blocks filled in.

    Args:
      schema_path: the schema file.
      method_names: methods whose settings blocks to generate (their modules are
        imported); None for every registered method.
    """
    path = Path(schema_path)
    schema = copy.deepcopy(_parsed_schema(str(path), path.stat().st_mtime_ns))
    kind = schema["properties"]["claims"]["items"]["properties"]["kind"]
    kind["enum"] = list(claim_kinds.KINDS)
    kind["description"] = "; ".join(k.doc for k in claim_kinds.KINDS.values())
    block = schema["properties"]["methods"]
    block["propertyNames"] = {"enum": sorted(methods.REGISTRY)}
    names = sorted(methods.REGISTRY) if method_names is None else sorted(method_names)
    for name in names:
        method = methods.get(name)
        sub = json_schema(method.settings_class)
        sub["description"] = method.doc
        block.setdefault("properties", {})[name] = sub
    system = schema["properties"]["systems"]["additionalProperties"]["properties"]
    sim = system["simulation"]
    run = json_schema(RunSettings)
    integrator = json_schema(IntegratorSettings)
    dt = integrator["properties"].pop("dt")
    sim["properties"] = {
        "dt": {"type": "array", "minItems": 1, "uniqueItems": True, "items": dt,
               "description": "CG time steps, in the system's time unit"},
        **integrator["properties"],
        **run["properties"],
    }  # fmt: skip
    sim["required"] = ["dt", *run.get("required", [])]
    return schema


def validate_config(
    config: dict,
    schema_path: str | Path = SCHEMA_PATH,
    partial: bool = False,
    method_blocks: bool = True,
) -> dict:
    """Check ``config`` in place against the schema and the systems' rules; fill defaults.

    Args:
      config: the study config.
      schema_path: its JSON schema.
      partial: ``config`` holds the settings one step reads (``StudySettings.scoped``):
        it may name no methods, blocks may lack keys the step does not read, and
        checks between blocks it may lack are skipped.
      method_blocks: check each method's block against its settings class (which
        imports the method's module, and so JAX). The Snakemake process of a
        cluster job turns it off: the main process has checked the same config,
        and the job's own ``cgflow`` step checks its method's settings again.

    Returns:
      the same dict, with defaults filled in.

    Raises:
      ConfigError: listing every problem, each with the field it concerns.
    """
    configured = config.get("methods") if isinstance(config.get("methods"), dict) else {}
    known = [m for m in configured if m in methods.REGISTRY] if method_blocks else []
    schema = load_schema(schema_path, known)
    if partial:
        del schema["properties"]["methods"]["minProperties"]
        entry = schema["properties"]["systems"]["additionalProperties"]
        entry["required"] = [k for k in entry["required"] if k != "temperatures"]
        system = entry["properties"]
        del system["simulation"]["required"]
    validator = _with_defaults(jsonschema.Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    problems = [f"{_where(e.absolute_path)}: {_message(e)}" for e in errors]
    problems += [f"{_where(p)}: {v} is not a finite number" for p, v in _non_finite(config)]
    if not problems:
        problems += _slice(config)
    if not problems:
        if method_blocks:
            problems += _study_method_problems(config)
        for name, entry in config["systems"].items():
            problems += _system_problems(config, name, entry, partial, method_blocks)
        problems += _claim_problems(config)
    if problems:
        raise ConfigError("invalid config:\n  - " + "\n  - ".join(problems))
    return config


def _slice(config: dict) -> list[str]:
    """Cut ``config`` in place to its ``only_systems`` and the claims about them."""
    only = config.get("only_systems")
    if only is None:
        return []
    unknown = [name for name in only if name not in config["systems"]]
    if unknown:
        return [f"config.only_systems: {unknown} not in systems ({sorted(config['systems'])})"]
    config["systems"] = {k: v for k, v in config["systems"].items() if k in only}
    if "claims" in config:
        config["claims"] = [c for c in config["claims"] if c.get("system") in only]
    return []


def _message(err) -> str:
    if err.validator == "enum":
        return f"{err.instance!r} is not allowed; allowed: {err.validator_value}"
    return err.message


def system_method_names(config: dict, entry: dict) -> list[str]:
    """The methods a system runs: those its own ``methods`` block names (each one of
    the study's), or, without one, all of the study's."""
    own = entry.get("methods")
    return list(own) if own is not None else list(config["methods"])


def _duplicate_claims(claims: list[Claim]) -> list[str]:
    """Claims are told apart by name (claims.csv, compare-claims), and one stated
    twice is one claim."""
    problems, names, seen = [], {}, {}
    for k, claim in enumerate(claims):
        name, key = claim.name, repr(dataclasses.replace(claim, name=""))
        if name in names:
            problems.append(f"config.claims[{k}].name: {name!r} is also claims[{names[name]}]'s")
        elif key in seen:
            problems.append(f"config.claims[{k}]: the same claim as claims[{seen[key]}] "
                            "under another name")  # fmt: skip
        names.setdefault(name, k)
        seen.setdefault(key, k)
    return problems


def _claim_problems(config: dict) -> list[str]:
    """Claims must name systems of the config and methods those systems run."""
    problems = []
    claims = [Claim.of(c) for c in config.get("claims", [])]
    for k, claim in enumerate(claims):
        where = f"config.claims[{k}]"
        entry = config["systems"].get(claim.system)
        if entry is None:
            problems.append(f"{where}.system: {claim.system!r} is not a system of this config")
            continue
        own = entry.get("methods")
        runs = (
            (list(own) if own is not None else list(config["methods"]))
            if "n_train" in entry
            else []
        )
        problems += claim_kinds.get(claim.kind).problems(where, claim)
        for key, method in (("method", claim.method), ("baseline", claim.baseline)):
            if method is not None and method not in runs and method != "reference":
                problems.append(
                    f"{where}.{key}: {claim.system} runs no method {method!r} "
                    f"(it runs {sorted(runs)}, and 'reference' is the noise floor)"
                )
        if claim.method == claim.baseline:
            problems.append(f"{where}: method and baseline are both {claim.method!r}")
        t, temps = claim.temperature, entry.get("temperatures") or []
        if not isinstance(t, str) and not any(math.isclose(t, u) for u in temps):
            problems.append(f"{where}.temperature: {t} is not one of {claim.system}'s "
                            f"temperatures {temps}")  # fmt: skip
    problems += _duplicate_claims(claims)
    named = {claim.system for claim in claims}
    for name, entry in config["systems"].items():
        if entry.get("runs") == "claimed" and name not in named:
            problems.append(f"config.systems.{name}.runs: claimed, but no claim names {name}")
    return problems


def _system_problems(
    config: dict, name: str, entry: dict, partial: bool, method_blocks: bool = True
) -> list[str]:
    """Problems of one system entry that the schema cannot see."""
    where = f"config.systems.{name}"
    stype = entry.get("type", name)
    if stype not in SYSTEMS:
        return [
            f"{where}: unknown system {stype!r}; allowed: {sorted(SYSTEMS)}"
            " (a system of another name needs 'type:' set to one of them)"
        ]
    blocks = SYSTEMS[stype].entry_blocks
    stray = [b for b in DECLARED_BLOCKS if b in entry and b not in blocks]
    if stray:
        owners = sorted(t for t, cls in SYSTEMS.items() if set(stray) <= set(cls.entry_blocks))
        return [f"{where}: {stray} are declared by a system of type {' or '.join(owners)}, "
                f"not {stype}"]  # fmt: skip
    try:
        system = get_system(stype, entry)
    except ValueError as err:
        block = str(err).split(":", 1)[0].split(".", 1)[0]
        return [
            f"{where}.{err}" if block in (*blocks, "potential") else f"{where}.potential: {err}"
        ]
    problems = (
        []
        if partial
        else [f"{where}.{p}" for p in system.declaration_problems(entry["mappings"], method_blocks)]
    )
    # a step that samples the reference gets no declared maps (study.DECLARED_KEYS)
    unmapped = partial and "cg_maps" in blocks and "cg_maps" not in entry
    for i, m in enumerate([] if unmapped else entry["mappings"]):
        try:
            get_map(system, m)
        except (ValueError, FileNotFoundError) as err:
            problems.append(f"{where}.mappings[{i}]: {err}")
    for block, build in (
        ("reference", reference_settings),
        ("test_reference", test_reference_settings),
        ("evaluation", evaluation_settings),
    ):
        if block == "test_reference" and any(p.startswith(f"{where}.reference:") for p in problems):
            continue  # built on the reference, whose problem is reported
        try:
            built = build(system, entry)
        except ValueError as err:
            problems.append(f"{where}.{block}: {err}")
            continue
        if block == "reference":
            problems += _size_problems(where, entry, system.n_reference_frames(built),
                                       config.get("val_fraction", 0.0))  # fmt: skip
    if entry.get("prior_cv_dihedrals") == "omit" and (
        entry.get("prior") != "bonded" or not callable(getattr(system, "cv_dihedrals", None))
    ):
        problems.append(
            f"{where}.prior_cv_dihedrals: omit needs a bonded prior on a system whose "
            "collective variables are dihedrals"
        )
    problems += _method_problems(config, where, entry, partial, method_blocks)
    problems += _data_free_problems(config, where, entry, system)
    problems += _periodic_problems(where, entry, system)
    problems += _simulation_problems(where, entry, partial)
    if not problems and not partial:
        problems += _resource_problems(config, where, entry, system, method_blocks)
    return problems


def _resource_problems(config: dict, where: str, entry: dict, system,
                       method_blocks: bool) -> list[str]:  # fmt: skip
    """A CG run, or a training that samples (RE), whose estimated peak memory
    (``sampling_memory``, ``sampling_bytes``: the estimates the steps check at run
    time) exceeds what a job may use (``max_job_memory_gb``, else this machine's
    total memory), or whose samples would not fit on the whole disk of results/."""
    sim = entry.get("simulation")
    if "n_train" not in entry or not sim:
        return []
    limit_gb = config.get("max_job_memory_gb")
    if limit_gb is None:
        total = total_memory()
        if total is None:
            return []
        limit, source = total, "this machine's total memory; set max_job_memory_gb"
    else:
        limit, source = limit_gb * 1e9, "max_job_memory_gb"
    run = RunSettings.from_dict(
        {k: v for k, v in sim.items() if k in RunSettings.__dataclass_fields__}
    )
    n_beads = max(get_map(system, m).n_beads for m in entry["mappings"])
    width = network_width(entry.get("network") or {})
    most, n_saved = run.n_replicas * run.n_rounds, run.n_steps // run.save_every
    problems = []
    need = sampling_memory(most, n_saved, n_beads, system.dim, width)
    if need > limit:
        problems.append(
            f"{where}.simulation: a CG run of {most} replicas x {n_saved} saved frames of "
            f"{n_beads} beads needs about {need / 1e9:.3g} GB of memory; a job may use "
            f"{limit / 1e9:.3g} GB ({source}): make the run smaller"
        )
    disk = 2 * 4 * most * n_saved * n_beads * system.dim  # samples and trajectory
    whole = shutil.disk_usage(_existing_parent(Path("results"))).total
    if disk > whole:  # the free space where it writes is the step's own check
        problems.append(
            f"{where}.simulation: a CG run of {most} replicas x {n_saved} saved frames "
            f"writes about {disk / 1e9:.3g} GB, more than the whole disk of results/ "
            f"({whole / 1e9:.3g} GB): make the run smaller"
        )
    if method_blocks:
        for m in system_method_names(config, entry):
            values = {**(config["methods"].get(m) or {}), **(entry.get("methods", {}).get(m) or {})}
            need = methods.get(m).settings(values).sampling_bytes(n_beads, system.dim, width)
            if need and need > limit:
                problems.append(
                    f"{where}.methods.{m}: its training samples need about {need / 1e9:.3g} "
                    f"GB of memory; a job may use {limit / 1e9:.3g} GB ({source}): make "
                    "n_replicas or sample_steps smaller"
                )
    return problems


def _existing_parent(path: Path) -> Path:
    """``path``, or its nearest parent that exists (results/ may not yet)."""
    path = path.absolute()
    while not path.exists():
        path = path.parent
    return path


def _periodic_problems(where: str, entry: dict, system) -> list[str]:
    """A system in a periodic box takes a prior and a network that work there, with
    ranges below half the box."""
    if not system.periodic:
        return []
    problems = []
    trains = "n_train" in entry  # else only its reference: no prior, no network
    if trains and entry.get("prior") == "harmonic_position":
        problems.append(
            f"{where}.prior: harmonic_position is not defined in a periodic box; use "
            "pair_repulsion (or bonded for molecules)"
        )
    net = entry.get("network") or {}
    if trains and net.get("type", "mlp") == "mlp":
        problems.append(
            f"{where}.network.type: the mlp reads free-space coordinates; a periodic "
            "system takes schnet"
        )
    half = 0.5 * getattr(system, "box_nm", float("inf"))
    ranges = {
        "network.cutoff": net.get("cutoff"),
        "evaluation.r_max_nm": (entry.get("evaluation") or {}).get("r_max_nm"),
    }
    for key, value in ranges.items():
        if value is not None and value >= half:
            problems.append(
                f"{where}.{key}: {value} must be below half the box edge ({half:.3f} nm)"
            )
    return problems


def _data_free_problems(config: dict, where: str, entry: dict, system) -> list[str]:
    """Data-free methods query the all-atom energy in JAX: the system must give it
    (a system without n_train runs no methods)."""
    if "n_train" not in entry:
        return []
    return [
        f"{where}: {m} needs the all-atom energy in JAX, which {system.type} does not "
        "provide with these settings (double_well always; alanine_dipeptide in vacuum)"
        for m in system_method_names(config, entry)
        if m in methods.REGISTRY and methods.get(m).data == "none" and not system.jax_energy
    ]


def _size_problems(where: str, entry: dict, n_ref: int, val_fraction: float) -> list[str]:
    """Each n_train fits in the reference and leaves the prior fit at least 2
    training frames after the validation split (as ``split_indices`` makes it)."""
    problems = []
    for i, n in enumerate(entry.get("n_train", [])):
        if n > n_ref:
            problems.append(f"{where}.n_train[{i}]: {n} exceeds the {n_ref} reference frames")
        n_val = min(math.ceil(val_fraction * n) if val_fraction > 0 else 0, max(n - 1, 0))
        if n - n_val < 2:
            problems.append(
                f"{where}.n_train[{i}]: {n} frames leave {n - n_val} for training after "
                f"the validation split (val_fraction {val_fraction:g}); the prior fit "
                "needs at least 2"
            )
    return problems


def _study_method_problems(config: dict) -> list[str]:
    """The study's method blocks build their settings (the schema's ``integer`` lets
    1.0 through, and cross-field rules are the settings classes' own)."""
    problems = []
    for m, block in config["methods"].items():
        if m in methods.REGISTRY:
            try:
                methods.get(m).settings(block)
            except (TypeError, ValueError) as err:
                problems.append(f"config.{err}" if str(err).startswith("methods.") else
                                f"config.methods.{m}: {err}")  # fmt: skip
    return problems


def _method_problems(
    config: dict, where: str, entry: dict, partial: bool, method_blocks: bool = True
) -> list[str]:
    """The system's method overrides build valid settings; start models are run too."""
    problems = []
    for m, block in entry.get("methods", {}).items():
        if m not in config["methods"]:
            problems.append(
                f"{where}.methods.{m}: the study does not run {m!r}; "
                f"it runs {sorted(config['methods'])}"
            )
            continue
        if not method_blocks:
            continue
        try:
            methods.get(m).settings({**(config["methods"][m] or {}), **(block or {})})
        except (TypeError, ValueError) as err:
            problems.append(f"{where}.methods.{m}: {err}")
    runs = set(entry["methods"]) if "methods" in entry else set(config["methods"])
    for m in sorted(runs):
        start = methods.get(m).start_from if m in methods.REGISTRY else None
        if start and start not in runs and not partial:
            problems.append(
                f"{where}: {m} starts from the {start} model, so it needs {start} as well"
            )
    problems += _temperature_problems(where, entry, runs, partial)
    return problems


def training_temperatures(entry: dict) -> list[float]:
    """The temperatures methods trained across temperatures train on."""
    held = [float(t) for t in entry.get("held_out_temperatures") or []]
    return [t for t in entry["temperatures"] if not any(math.isclose(t, h) for h in held)]


def _temperature_problems(where: str, entry: dict, runs: set, partial: bool) -> list[str]:
    """Held-out temperatures are temperatures of the system; methods trained across
    temperatures have at least two to train on; fm_nearest has something to do."""
    if partial or "temperatures" not in entry or "n_train" not in entry:
        return []
    problems = []
    temps = [float(t) for t in entry["temperatures"]]
    held = entry.get("held_out_temperatures") or []
    for i, t in enumerate(held):
        if not any(math.isclose(t, u) for u in temps):
            problems.append(
                f"{where}.held_out_temperatures[{i}]: {t} is not one of temperatures {temps}"
            )
    for m in sorted(runs):
        method = methods.REGISTRY.get(m)
        if method is not None and method.temperatures == "training":
            problems += _across_problems(where, entry, m)
        if method is not None and method.temperatures == "nearest":
            if not held:
                problems.append(f"{where}: {m} runs at held-out temperatures; there are none")
            if method.model_of not in runs:
                problems.append(f"{where}: {m} uses the {method.model_of} model, so it needs "
                                f"{method.model_of} as well")  # fmt: skip
    return problems


def _across_problems(where: str, entry: dict, m: str) -> list[str]:
    """A method trained across temperatures has two or more, and 2 frames each."""
    training = training_temperatures(entry)
    if len(training) < 2:
        return [
            f"{where}: {m} trains one model across temperatures and needs at least two "
            f"training temperatures (temperatures less held_out_temperatures); it has {training}"
        ]
    return [
        f"{where}.n_train[{i}]: {m} splits {n} frames over {len(training)} temperatures, "
        "fewer than 2 each"
        for i, n in enumerate(entry.get("n_train", []))
        if n // len(training) < 2
    ]


def _simulation_problems(where: str, entry: dict, partial: bool) -> list[str]:
    if "n_train" in entry and "simulation" not in entry and not partial:
        return [f"{where}: 'simulation' is required when 'n_train' is given"]
    sim = entry.get("simulation")
    problems = []
    for key, values in (("simulation.dt", (sim or {}).get("dt", [])),
                        ("temperatures", entry.get("temperatures") or [])):  # fmt: skip
        paths = [f"{x:g}" for x in values if isinstance(x, (int, float))]
        if len(set(paths)) < len(paths):
            problems.append(
                f"{where}.{key}: {values} holds values that name the same job "
                f"({paths}); give distinct values"
            )
    if not sim or "n_steps" not in sim:
        return problems
    try:
        RunSettings.from_dict(
            {k: v for k, v in sim.items() if k in RunSettings.__dataclass_fields__}
        )
    except ValueError as err:
        return [*problems, f"{where}.{err}"]
    return problems


def system_entry(config: dict, system: str) -> dict:
    """The config block of ``system``, with a clear error for an unknown name."""
    if system not in config["systems"]:
        raise ConfigError(
            f"system {system!r} is not in config.systems ({sorted(config['systems'])})"
        )
    return config["systems"][system]
