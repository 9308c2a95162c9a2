"""Whether a result file is intact, by the record it was written with, checked
cheaply each time the workflow plans (``damaged_results``, before the DAG is built:
a damaged file is set aside, so that Snakemake makes it again).

- A data set (``.npz``, :func:`cgflow.io.save_dataset`): a zip archive whose
  ``_write_id`` equals the ``write_id`` of its JSON metadata beside it; a truncated
  archive has lost its central directory, a pair from two writes has two ids.
- A model's ``params.msgpack``: the SHA-256 its ``model.json`` records
  (``params_sha256``, written by :func:`cgflow.models.energy.save_model`); a model
  written before the record existed is not checked.
- A JSON file: parses.

The check reads the archive's directory and one small member, not the arrays, so
a study's hundreds of inputs are checked in well under a second each time the
workflow plans. It imports no JAX, only NumPy to read the id.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np

PARAMS_SHA256 = "params_sha256"
"""Key of model.json that records the SHA-256 of the params.msgpack beside it."""


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def problem(path: str | Path) -> str | None:
    """Why ``path`` cannot be read as the file it was written as (None: intact as far
    as its own record tells, or missing, which is the workflow's to handle)."""
    path = Path(path)
    if not path.is_file():
        return None
    if path.suffix == ".npz":
        return _dataset_problem(path)
    if path.name == "params.msgpack":
        return _params_problem(path)
    if path.suffix == ".json":
        return _json_problem(path)[1]
    return None


def _json_problem(path: Path) -> tuple[object, str | None]:
    try:
        return json.loads(path.read_text()), None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return None, f"{path.name} is not valid JSON ({err})"


def _dataset_problem(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as archive:
            if "_write_id.npy" not in archive.namelist():
                return None  # written without an id (an older cgflow, or by hand)
            written = str(np.lib.format.read_array(io.BytesIO(archive.read("_write_id.npy"))))
    except (OSError, ValueError, zipfile.BadZipFile, KeyError, EOFError) as err:
        return f"not a readable .npz archive ({err})"
    meta_path = path.with_suffix(".json")
    if not meta_path.is_file():
        return None
    meta, why = _json_problem(meta_path)
    if why:
        return why
    recorded = meta.get("write_id") if isinstance(meta, dict) else None
    if recorded is not None and recorded != written:
        return f"its arrays and {meta_path.name} come from different writes"
    return None


def _params_problem(path: Path) -> str | None:
    model_json = path.with_name("model.json")
    if not model_json.is_file():
        return None
    # the file's JSON, not the ModelDescription record: this module sits below
    # cgflow.models (which calls it), and the key is the one constant both use
    written, why = _json_problem(model_json)
    if why:
        return why
    recorded = written.get(PARAMS_SHA256) if isinstance(written, dict) else None
    if recorded is None:
        return None
    try:
        found = sha256_of(path.read_bytes())
    except OSError as err:
        return f"not readable ({err})"
    if found != recorded:
        return f"its SHA-256 is not the one {model_json.name} records (cut short or altered)"
    return None


def checked(path: Path) -> bool:
    """Whether ``damaged_results`` checks ``path``: a data set (``.npz``), a model
    (``model.json``, ``params.msgpack``), a prior (``prior/*.json``) or a CG run's
    ``status.json``. A ``metrics.json`` is not among them: the aggregate reports a
    damaged one as a failed run (:mod:`cgflow.analysis.aggregate`)."""
    name = path.name
    return (name.endswith(".npz") or name in ("model.json", "params.msgpack", "status.json")
            or (path.parent.name == "prior" and name.endswith(".json")))  # fmt: skip


def damaged_results(root: str | Path) -> list[tuple[Path, str]]:
    """Every file under ``root`` that ``checked`` names and whose check fails, with
    why."""
    out = []
    for folder, _, names in os.walk(root):
        for name in sorted(names):
            path = Path(folder) / name
            if checked(path):
                why = problem(path)
                if why:
                    out.append((path, why))
    return out


def set_aside(path: str | Path) -> Path:
    """Move a damaged file to ``<name>.damaged`` (replacing an older one), so that
    what made it makes it again and the damaged bytes stay for a look."""
    path = Path(path)
    target = path.with_name(path.name + ".damaged")
    os.replace(path, target)
    return target
