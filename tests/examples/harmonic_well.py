"""An example system, as a user would add one: two particles in 1-D in harmonic wells,
U = k1 x1^2 / 2 + k2 (x2 - x1)^2 / 2, coarse-grained to x1, whose exact PMF is
k1 x1^2 / 2 (the x2 integral is a Gaussian of fixed width). Reduced units.

tests/test_registry.py adds it with one line, as one would in cgflow/systems/__init__.py:

    SYSTEMS = {cls.type: cls for cls in (DoubleWell, AlanineDipeptide, HarmonicWell)}
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cgflow.mapping import slice_map
from cgflow.settings import Settings, setting
from cgflow.systems.base import ExactProfile, ReferenceSettings, SystemDefaults
from cgflow.systems.double_well import ProfileEvaluation
from cgflow.units import REDUCED


@dataclass(frozen=True)
class Samples(ReferenceSettings):
    block = "harmonic_well.reference"
    n_samples: int = setting(10_000, ge=1)
    seed: int = setting(0, ge=0)


@dataclass(frozen=True)
class HarmonicWell(SystemDefaults, Settings):
    block = "harmonic_well.potential"
    k1: float = setting(2.0, gt=0, doc="stiffness of x1")
    k2: float = setting(5.0, gt=0, doc="stiffness of x2 - x1")

    type = "harmonic_well"
    units = REDUCED
    dim = 1
    reference_kind = "exact"
    has_topology = False
    periodic = False
    jax_energy = False
    cv_names = ("x1",)
    cv_periodic = False
    basin_names = ("well",)
    basin_edges = ()
    metric_names = ("pmf_wrmse_kT", "pmf_rmse_kT", "js_divergence")
    primary_metric = "pmf_wrmse_kT"
    figure_kind = "profile_1d"
    reference_settings = Samples
    evaluation_settings = ProfileEvaluation

    def describe(self) -> dict:
        return {"type": self.type, "k1": self.k1, "k2": self.k2}

    @staticmethod
    def kT(temperature: float) -> float:
        return float(temperature)

    def n_reference_frames(self, reference: Samples) -> int:
        return reference.n_samples

    def mappings(self):
        return {"x1": slice_map("x1", 2, [0], ["X1"], [1.0])}

    @staticmethod
    def basins(cv_values):
        return np.zeros(len(cv_values), int)

    @staticmethod
    def cv(cg_map):
        return lambda positions: np.asarray(positions)[:, 0, :1]

    def exact_profile(self, kT: float) -> ExactProfile:
        width = np.sqrt(kT / self.k1)
        x = np.linspace(-12 * width, 12 * width, 100_001)
        return ExactProfile.from_free_energy(x, 0.5 * self.k1 * x**2, kT)

    def sample_exact(self, kT: float, reference: Samples) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(reference.seed)
        n = reference.n_samples
        x1 = rng.normal(0.0, np.sqrt(kT / self.k1), n)
        x2 = x1 + rng.normal(0.0, np.sqrt(kT / self.k2), n)
        positions = np.stack([x1, x2], axis=-1)[..., None]
        forces = np.stack([-self.k1 * x1 + self.k2 * (x2 - x1), -self.k2 * (x2 - x1)], -1)
        energies = 0.5 * self.k1 * x1**2 + 0.5 * self.k2 * (x2 - x1) ** 2
        return {"positions": positions, "forces": forces[..., None], "energies": energies}
