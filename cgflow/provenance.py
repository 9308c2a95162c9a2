"""What a data file records about where it comes from (its system, CG map and kT),
and the check every step makes before it combines files: a mismatch is refused in
one line naming both files and both values.

A file written before a field was recorded lacks it; that field is then not
checked (old studies still load).
"""

from __future__ import annotations

import json
import math

FIELDS = ("system", "mapping", "kT")


def recorded(meta) -> dict:
    """The provenance fields ``meta`` (a data file's metadata, a model's description
    as JSON, or the values a step was asked for) records: ``system`` (the config's
    system name), ``mapping`` (the CG map's name) and ``kT``."""
    if not isinstance(meta, dict):
        return {}
    out = {}
    if isinstance(meta.get("system"), str):
        out["system"] = meta["system"]
    mapping = meta.get("mapping")
    if isinstance(mapping, dict):
        mapping = mapping.get("name")
    if isinstance(mapping, str):
        out["mapping"] = mapping
    if isinstance(meta.get("kT"), (int, float)) and not isinstance(meta.get("kT"), bool):
        out["kT"] = float(meta["kT"])
    return out


def check_same(first: str, first_meta, second: str, second_meta, fields=FIELDS) -> None:
    """Refuse (ValueError) when ``first`` and ``second`` (what each is, e.g. a file's
    path or "--temperature 3") record different values of one of ``fields``; a
    field either lacks is not compared."""
    a, b = recorded(first_meta), recorded(second_meta)
    for key in fields:
        if key not in a or key not in b:
            continue
        same = (math.isclose(a[key], b[key], rel_tol=1e-6, abs_tol=1e-12) if key == "kT"
                else a[key] == b[key])  # fmt: skip
        if not same:
            raise ValueError(
                f"{first} is of {key} {a[key]!r} but {second} of {key} {b[key]!r}: "
                "they come from different runs of the study"
            )


def check_described(path: str, meta, system: str, description: dict) -> None:
    """Refuse (ValueError) an all-atom data set whose recorded system description
    (``meta["system"]``, as ``cgflow sample`` writes it) differs from ``description``
    (the study's system ``system``, ``System.describe()``) in a key both have; which
    part and run of the reference it is are not compared."""
    written = meta.get("system") if isinstance(meta, dict) else None
    if not isinstance(written, dict):
        return
    want = json.loads(json.dumps(description))  # as JSON would hold it
    differ = sorted(k for k in set(written) & set(want) - {"part", "run"}
                    if written[k] != want[k])  # fmt: skip
    if differ:
        shown = ", ".join(f"{k} {written[k]!r} vs {want[k]!r}" for k in differ)
        raise ValueError(
            f"{path} is a reference of another system than --system {system} ({shown}): "
            "they come from different runs of the study"
        )
