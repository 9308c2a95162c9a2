"""Histogram free energies, the metrics that compare them, and their bootstrap CIs.

All free energies are in units of kT. Probabilities are per bin (they sum to 1
over the bins plus, where given, the mass that falls outside the range).

Every metric is computed from histograms of groups of frames (CG replicas, or
blocks of a correlated reference; see ``cgflow.analysis.stats``), so a bootstrap
draw is a weighted sum of group histograms and the metric functions below work on
a leading axis of draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cgflow.analysis import stats


def bin_probabilities(samples: np.ndarray, edges: list[np.ndarray]):
    """Fraction of ``samples`` (n, d) in each bin of the grid, and the fraction outside.

    Returns:
      (p, outside): p has shape (len(e) - 1 for e in edges); p.sum() + outside = 1.
    """
    samples = np.asarray(samples, float).reshape(len(samples), -1)
    if samples.shape[0] == 0:
        raise ValueError("no samples to histogram")
    counts, _ = np.histogramdd(samples, bins=edges)
    p = counts / samples.shape[0]
    return p, max(0.0, 1.0 - p.sum())


def free_energy(p: np.ndarray, n_samples=None) -> np.ndarray:
    """-ln p in kT; empty bins get half a count (when ``n_samples`` is given, a
    number or one per row of ``p``) or inf."""
    p = np.asarray(p, float)
    floor = 0.0
    if n_samples is not None:
        n = np.asarray(n_samples, float)
        floor = 0.5 / n.reshape(n.shape + (1,) * (p.ndim - n.ndim))
    with np.errstate(divide="ignore"):
        return -np.log(np.where(p > 0, p, floor))


def weighted_shifted_rms(d: np.ndarray, w: np.ndarray) -> np.ndarray:
    """sqrt(sum w (d - dbar)^2 / sum w), dbar = sum w d / sum w, along the last axis.

    ``d`` may be infinite where ``w`` is 0. With w = a mask of bins it is the RMSE
    over those bins after the best constant shift; with w = the reference's bin
    probabilities it is the probability-weighted RMSE.
    """
    w = np.asarray(w, float)
    d = np.where(w > 0, d, 0.0)
    total = w.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (w * d).sum(axis=-1) / total
        return np.sqrt((w * (d - mean[..., None]) ** 2).sum(axis=-1) / total)


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray | float:
    """Jensen-Shannon divergence (natural log, in [0, ln 2]) of two distributions,
    along the last axis; each is normalised to sum 1 first. (scipy's
    ``spatial.distance.jensenshannon`` squared, without importing ``scipy.spatial``,
    which added about 0.3 s to an evaluate job on an idle machine.)"""
    p = np.asarray(p, float)
    q = np.asarray(q, float)
    scalar = p.ndim <= 1 and q.ndim <= 1
    p, q = np.broadcast_arrays(p, q)
    p_total, q_total = p.sum(axis=-1, keepdims=True), q.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        p, q = p / p_total, q / q_total
        m = 0.5 * (p + q)
        kl_pm = np.where(p > 0, p * np.log(p / m), 0.0).sum(axis=-1)
        kl_qm = np.where(q > 0, q * np.log(q / m), 0.0).sum(axis=-1)
    empty = (p_total[..., 0] <= 0) | (q_total[..., 0] <= 0)  # nothing to normalise
    js = np.where(empty, np.nan, np.maximum(0.5 * (kl_pm + kl_qm), 0.0))
    return float(js) if scalar else js


def grid_index(values: np.ndarray, edges: list[np.ndarray]) -> np.ndarray:
    """Flat bin of each row of ``values`` (n, d) on the grid ``edges``; -1 outside."""
    values = np.asarray(values, float).reshape(len(values), -1)
    shape = tuple(len(e) - 1 for e in edges)
    idx = []
    inside = np.ones(len(values), bool)
    for k, e in enumerate(edges):
        i = np.searchsorted(e, values[:, k], side="right") - 1
        i = np.where(values[:, k] == e[-1], len(e) - 2, i)  # the last edge is in
        inside &= (i >= 0) & (i < len(e) - 1)
        idx.append(np.clip(i, 0, len(e) - 2))
    return np.where(inside, np.ravel_multi_index(idx, shape), -1)


@dataclass(frozen=True)
class Binned:
    """Per-group histograms of one sample set on each of several binnings ("views").

    Attributes:
      counts: view name -> (n_groups, n_bins + 1) counts, the last column frames
        outside the view's bins.
    """

    counts: dict[str, np.ndarray]

    @classmethod
    def of(cls, bins: dict[str, np.ndarray], n_bins: dict[str, int], groups: np.ndarray):
        return cls({k: stats.group_counts(bins[k], groups, n_bins[k]) for k in bins})

    @property
    def n_groups(self) -> int:
        return next(iter(self.counts.values())).shape[0]

    def whole(self) -> dict[str, np.ndarray]:
        """Probabilities of all frames, each (1, n_bins + 1)."""
        return {k: _normalise(c.sum(axis=0, keepdims=True)) for k, c in self.counts.items()}

    def draws(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        """Probabilities of resampled groups, each (n_draws, n_bins + 1), for group
        weights (n_draws, n_groups)."""
        return {k: _normalise(weights @ c) for k, c in self.counts.items()}

    def sizes(self, weights: np.ndarray | None = None) -> np.ndarray:
        """Frames per draw (or in all, as a (1,) array)."""
        c = next(iter(self.counts.values())).sum(axis=1)
        return c.sum(keepdims=True) if weights is None else weights @ c


def _normalise(counts: np.ndarray) -> np.ndarray:
    return counts / counts.sum(axis=-1, keepdims=True)


def basin_free_energies(p_basins: np.ndarray, n_samples=None) -> np.ndarray:
    """Free energy of each basin relative to the first (kT), (..., n_basins - 1);
    ``p_basins`` (..., n_basins + 1) with the outside mass last."""
    f = free_energy(p_basins[..., :-1], n_samples)
    return f[..., 1:] - f[..., :1]


def basin_errors(p, p_ref, names, n_samples=None) -> dict[str, np.ndarray]:
    """``dF_<basin>_err_kT``: error of each basin's free energy relative to the first
    basin, model ``p`` against reference ``p_ref`` (basin probabilities, outside
    last); NaN where the reference never visits a basin."""
    err = basin_free_energies(p, n_samples) - basin_free_energies(p_ref)
    with np.errstate(invalid="ignore"):
        err = np.where(np.isfinite(err), err, np.nan)
    return {f"dF_{name}_err_kT": err[..., k] for k, name in enumerate(names[1:])}


NOISE_BIASED = ("hist_mse", "js_divergence")
"""Metrics besides the RMSEs that the histograms' noise biases upwards: a mean
squared difference and a divergence, each zero only for equal histograms."""


def debias(point: float, draws: np.ndarray, power: int = 1) -> tuple[float, np.ndarray]:
    """A distance measured through noisy histograms is biased upwards: on the right
    scale (an RMSE squared, ``power`` 2; a mean squared difference or a divergence
    as it is, ``power`` 1) it holds the noise on top of the true distance. A
    bootstrap draw adds that noise once more, so draws reflected about the point,
    2 M - M* on that scale, are draws of the noise-free distance (the basic
    bootstrap); a negative one means "nothing above the noise" and counts as 0.
    Returns the corrected point (from the mean draw) and the corrected draws, on the
    metric's own scale."""
    m = float(point) ** power
    d = np.asarray(draws, float) ** power
    with np.errstate(invalid="ignore"):
        corrected = np.maximum(2.0 * m - d, 0.0) ** (1.0 / power)
        value = float(max(2.0 * m - np.nanmean(d), 0.0) ** (1.0 / power)) \
            if np.isfinite(d).any() else np.nan  # fmt: skip
    return value, corrected


def with_ci(point: dict[str, np.ndarray], draws: dict[str, np.ndarray], alpha: float = 0.05):
    """Point values, 95 % CIs and draws of each metric, as plain types.

    RMSE metrics (``*rmse*``) and those in ``NOISE_BIASED`` are corrected for the
    noise of the histograms (``debias``); their raw values are returned under
    ``raw``. The others are plain values with percentile CIs.
    """
    values, out, raw = {}, {}, {}
    for k, v in point.items():
        value = float(np.asarray(v).ravel()[0])
        d = np.asarray(draws[k], float)
        if "rmse" in k or k in NOISE_BIASED:
            raw[k] = value
            value, d = debias(value, d, power=2 if "rmse" in k else 1)
        values[k], out[k] = value, d
    cis = {k: stats.percentile_ci(d, alpha) for k, d in out.items()}
    return values, cis, out, raw


# --- a 1-D profile against its exact distribution ----------------------------------


@dataclass(frozen=True)
class ExactTarget:
    """The exact distribution of a 1-D CV on the scoring bins.

    Attributes:
      edges: bin edges (bins + 1,).
      p: exact probability of each bin, with the mass outside last (bins + 1,).
      mask: bins scored by ``pmf_rmse_kT`` (exact probability above
        ``density_threshold`` of the top bin's).
      basin_edges: CV values splitting the basins (n_basins - 1,), increasing.
      basin_names: their names (n_basins,).
      p_basins: exact probability of each basin, outside last (n_basins + 1,).
    """

    edges: np.ndarray
    p: np.ndarray
    mask: np.ndarray
    basin_edges: np.ndarray
    basin_names: tuple[str, ...]
    p_basins: np.ndarray

    @classmethod
    def of(cls, exact, kT: float, bins: int, density_threshold: float, basin_edges, basin_names):
        """From an ExactProfile: ``bins`` bins over the range where the exact density
        exceeds 1e-4 of its maximum."""
        grid, a, cdf_grid = exact
        dens = np.exp(-(a - a.min()) / kT)
        inside = grid[dens > 1e-4]
        edges = np.linspace(inside[0], inside[-1], bins + 1)
        basin_edges = np.asarray(basin_edges, float)
        p = _masses(edges, basin_edges, grid, cdf_grid)
        mask = p["bins"][:-1] > density_threshold * p["bins"][:-1].max()
        return cls(edges, p["bins"], mask, basin_edges, tuple(basin_names), p["basins"])

    def bin(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Bins of CV values x (n,) in each view: the scoring bins and the basins."""
        x = np.asarray(x, float).ravel()
        return {
            "bins": grid_index(x[:, None], [self.edges]),
            "basins": np.searchsorted(self.basin_edges, x),
        }

    @property
    def n_bins(self) -> dict[str, int]:
        return {"bins": len(self.edges) - 1, "basins": len(self.basin_edges) + 1}

    def metrics(self, p: dict[str, np.ndarray], n_samples=None) -> dict[str, np.ndarray]:
        """Metrics of model probabilities ``p`` (views of ``bin``, rows of draws):

        pmf_rmse_kT: RMSE over ``mask`` after the best shift, every bin alike.
        pmf_wrmse_kT: RMSE weighted by the exact bin probability (all bins).
        dF_<basin>_err_kT: error of each basin's free energy relative to the first.
        js_divergence: of the bin probabilities, outside mass as one more bin.

        With ``n_samples`` (histograms), an empty model bin counts as half a sample.
        """
        bins = p["bins"]
        f_ref = free_energy(self.p[:-1])
        d = free_energy(bins[:, :-1], n_samples) - f_ref
        out = {
            "pmf_rmse_kT": weighted_shifted_rms(d, self.mask.astype(float)),
            "pmf_wrmse_kT": weighted_shifted_rms(d, self.p[:-1]),
            "js_divergence": js_divergence(bins, self.p),
        }
        out.update(basin_errors(p["basins"], self.p_basins, self.basin_names, n_samples))
        return out

    def curves(self, p_bins: np.ndarray, n_samples=None) -> dict[str, np.ndarray]:
        f_ref = free_energy(self.p[:-1])
        f_mod = free_energy(p_bins[:-1], n_samples)
        shift = np.mean((f_mod - f_ref)[self.mask])
        f0 = f_ref[self.mask].min()
        return {
            "centres": 0.5 * (self.edges[1:] + self.edges[:-1]),
            "pmf_reference_kT": f_ref - f0,
            "pmf_model_kT": np.where(p_bins[:-1] > 0, f_mod - shift - f0, np.nan),
            "mask": self.mask,
        }


def _bin_mass(edges, grid, cdf_grid) -> np.ndarray:
    """Probability of each interval between ``edges`` under the CDF, outside last."""
    p = np.diff(np.interp(edges, grid, cdf_grid, left=0.0, right=1.0))
    return np.append(p, max(0.0, 1.0 - p.sum()))


def _masses(edges, basin_edges, grid, cdf_grid) -> dict[str, np.ndarray]:
    """Probabilities of the views of ``ExactTarget.bin`` under a CDF on ``grid``: the
    scoring bins and the basins (split at ``basin_edges``), outside last."""
    cuts = np.concatenate([[grid[0]], basin_edges, [grid[-1]]])
    return {"bins": _bin_mass(edges, grid, cdf_grid), "basins": _bin_mass(cuts, grid, cdf_grid)}


def score_profile(x, groups, target: ExactTarget, rng, n_boot: int = stats.N_BOOT):
    """Score samples x (n,) of a 1-D CV, in ``groups`` (n,), against its exact
    distribution: point metrics, 95 % CIs and bootstrap draws over the groups,
    curves for figures, and the raw (not noise-corrected) RMSEs."""
    binned = Binned.of(target.bin(x), target.n_bins, groups)
    point = target.metrics(binned.whole(), binned.sizes())
    weights = stats.resample_weights(binned.n_groups, n_boot, rng)
    draws = target.metrics(binned.draws(weights), binned.sizes(weights))
    values, cis, draws, raw = with_ci(point, draws)
    curves = target.curves(binned.whole()["bins"][0], binned.sizes()[0])
    return values, cis, draws, curves, raw


def score_quadrature(energy: np.ndarray, grid: np.ndarray, kT: float, target: ExactTarget):
    """The metrics of a model's own PMF (its energy on ``grid`` by quadrature, no
    sampling), prefixed ``quad_``, and its curve."""
    from cgflow.systems.base import ExactProfile

    model = ExactProfile.from_free_energy(np.asarray(grid, float), np.asarray(energy, float), kT)
    tiny = np.finfo(float).tiny  # a bin the model gives no mass has a finite, huge error
    masses = _masses(target.edges, target.basin_edges, model.grid, model.cdf)
    p = {k: np.maximum(v, tiny)[None] for k, v in masses.items()}
    values = {f"quad_{k}": float(v[0]) for k, v in target.metrics(p).items()}
    curves = target.curves(p["bins"][0])
    return values, {"centres": curves["centres"], "pmf_quadrature_kT": curves["pmf_model_kT"]}


# --- a 2-D surface of two angles against reference samples --------------------------


@dataclass(frozen=True)
class SurfaceGrid:
    """How a surface of two angles (radians, (-pi, pi]) is binned and scored.

    Attributes:
      bins: bins per angle of the fine grid (``fes_rmse_kT``, ``hist_mse``, JS).
      coarse_bins: bins per angle of the grid of the primary metric.
      f_max: bins whose reference free energy is more than ``f_max`` kT above its
        minimum are not scored by ``fes_wrmse_kT``.
      basins: basin of each (phi, psi) point, a function of (n, 2) -> (n,) ints.
      basin_names: their names; free energies are relative to the first.
    """

    bins: int
    coarse_bins: int
    f_max: float
    basins: object
    basin_names: tuple[str, ...]

    def bin(self, angles: np.ndarray) -> dict[str, np.ndarray]:
        fine = np.linspace(-np.pi, np.pi, self.bins + 1)
        coarse = np.linspace(-np.pi, np.pi, self.coarse_bins + 1)
        return {
            "fine": grid_index(angles, [fine, fine]),
            "coarse": grid_index(angles, [coarse, coarse]),
            "basins": np.asarray(self.basins(angles), int),
        }

    @property
    def n_bins(self) -> dict[str, int]:
        return {
            "fine": self.bins**2,
            "coarse": self.coarse_bins**2,
            "basins": len(self.basin_names),
        }

    def metrics(self, p, p_ref, n_samples) -> dict[str, np.ndarray]:
        """Metrics of model probabilities ``p`` against reference ``p_ref`` (views of
        ``bin``; rows are paired draws).

        Returns:
          One array of draws per metric:

          - fes_wrmse_kT: on the coarse grid, weighted by the reference probability, over
            bins within ``f_max`` kT of the reference minimum (the primary metric).
          - fes_rmse_kT: on the fine grid, every bin the reference populates alike.
          - hist_mse: mean squared difference of the fine histograms (Thaler et al. 2022).
          - js_divergence: of the fine histograms.
          - mass_outside: the model's probability on coarse bins the primary metric does
            not score (reference free energy ``f_max`` kT or more above its minimum, or
            never visited). fes_wrmse_kT removes the best shift, so it cannot see mass
            put where the reference is not; this can (the reference's own is ~0).
          - dF_<basin>_err_kT: error of each basin's free energy relative to the first.
        """
        pf, rf = p["fine"][..., :-1], p_ref["fine"][..., :-1]
        pc, rc = p["coarse"][..., :-1], p_ref["coarse"][..., :-1]
        f_rc = free_energy(rc)
        within = f_rc - f_rc.min(axis=-1, keepdims=True) < self.f_max
        out = {
            "fes_wrmse_kT": weighted_shifted_rms(
                free_energy(pc, n_samples) - f_rc, np.where(within, rc, 0.0)
            ),
            "fes_rmse_kT": weighted_shifted_rms(
                free_energy(pf, n_samples) - free_energy(rf), (rf > 0).astype(float)
            ),
            "hist_mse": np.mean((pf - rf) ** 2, axis=-1),
            "js_divergence": js_divergence(pf, rf),
            "mass_outside": np.sum(np.where(within, 0.0, pc), axis=-1)
            / np.maximum(np.sum(pc, axis=-1), 1e-300),
        }
        out.update(basin_errors(p["basins"], p_ref["basins"], self.basin_names, n_samples))
        return out


def score_surface(angles, groups, ref_angles, ref_groups, grid: SurfaceGrid, rng,
                  n_boot: int = stats.N_BOOT, names=("phi", "psi")):  # fmt: skip
    """Score samples of two angles (n, 2), in ``groups``, against reference samples
    in ``ref_groups``: point metrics, 95 % CIs and bootstrap draws (model groups
    resampled with ``rng``, reference groups with the fixed ``REFERENCE_SEED`` so that
    draws of models scored against the same reference are paired), curves, the raw
    (not noise-corrected) RMSEs, and each side's share of the CIs (``ci_by_side``)."""
    model = Binned.of(grid.bin(angles), grid.n_bins, groups)
    ref = Binned.of(grid.bin(ref_angles), grid.n_bins, ref_groups)
    point = grid.metrics(model.whole(), ref.whole(), model.sizes())
    w_mod = stats.resample_weights(model.n_groups, n_boot, rng)
    w_ref = stats.resample_weights(
        ref.n_groups, n_boot, np.random.default_rng(stats.REFERENCE_SEED)
    )
    draws = grid.metrics(model.draws(w_mod), ref.draws(w_ref), model.sizes(w_mod))
    values, cis, draws, raw = with_ci(point, draws)
    sides = ci_by_side(grid, point, model, ref, w_mod, w_ref)
    return values, cis, draws, surface_curves(angles, ref_angles, grid.bins, names), raw, sides


def ci_by_side(grid: SurfaceGrid, point, model: Binned, ref: Binned, w_mod, w_ref) -> dict:
    """The 95 % CI of each metric with one side resampled and the other whole:
    ``samples`` (the model's groups, e.g. CG replicas; the reference fixed) and
    ``reference`` (its blocks; the model's samples fixed). Which is the wider says
    what narrows the CI: more CG replicas, or a longer reference."""
    whole_mod, whole_ref = np.ones_like(w_mod), np.ones_like(w_ref)
    out = {}
    for side, (wm, wr) in (("samples", (w_mod, whole_ref)), ("reference", (whole_mod, w_ref))):
        side_draws = grid.metrics(model.draws(wm), ref.draws(wr), model.sizes(wm))
        out[side] = {k: list(v) for k, v in with_ci(point, side_draws)[1].items()}
    return out


def surface_curves(angles, reference, bins: int, names=("phi", "psi")) -> dict[str, np.ndarray]:
    """Both surfaces (kT) on the fine grid and the 1-D PMFs along each angle."""
    edges = np.linspace(-np.pi, np.pi, bins + 1)
    p_mod, _ = bin_probabilities(angles, [edges, edges])
    p_ref, _ = bin_probabilities(reference, [edges, edges])
    mask = p_ref > 0
    f_ref = free_energy(p_ref)
    f0 = f_ref[mask].min()
    curves = {
        f"{names[0]}_edges": edges,
        f"{names[1]}_edges": edges,
        "fes_reference_kT": np.where(mask, f_ref - f0, np.nan),
        "fes_model_kT": np.where(p_mod > 0, free_energy(p_mod) - f0, np.nan),
    }
    for axis, name in ((1, names[0]), (0, names[1])):  # 1-D PMFs: marginals
        for which, p in (("reference", p_ref), ("model", p_mod)):
            pmf = free_energy(p.sum(axis=axis))
            curves[f"pmf_{name}_{which}_kT"] = pmf - np.min(pmf[np.isfinite(pmf)])
    return curves
