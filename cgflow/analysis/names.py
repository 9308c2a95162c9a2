"""Names of result files shared by the workflow's rules and the aggregate step (a
light module: the Snakefile imports it)."""

from __future__ import annotations

import math


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
