"""The 2-D double well of Schoeberl, Zabaras & Koutsourelakis (2020), with coupling.

    U(x1, x2) = x1^4/4 - 3 x1^2 + x1 + (d/2) (x2 - c g(x1))^2

in reduced units (k_B = 1, mass 1, energy and kT in the same unit).  The CG
coordinate is x1.  Integrating out x2 gives the exact PMF along x1,

    A(x1) = x1^4/4 - 3 x1^2 + x1 + const,

for every c, d and kT, because the x2 integral is a Gaussian of fixed width.
With c = 0 the mapped force -dU/dx1 equals the mean force exactly; with c > 0 it
carries zero-mean noise d (x2 - c g) c g'(x1), as mapped forces do in molecules.

The "all-atom" configuration is stored as two 1-D particles, x1 and x2
(positions of shape (frames, 2, 1)), so the CG map x1 is an ordinary slice map.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from cgflow.analysis.fes import bin_probabilities, free_energy, js_divergence, shifted_rmse
from cgflow.config import settings_from
from cgflow.io import save_dataset
from cgflow.mapping import LinearMap, slice_map

COUPLINGS = {
    "sin": (np.sin, np.cos),
    "tanh": (np.tanh, lambda x: 1.0 / np.cosh(x) ** 2),
}

UNITS = {"length": "reduced", "time": "reduced", "energy": "reduced (k_B = 1)", "mass": "reduced"}


def pmf_x1(x1):
    """Exact PMF along x1 (up to a constant), in energy units."""
    x1 = np.asarray(x1, float)
    return 0.25 * x1**4 - 3.0 * x1**2 + x1


def dpmf_x1(x1):
    x1 = np.asarray(x1, float)
    return x1**3 - 6.0 * x1 + 1.0


@dataclass(frozen=True)
class ExactSettings:
    """Exact reference sampling (the system's ``reference`` config block)."""

    n_samples: int = 100_000
    seed: int = 0

    def __post_init__(self):
        if not (isinstance(self.n_samples, int) and self.n_samples >= 1):
            raise ValueError(f"reference.n_samples must be an integer >= 1, got {self.n_samples}")
        if not (isinstance(self.seed, int) and self.seed >= 0):
            raise ValueError(f"reference.seed must be an integer >= 0, got {self.seed}")


@dataclass(frozen=True)
class DoubleWell:
    """The double-well system with coupling strength ``c``, stiffness ``d`` and ``g``."""

    c: float = 0.0
    d: float = 1.0
    coupling: str = "sin"

    type = "double_well"
    units = UNITS
    n_atoms = 2
    dim = 1
    time_unit = "reduced"
    metric_names = ("pmf_rmse_kT", "js_divergence")

    def __post_init__(self):
        if self.coupling not in COUPLINGS:
            raise ValueError(
                f"double_well: unknown coupling {self.coupling!r}; allowed: {sorted(COUPLINGS)}"
            )
        if self.d <= 0:
            raise ValueError(f"double_well: d must be > 0, got {self.d}")

    @classmethod
    def from_settings(cls, settings: dict) -> DoubleWell:
        system = settings_from(cls, settings.get("potential"), "double_well", "potential")
        return cls(c=float(system.c), d=float(system.d), coupling=str(system.coupling))

    @staticmethod
    def reference_settings(entry: dict) -> ExactSettings:
        return settings_from(ExactSettings, entry.get("reference"), "double_well", "reference")

    def n_reference_frames(self, entry: dict) -> int:
        return self.reference_settings(entry).n_samples

    def describe(self) -> dict:
        return {"type": self.type, "c": self.c, "d": self.d, "coupling": self.coupling}

    @staticmethod
    def kT(temperature: float) -> float:
        """Reduced units: the temperature is kT."""
        return float(temperature)

    def run_reference(self, temperature: float, entry: dict, out, log) -> dict:
        """Draw exact samples at ``temperature`` (= kT) and write the data set ``out``."""
        ref = self.reference_settings(entry)
        kT = self.kT(temperature)
        arrays = self.sample_reference(kT, ref.n_samples, ref.seed)
        meta = {
            "system": self.describe(),
            "kT": kT,
            "temperature": float(temperature),
            "units": self.units,
            "sampler": "exact (inverse CDF in x1, Gaussian x2 | x1)",
            "n_frames": ref.n_samples,
            "reference": asdict(ref),
        }
        save_dataset(out, arrays, meta)
        print(f"sample: {ref.n_samples} exact samples at kT = {kT}", file=log)
        return meta

    # --- the "all-atom" force field -------------------------------------------------
    def energy(self, positions):
        """U for positions (..., 2, 1); returns shape (...)."""
        x1, x2 = positions[..., 0, 0], positions[..., 1, 0]
        g, _ = COUPLINGS[self.coupling]
        return pmf_x1(x1) + 0.5 * self.d * (x2 - self.c * g(x1)) ** 2

    def forces(self, positions):
        """-dU/dx for positions (..., 2, 1); returns the same shape."""
        x1, x2 = positions[..., 0, 0], positions[..., 1, 0]
        g, dg = COUPLINGS[self.coupling]
        stretch = x2 - self.c * g(x1)
        f1 = -dpmf_x1(x1) + self.d * stretch * self.c * dg(x1)
        f2 = -self.d * stretch
        return np.stack([f1, f2], axis=-1)[..., None]

    # --- CG maps ----------------------------------------------------------------------
    def mappings(self) -> dict[str, LinearMap]:
        return {"x1": slice_map("x1", self.n_atoms, [0], ["X1"], [1.0])}

    # --- exact reference --------------------------------------------------------------
    def x1_grid(self, kT: float, n: int = 200_001, cutoff_kT: float = 60.0) -> np.ndarray:
        """A grid over x1 covering every point with A(x1) - min A < cutoff_kT * kT."""
        x = np.linspace(-12.0, 12.0, 400_001)
        a = pmf_x1(x)
        keep = np.flatnonzero(a - a.min() < cutoff_kT * kT)
        return np.linspace(x[keep[0]], x[keep[-1]], n)

    def sample_reference(self, kT: float, n_samples: int, seed: int) -> dict[str, np.ndarray]:
        """Independent exact samples: x1 by inverse CDF on a fine grid, x2 | x1 Gaussian.

        Returns:
          dict with ``positions`` and ``forces`` (n, 2, 1) and ``energies`` (n,).
        """
        if kT <= 0:
            raise ValueError(f"double_well: kT must be > 0, got {kT}")
        rng = np.random.default_rng(seed)
        x, cdf = self._x1_cdf_table(kT)
        x1 = np.interp(rng.uniform(size=n_samples), cdf, x)
        g, _ = COUPLINGS[self.coupling]
        x2 = self.c * g(x1) + np.sqrt(kT / self.d) * rng.standard_normal(n_samples)
        positions = np.stack([x1, x2], axis=-1)[..., None]
        return {
            "positions": positions,
            "forces": self.forces(positions),
            "energies": self.energy(positions),
        }

    def _x1_cdf_table(self, kT: float):
        """Grid over x1 and the exact CDF of x1 on it (trapezoid rule)."""
        x = self.x1_grid(kT)
        a = pmf_x1(x)
        p = np.exp(-(a - a.min()) / kT)
        cdf = np.concatenate([[0.0], np.cumsum(0.5 * (p[1:] + p[:-1]) * np.diff(x))])
        return x, cdf / cdf[-1]

    def exact_cdf_x1(self, kT: float):
        """Exact CDF of x1 as a callable (for statistical tests and binning)."""
        x, cdf = self._x1_cdf_table(kT)
        return lambda q: np.interp(q, x, cdf, left=0.0, right=1.0)

    # --- observables for evaluation -------------------------------------------------
    @staticmethod
    def cg_observable(cg_positions: np.ndarray) -> np.ndarray:
        """x1 from CG positions (..., 1, 1)."""
        return np.asarray(cg_positions)[..., 0, 0]

    # --- evaluation against the exact PMF --------------------------------------------
    def evaluate(
        self,
        cg_positions: np.ndarray,
        kT: float,
        reference=None,
        mapping: str = "x1",
        bins: int = 80,
        density_threshold: float = 1e-3,
    ) -> tuple[dict, dict]:
        """Compare the x1 distribution of CG samples with the exact one.

        ``reference`` data are not needed (the PMF is exact) and are ignored.

        Bins span the x1 range where the exact density exceeds 1e-4 of its maximum.
        ``pmf_rmse_kT`` is taken over bins whose exact probability exceeds
        ``density_threshold`` times the largest bin's, after the best constant
        shift; an empty model bin there counts as half a sample.
        ``js_divergence`` compares the bin probabilities, with the mass outside
        the range as one more bin.

        Returns:
          (metrics, curves): metrics ``pmf_rmse_kT``, ``js_divergence``; curves
          holds bin centres and both PMFs in kT (for figures).
        """
        x1 = self.cg_observable(cg_positions).ravel()
        x = self.x1_grid(kT)
        a = pmf_x1(x)
        dens = np.exp(-(a - a.min()) / kT)
        inside = x[dens > 1e-4]
        edges = np.linspace(inside[0], inside[-1], bins + 1)
        cdf = self.exact_cdf_x1(kT)
        p_ref = np.diff(cdf(edges))
        out_ref = max(0.0, 1.0 - p_ref.sum())
        p_mod, out_mod = bin_probabilities(x1[:, None], [edges])
        mask = p_ref > density_threshold * p_ref.max()
        f_ref = free_energy(p_ref)
        f_mod = free_energy(p_mod, n_samples=x1.size)
        rmse = shifted_rmse(f_mod, f_ref, mask)
        shift = np.mean((f_mod - f_ref)[mask])
        js = js_divergence(np.append(p_mod, out_mod), np.append(p_ref, out_ref))
        f0 = f_ref[mask].min()
        curves = {
            "centres": 0.5 * (edges[1:] + edges[:-1]),
            "pmf_reference_kT": f_ref - f0,
            "pmf_model_kT": np.where(p_mod > 0, f_mod - shift - f0, np.nan),
            "mask": mask,
        }
        return {"pmf_rmse_kT": rmse, "js_divergence": js}, curves
