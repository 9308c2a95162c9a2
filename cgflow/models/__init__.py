"""CG energy models: energy = fitted prior + neural network, one pure function."""

from cgflow.models.description import GeneratorDescription, ModelDescription
from cgflow.models.energy import (
    at_temperature,
    box_scaling_derivative,
    build_energy,
    build_free_energy,
    init_params,
    interaction_range,
    is_temperature_aware,
    load_model,
    network_range,
    save_model,
)
from cgflow.models.prior import fit_prior, prior_energy

__all__ = [
    "GeneratorDescription",
    "ModelDescription",
    "at_temperature",
    "box_scaling_derivative",
    "build_energy",
    "build_free_energy",
    "is_temperature_aware",
    "init_params",
    "interaction_range",
    "network_range",
    "load_model",
    "save_model",
    "fit_prior",
    "prior_energy",
]
