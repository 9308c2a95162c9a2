"""The 2-D double well of Schoeberl, Zabaras & Koutsourelakis (2020), with coupling.

    U(x1, x2) = V(x1) + (d(x1)/2) (x2 - c g(x1))^2,   V(x1) = x1^4/4 - 3 x1^2 + x1,

with the stiffness d(x1) = d (1 + a x1^2), in reduced units (k_B = 1, mass 1, energy
and kT in the same unit).  The CG coordinate is x1.  Integrating out x2 (a Gaussian
of mean c g(x1) and variance kT / d(x1)) gives the exact PMF along x1,

    A(x1, beta) = V(x1) + (kT/2) ln(1 + a x1^2) + const(beta),

for every c and d. With a = 0 (the default) it is V itself at every temperature;
with a > 0 the x2 entropy makes it temperature dependent, the exact test case of
energy matching: the conditional all-atom energy is <U | x1> = V(x1) + kT/2 and its
variance (kT)^2/2, for any c, d and a. With c = 0 and a = 0 the mapped force
-dU/dx1 equals the mean force exactly; otherwise it carries zero-mean noise, as
mapped forces do in molecules.

The "all-atom" configuration is stored as two 1-D particles, x1 and x2
(positions of shape (frames, 2, 1)), so the CG map x1 is an ordinary slice map.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cgflow.mapping import LinearMap, slice_map
from cgflow.settings import Settings, setting
from cgflow.systems.base import ExactProfile, ReferenceSettings, SystemDefaults
from cgflow.units import REDUCED

COUPLINGS = {
    "sin": (np.sin, np.cos),
    "tanh": (np.tanh, lambda x: 1.0 / np.cosh(x) ** 2),
}


def pmf_x1(x1):
    """Exact PMF along x1 (up to a constant), in energy units."""
    x1 = np.asarray(x1, float)
    return 0.25 * x1**4 - 3.0 * x1**2 + x1


def dpmf_x1(x1):
    x1 = np.asarray(x1, float)
    return x1**3 - 6.0 * x1 + 1.0


BARRIER_X1 = float(sorted(np.roots([1.0, 0.0, -6.0, 1.0]).real)[1])
"""Top of the barrier between the wells, the middle root of dA/dx1 (about 0.168)."""


@dataclass(frozen=True)
class ExactSettings(ReferenceSettings):
    """Exact reference sampling (the system's ``reference`` config block)."""

    block = "double_well.reference"

    n_samples: int = setting(100_000, ge=1, doc="independent exact samples")
    seed: int = setting(0, ge=0, doc="seed of the sampler")


@dataclass(frozen=True)
class ProfileEvaluation(Settings):
    """How a 1-D profile is scored (the system's ``evaluation`` config block).

    Attributes:
      bins: histogram bins over the range where the exact density exceeds 1e-4 of
        its maximum.
      density_threshold: bins whose exact probability is below this fraction of the
        largest bin's are left out of the RMSE.
    """

    block = "double_well.evaluation"

    bins: int = setting(80, ge=2, doc="histogram bins along x1")
    density_threshold: float = setting(
        1e-3, gt=0, lt=1, doc="bins below this fraction of the top bin are not scored"
    )


@dataclass(frozen=True)
class DoubleWell(SystemDefaults, Settings):
    """The double-well system with coupling strength ``c``, stiffness ``d`` and ``g``
    (its ``potential`` config block)."""

    block = "double_well.potential"

    c: float = setting(0.0, doc="coupling strength of x2 to g(x1)")
    d: float = setting(1.0, gt=0, doc="stiffness of x2")
    coupling: str = setting("sin", choices=tuple(COUPLINGS), doc="the function g")
    a: float = setting(
        0.0,
        ge=0,
        doc="stiffness slope: d(x1) = d (1 + a x1^2); a > 0 makes the PMF temperature dependent",
    )

    type = "double_well"
    units = REDUCED
    dim = 1
    n_atoms = 2
    reference_kind = "exact"
    has_topology = False
    periodic = False
    jax_energy = True
    cv_names = ("x1",)
    cv_periodic = False
    basin_names = ("left", "right")
    basin_edges = (BARRIER_X1,)
    metric_names = ("pmf_wrmse_kT", "pmf_rmse_kT", "js_divergence", "dF_right_err_kT")
    primary_metric = "pmf_wrmse_kT"
    figure_kind = "profile_1d"
    reference_settings = ExactSettings
    evaluation_settings = ProfileEvaluation

    def __post_init__(self):
        super().__post_init__()  # types and bounds first: c and d are numbers
        object.__setattr__(self, "c", float(self.c))
        object.__setattr__(self, "d", float(self.d))
        object.__setattr__(self, "a", float(self.a))

    def n_reference_frames(self, reference: ExactSettings) -> int:
        return reference.n_samples

    def describe(self) -> dict:
        return {"type": self.type, "c": self.c, "d": self.d, "coupling": self.coupling,
                "a": self.a}  # fmt: skip

    @staticmethod
    def kT(temperature: float) -> float:
        """Reduced units: the temperature is kT."""
        return float(temperature)

    # --- the "all-atom" force field -------------------------------------------------
    def stiffness(self, x1):
        """d(x1) = d (1 + a x1^2) and its derivative."""
        x1 = np.asarray(x1, float)
        return self.d * (1.0 + self.a * x1**2), 2.0 * self.d * self.a * x1

    def energy(self, positions):
        """U for positions (..., 2, 1); returns shape (...)."""
        x1, x2 = positions[..., 0, 0], positions[..., 1, 0]
        g, _ = COUPLINGS[self.coupling]
        stiffness, _ = self.stiffness(x1)
        return pmf_x1(x1) + 0.5 * stiffness * (x2 - self.c * g(x1)) ** 2

    def forces(self, positions):
        """-dU/dx for positions (..., 2, 1); returns the same shape."""
        x1, x2 = positions[..., 0, 0], positions[..., 1, 0]
        g, dg = COUPLINGS[self.coupling]
        stiffness, slope = self.stiffness(x1)
        stretch = x2 - self.c * g(x1)
        f1 = -dpmf_x1(x1) - 0.5 * slope * stretch**2 + stiffness * stretch * self.c * dg(x1)
        f2 = -stiffness * stretch
        return np.stack([f1, f2], axis=-1)[..., None]

    def aa_energy_jax(self):
        """The all-atom energy as a JAX function of the flat coordinates (x1, x2),
        for methods that query the force field themselves (reverse KL)."""
        import jax.numpy as jnp

        g = {"sin": jnp.sin, "tanh": jnp.tanh}[self.coupling]
        c, d, a = self.c, self.d, self.a

        def energy(flat):
            x1, x2 = flat[0], flat[1]
            v = 0.25 * x1**4 - 3.0 * x1**2 + x1
            return v + 0.5 * d * (1.0 + a * x1**2) * (x2 - c * g(x1)) ** 2

        return energy

    def log_partition(self, kT: float) -> float:
        """Exact ln Z = ln of the integral of exp(-U/kT) over (x1, x2): x2 is
        Gaussian given x1, so Z = int exp(-V/kT) sqrt(2 pi kT / d(x1)) dx1 (by the
        trapezoid rule on the fine grid); for any c."""
        x = self.x1_grid(kT)
        stiffness, _ = self.stiffness(x)
        log_f = -pmf_x1(x) / kT + 0.5 * np.log(2.0 * np.pi * kT / stiffness)
        top = log_f.max()
        return float(top + np.log(np.trapezoid(np.exp(log_f - top), x)))

    def free_energy_x1(self, x1, kT: float):
        """The exact PMF A(x1, beta) = V + (kT/2) ln(1 + a x1^2), up to a function of kT."""
        x1 = np.asarray(x1, float)
        return pmf_x1(x1) + 0.5 * kT * np.log1p(self.a * x1**2)

    @staticmethod
    def mean_energy_x1(x1, kT: float):
        """<U | x1> at kT, = d(beta A)/d beta: V(x1) + kT/2 (the x2 equipartition)."""
        return pmf_x1(x1) + 0.5 * kT

    @staticmethod
    def energy_variance_x1(x1, kT: float):
        """Var(U | x1) at kT, = -d^2(beta A)/d beta^2: (kT)^2 / 2 at every x1."""
        return np.full(np.shape(x1), 0.5 * kT**2)

    # --- CG maps and the collective variable -----------------------------------------
    def mappings(self) -> dict[str, LinearMap]:
        return {"x1": slice_map("x1", self.n_atoms, [0], ["X1"], [1.0])}

    def basins(self, cv_values: np.ndarray) -> np.ndarray:
        """0 left of the barrier, 1 right of it, for CV values (n, 1)."""
        return np.searchsorted(self.basin_edges, np.asarray(cv_values)[:, 0])

    @staticmethod
    def cv(cg_map: LinearMap):
        """x1 from CG positions (n, 1, 1): shape (n, 1)."""
        del cg_map
        return lambda positions: np.asarray(positions)[:, 0, :1]

    # --- exact reference --------------------------------------------------------------
    def x1_grid(self, kT: float, n: int = 200_001, cutoff_kT: float = 60.0) -> np.ndarray:
        """A grid over x1 covering every point with A(x1) - min A < cutoff_kT * kT."""
        x = np.linspace(-12.0, 12.0, 400_001)
        a = pmf_x1(x)
        keep = np.flatnonzero(a - a.min() < cutoff_kT * kT)
        return np.linspace(x[keep[0]], x[keep[-1]], n)

    def exact_profile(self, kT: float) -> ExactProfile:
        """Grid over x1, the exact PMF on it, and the exact CDF (trapezoid rule)."""
        if kT <= 0:
            raise ValueError(f"double_well: kT must be > 0, got {kT}")
        x = self.x1_grid(kT)
        return ExactProfile.from_free_energy(x, self.free_energy_x1(x, kT), kT)

    def exact_cdf_x1(self, kT: float):
        """Exact CDF of x1 as a callable (for statistical tests and binning)."""
        x, _, cdf = self.exact_profile(kT)
        return lambda q: np.interp(q, x, cdf, left=0.0, right=1.0)

    def sample_exact(self, kT: float, reference: ExactSettings) -> dict[str, np.ndarray]:
        """Independent exact samples: x1 by inverse CDF on a fine grid, x2 | x1 Gaussian.

        Returns:
          dict with ``positions`` and ``forces`` (n, 2, 1) and ``energies`` (n,).
        """
        rng = np.random.default_rng(reference.seed)
        x, _, cdf = self.exact_profile(kT)
        n = reference.n_samples
        x1 = np.interp(rng.uniform(size=n), cdf, x)
        g, _ = COUPLINGS[self.coupling]
        stiffness, _ = self.stiffness(x1)
        x2 = self.c * g(x1) + np.sqrt(kT / stiffness) * rng.standard_normal(n)
        positions = np.stack([x1, x2], axis=-1)[..., None]
        return {
            "positions": positions,
            "forces": self.forces(positions),
            "energies": self.energy(positions),
        }
