"""Benchmark systems, each one module behind the protocol of :mod:`cgflow.systems.base`.

``SYSTEMS`` lists them by type: adding a system is one module and one line here.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from cgflow.systems.alanine_dipeptide import AlanineDipeptide
from cgflow.systems.base import scored_exactly as scored_exactly
from cgflow.systems.double_well import DoubleWell
from cgflow.systems.molecule import Molecule
from cgflow.systems.water import Water

SYSTEMS = {cls.type: cls for cls in (DoubleWell, AlanineDipeptide, Water, Molecule)}

DECLARED_BLOCKS = tuple(dict.fromkeys(b for cls in SYSTEMS.values() for b in cls.entry_blocks))
"""Entry blocks some system type reads besides the common ones (a molecule's declared
maps, CVs and basins), by ``SystemDefaults.entry_blocks``."""


def system_class(system_type: str):
    """The class of ``system_type``; ValueError listing the types allowed."""
    if system_type not in SYSTEMS:
        raise ValueError(f"unknown system type {system_type!r}; allowed: {sorted(SYSTEMS)}")
    return SYSTEMS[system_type]


def get_system(system_type: str, entry: dict | None = None):
    """Build the system of ``system_type`` from its config entry (its ``potential``,
    and the blocks it declares in ``entry_blocks``)."""
    return system_class(system_type).from_entry(entry or {})


def reference_settings(system, entry: dict):
    """The system's reference settings from its config entry."""
    return system.reference_settings.from_dict(entry.get("reference"), f"{system.type}.reference")


TEST_SEED_OFFSET = 1_000_003
"""The test reference's seed is the training reference's plus this (a stream no
other part of a study uses)."""

TEST_REFERENCE_KEYS = ("production_ps", "n_samples", "n_runs")
"""What an entry's ``test_reference`` block may set: the held-out test reference's
length (saved MD time, or exact samples) and, for MD, how many independent runs
make it up. Everything else, the ensemble and the
sampler, is the training reference's, so that the two sample one distribution."""


def test_reference_settings(system, entry: dict):
    """The held-out test reference's settings: the training reference's with the
    entry's ``test_reference`` block (its length, its runs) on top, and its seed offset by
    ``TEST_SEED_OFFSET`` (for MD, independent velocities and noise)."""
    ref = reference_settings(system, entry)
    block = entry.get("test_reference") or {}
    if not isinstance(block, dict):
        raise ValueError(f"must be a mapping, not {type(block).__name__}")
    declared = {f.name for f in dataclasses.fields(ref)}
    allowed = [k for k in TEST_REFERENCE_KEYS if k in declared]
    other = sorted(set(block) - set(allowed))
    if other:
        raise ValueError(
            f"sets only the test reference's length and runs ({', '.join(allowed)}), not "
            f"{other}: "
            "the rest is the training reference's"
        )
    test = system.reference_settings.from_dict(
        {**ref.to_dict(), **block}, f"{system.type}.test_reference"
    )
    return dataclasses.replace(test, seed=test.seed + TEST_SEED_OFFSET)


def evaluation_settings(system, entry: dict):
    """The system's evaluation settings from its config entry."""
    cls = system.evaluation_settings
    return cls.from_dict(entry.get("evaluation"), f"{system.type}.evaluation")


def get_map(system, name: str):
    maps = system.mappings()
    if name not in maps:
        raise ValueError(f"{system.type}: unknown mapping {name!r}; allowed: {sorted(maps)}")
    return maps[name]


def cv_feature_values(system, cv_values: np.ndarray) -> np.ndarray:
    """CV values as features for statistics: angles as their cos and sin (so that
    -pi and pi are one point), other CVs as they are."""
    x = np.asarray(cv_values, float)
    return np.concatenate([np.cos(x), np.sin(x)], axis=1) if system.cv_periodic else x


def cv_features(system, mapping: str):
    """``features(positions) -> (n, k)``: the system's CVs of CG positions of map
    ``mapping`` as features (``cv_feature_values``). The map is looked up at the
    first call, so a step whose method never calls it does not build it."""
    cv = []

    def features(positions):
        if not cv:
            cv.append(system.cv(get_map(system, mapping)))
        return cv_feature_values(system, cv[0](np.asarray(positions)))

    return features
