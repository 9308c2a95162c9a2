"""``fm_nearest``: the FM model of the nearest training temperature, simulated and
scored at a held-out temperature as it is. It is what a model that does not read
the temperature gives there (no transfer), the baseline a temperature-aware model
such as ``em`` must beat. Nothing is trained: the workflow simulates the FM model's
own files (``Method.model_of``), so there are no settings."""

from __future__ import annotations

from cgflow.methods.base import Problem, Trained
from cgflow.methods.options import NearestSettings

SETTINGS = NearestSettings  # defined in cgflow.methods.options, which imports no JAX


def train(problem: Problem, settings: NearestSettings, key) -> Trained:
    """Refuse: fm_nearest uses the fm model of the nearest training temperature."""
    del problem, settings, key
    raise ValueError(
        "fm_nearest trains nothing: it is the fm model of the nearest training "
        "temperature, which the workflow simulates at the held-out temperature"
    )
