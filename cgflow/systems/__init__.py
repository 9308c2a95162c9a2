"""System definitions: the AA model, its CG maps and its observables."""

from __future__ import annotations

from cgflow.systems.alanine_dipeptide import AlanineDipeptide
from cgflow.systems.double_well import DoubleWell

SYSTEM_TYPES = {"double_well": DoubleWell, "alanine_dipeptide": AlanineDipeptide}


def get_system(system_type: str, settings: dict | None = None):
    """Build the system of ``system_type`` from its config block."""
    if system_type not in SYSTEM_TYPES:
        raise ValueError(f"unknown system type {system_type!r}; allowed: {sorted(SYSTEM_TYPES)}")
    return SYSTEM_TYPES[system_type].from_settings(settings or {})


def get_map(system, name: str):
    maps = system.mappings()
    if name not in maps:
        raise ValueError(f"{system.type}: unknown mapping {name!r}; allowed: {sorted(maps)}")
    return maps[name]
