"""Names of result files shared by the workflow's rules and the aggregate step (a
light module: the Snakefile imports it)."""

from __future__ import annotations

import math
import re

DATASET = "{system}/{mapping}/T{temperature}"
"""A CG data set's folder under results/, and the runs on it."""
RUN = DATASET + "/{method}/n{n_train}_s{seed}"
"""A trained model's folder."""
RUN_DT = RUN + "/dt{dt}"
"""A trained model's CG run at one time step: its samples and scores."""


def _pattern(template: str) -> str:
    return re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)


_SCORES = re.compile(
    rf"(?:^|/){_pattern(DATASET)}/(?:reference|{_pattern(RUN_DT.removeprefix(DATASET + '/'))})"
    r"/metrics\.json$"
)


def run_of_scores(path: str) -> dict:
    """The run a ``metrics.json`` path names by the workflow's layout (``RUN_DT``, or
    ``DATASET/reference`` for the reference's scores): system, mapping, temperature,
    method, and n_train, seed and dt where the path has them; {} for a path outside
    the layout."""
    found = _SCORES.search(str(path).replace("\\", "/"))
    if found is None:
        return {}
    parts = {k: v for k, v in found.groupdict().items() if v is not None}
    parts.setdefault("method", "reference")
    try:
        for key, kind in (("temperature", float), ("dt", float), ("n_train", int), ("seed", int)):
            if key in parts:
                parts[key] = kind(parts[key])
    except ValueError:
        return {}
    return parts


def figure_name(kind: str, system: str, mapping: str, temperature: float) -> str:
    """File name of a data set's figure: its free energies, or a liquid's structure
    (``kind`` the system's figure kind)."""
    what = "structure" if kind == "structure" else "free_energy"
    return f"{what}_{system}_{mapping}_T{temperature:g}.png"


def n_train_label(n_train, prefix: str = "") -> str:
    """A data-set size as tables and claims show it: n_train 0 is a data-free
    method's ("no data")."""
    return "no data" if n_train == 0 else f"{prefix}{n_train}"


def dt_label(dt, prefix: str = "dt = ") -> str:
    """A time step as tables and claims show it: dt 0 holds a generator's samples,
    drawn directly (no dynamics); NaN (a reference, not simulated) shows as ''."""
    if dt == 0:
        return "sampled (no dt)"
    if isinstance(dt, float) and math.isnan(dt):
        return ""
    return f"{prefix}{dt:g}"
