"""Names of result files shared by the workflow's rules and the aggregate step (a
light module: the Snakefile imports it)."""

from __future__ import annotations


def figure_name(kind: str, system: str, mapping: str, temperature: float) -> str:
    """File name of a data set's figure: its free energies, or a liquid's structure
    (``kind`` the system's figure kind)."""
    what = "structure" if kind == "structure" else "free_energy"
    return f"{what}_{system}_{mapping}_T{temperature:g}.png"
