"""Reference pages of the documentation, generated from the code.

``config_markdown`` walks the config schema (with the method and simulation
blocks generated from their settings dataclasses) and each system type's
settings classes; ``paper_claims_markdown`` lists the claims each shipped tier
states about a paper, with the latest published verdicts. docs/conf.py writes
them (and the command-line reference, from the argument parser) before Sphinx
reads the sources, so the pages cannot drift from the code.
``cgflow schema --markdown`` prints the first.
"""

from __future__ import annotations

import json

from cgflow.analysis.claims.core import Claim
from cgflow.config import load_schema
from cgflow.settings import json_schema
from cgflow.systems import SYSTEMS

SYSTEM_BLOCKS = {
    "potential": lambda cls: cls.potential_settings(),
    "reference": lambda cls: cls.reference_settings,
    "evaluation": lambda cls: cls.evaluation_settings,
}
"""A system's config blocks whose keys depend on its type, and the settings class
each one is read with."""


def _text(value) -> str:
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value


def _type(prop: dict) -> str:
    if "enum" in prop:
        return "one of " + ", ".join(f"`{_text(v)}`" for v in prop["enum"])
    if "oneOf" in prop:
        return " or ".join(_type(p) for p in prop["oneOf"])
    kind = prop.get("type", "")
    if isinstance(kind, list):
        kind = " or ".join(kind)
    if kind == "array" and isinstance(prop.get("items"), dict):
        inner = _type(prop["items"])
        return f"array of {inner}" if inner else "array"
    return kind


def _bounds(prop: dict) -> str:
    marks = (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="),
             ("exclusiveMaximum", "<"), ("minItems", "items >="), ("minProperties", "keys >="),
             ("minLength", "length >="), ("pattern", "matches"))  # fmt: skip
    parts = [f"{op} {_text(prop[k])}" for k, op in marks if k in prop]
    items = prop.get("items")
    if isinstance(items, dict):
        parts += [f"each {p}" for p in _bounds(items).split("; ") if p]
    return "; ".join(parts)


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _rows(schema: dict, path: str, required=()) -> list[tuple[str, dict, bool]]:
    """(dotted key, its schema, required) of every key under ``schema``, depth first."""
    out = []
    for name, prop in (schema.get("properties") or {}).items():
        key = f"{path}.{name}" if path else name
        out.append((key, prop, name in required))
        if prop.get("type") == "object" or "properties" in prop:
            out += _rows(prop, key, prop.get("required", ()))
        extra = prop.get("additionalProperties")
        if isinstance(extra, dict) and "properties" in extra:
            out += _rows(extra, f"{key}.<name>", extra.get("required", ()))
        items = prop.get("items")
        if isinstance(items, dict) and "properties" in items:
            out += _rows(items, f"{key}[]", items.get("required", ()))
    return out


def _table(rows) -> list[str]:
    lines = ["| key | type | default | bounds | description |", "|---|---|---|---|---|"]
    for key, prop, required in rows:
        default = "required" if required else (
            f"`{_text(prop['default'])}`" if "default" in prop else "")  # fmt: skip
        described = _cell(prop.get("description", ""))
        lines.append(f"| `{key}` | {_cell(_type(prop))} | {_cell(default)} | "
                     f"{_cell(_bounds(prop))} | {described} |")  # fmt: skip
    return lines


def config_markdown() -> str:
    """The configuration reference: every key of the schema, then each system
    type's potential, reference and evaluation blocks."""
    schema = load_schema()
    lines = [
        "# Configuration reference",
        "",
        "Generated from `workflow/schemas/config.schema.yaml` and the settings classes "
        "of the methods, the simulator and the systems (`cgflow schema` prints the "
        "whole JSON schema). `<name>` stands for a name you choose (a system), `[]` for "
        "each item of a list. A config is checked against all of it before any job "
        "starts: `cgflow check-config FILE`.",
        "",
        "## Study",
        "",
        *_table(_rows(schema, "", schema.get("required", ()))),
        "",
        "## Blocks of each system type",
        "",
        "A system's `potential`, `reference` and `evaluation` blocks take the keys of its "
        "type (`systems.<name>.type`, or its name).",
    ]
    for system_type, cls in sorted(SYSTEMS.items()):
        lines += ["", f"### `{system_type}`", "", (cls.__doc__ or "").strip().splitlines()[0]]
        for block, settings_of in SYSTEM_BLOCKS.items():
            sub = json_schema(settings_of(cls))
            if not sub["properties"]:
                continue
            rows = _rows(sub, f"systems.<name>.{block}", sub.get("required", ()))
            lines += ["", f"`{block}`:", "", *_table(rows)]
    return "\n".join(lines) + "\n"


PAPERS = {
    "thaler2022": ("re", "fm_re"),
    "duschatko2024": ("em", "fm_nearest"),
    "schoberl2020": ("rkl", "rkl_flow"),
}
"""Each seed paper's page, and the methods whose claims test it."""
TIERS = {"config.yaml": "default", "claims.yaml": "claims", "water.yaml": "water",
         "thermal.yaml": "thermal"}  # fmt: skip
"""The shipped configs that state claims, and the name of each one's results page."""


def _published(results_dir, tier: str) -> list[tuple[str, dict, dict]]:
    """A tier's published pages: its own (``docs/results/<tier>/``) and those of its
    slices (``<tier>-<slice>/``, e.g. one run with ``only_systems``), each as (page,
    record.json, verdicts by claim name from claims.csv), the latest first."""
    import csv

    pages = []
    for folder in sorted(results_dir.glob(f"{tier}*")):
        slice_of_tier = folder.name == tier or folder.name.startswith(f"{tier}-")
        if not (folder.is_dir() and slice_of_tier):
            continue
        record = json.loads((folder / "record.json").read_text()) if (
            folder / "record.json").is_file() else {}  # fmt: skip
        verdicts = {}
        if (folder / "claims.csv").is_file():
            with open(folder / "claims.csv", newline="") as fh:
                verdicts = {row["claim"]: row for row in csv.DictReader(fh)}
        pages.append((folder.name, record, verdicts))
    return sorted(pages, key=lambda page: page[1].get("finished", ""), reverse=True)


def paper_claims_markdown(paper: str, root) -> str:
    """The claims that test ``paper`` in each shipped tier, with the latest published
    verdict and the run that gave it (docs/results/<tier>/), as a Markdown table."""
    from pathlib import Path

    import yaml

    root = Path(root)
    methods_ = PAPERS[paper]
    lines = ["| tier | claim | system | kind | seeds | latest verdict [effect, 95 % CI] |",
             "|---|---|---|---|---:|---|"]  # fmt: skip
    runs = []
    for name, tier in TIERS.items():
        config = yaml.safe_load((root / "config" / name).read_text())
        pages = _published(root / "docs" / "results", tier)
        used = []
        for claim in map(Claim.of, config.get("claims", [])):
            if claim.method not in methods_:
                continue
            system = config["systems"][claim.system]
            seeds = len(system.get("seeds", config.get("seeds", [0])))
            page, found = next(((pg, v[claim.name]) for pg, _, v in pages
                                if claim.name in v), (None, None))  # fmt: skip
            if found:
                effect = float(found["effect"]) if found["effect"] else float("nan")
                shown = f"**{found['verdict']}**"
                if effect == effect:  # not NaN
                    shown += (f" [{effect:+.3f}, {float(found['ci_low']):+.3f} to "
                              f"{float(found['ci_high']):+.3f}]")  # fmt: skip
                shown += f" ([{page}](../results/{page}.md))"
                used += [page] if page not in used else []
            else:
                shown = "not published yet"
            lines.append(f"| `config/{name}` | {_cell(claim.name)} | {claim.system} | "
                         f"{claim.kind} | {seeds} | {shown} |")  # fmt: skip
        runs += [f"- [{pg}](../results/{pg}.md): {rec.get('summary', '')}"
                 for pg, rec, _ in pages if pg in used]  # fmt: skip
    if len(lines) == 2:
        lines.append("| | no shipped tier states a claim on these methods yet | | | | |")
    if runs:
        lines += ["", "The published runs these verdicts come from:", "", *runs]
    return "\n".join(lines) + "\n"
