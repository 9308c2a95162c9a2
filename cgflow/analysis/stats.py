"""Confidence intervals for the benchmark, and BAR free-energy differences.

A metric computed from histograms is recomputed on resampled data:

- a correlated time series (an MD reference) is cut into non-overlapping blocks a
  few statistical inefficiencies long, and the blocks are resampled with
  replacement (block bootstrap);
- independent CG replicas are resampled whole (each replica is one block);
- both are expressed as weights on groups of frames: ``resample_weights`` draws
  multinomial counts per group, and a resampled histogram is ``weights @ counts``
  with ``counts`` the per-group histograms, so one matrix product gives every draw.

Draws made with the same generator seed on the same groups are identical, which is
how two models scored against one reference are paired: the reference side of
their draws is the same, their CG sides are independent (so are their simulations).

The statistical inefficiency and BAR come from pymbar. pymbar's package import
pulls in JAX (about 2 s); it is imported only when one of them is called.
"""

from __future__ import annotations

import logging
import math

import numpy as np

N_BOOT = 1000
"""Bootstrap draws per metric."""
BLOCK_FACTOR = 2.0
"""Block length in statistical inefficiencies. Blocks of one inefficiency leave
out the correlation between neighbouring blocks: a 95 % CI of the mean of an
AR(1) series (phi = 0.9, 5,000 steps) covered the true mean in 86 % of 200
repeats; with two, 94.5 %; with four, 93.5 % (fewer blocks). tests/test_stats.py
checks the rate."""
REFERENCE_SEED = 20221103
"""Seed of the reference side of every bootstrap: all models scored against one
reference draw the same reference blocks, so their differences are paired."""


def _pymbar():
    # pymbar's import logs a warning that it will switch JAX to 64 bit; that happens
    # only when MBAR's solvers run, which cgflow never calls.
    logging.getLogger("pymbar").setLevel(logging.ERROR)
    import pymbar

    return pymbar


def statistical_inefficiency(series: np.ndarray) -> float:
    """g = 1 + 2 tau_int (in frames) of a time series, the largest over its columns.

    Args:
      series: (n,) or (n, k) observables along a trajectory.
    """
    x = np.asarray(series, float)
    x = x.reshape(len(x), -1)
    timeseries = _pymbar().timeseries
    g = 1.0
    for col in x.T:
        if np.ptp(col) > 0:
            g = max(g, float(timeseries.statistical_inefficiency(col, fast=False)))
    return g


def block_length(series: np.ndarray, factor: float = BLOCK_FACTOR) -> int:
    """Frames per bootstrap block: ``factor`` statistical inefficiencies, and at
    most a fifth of the series (so there are at least five blocks)."""
    n = len(series)
    g = statistical_inefficiency(series)
    return int(max(1, min(math.ceil(factor * g), n // 5)))


def block_labels(n: int, length: int) -> np.ndarray:
    """Block index of each of ``n`` frames for blocks of ``length`` frames (the last
    block takes the remainder)."""
    if length < 1 or n < 1:
        raise ValueError(f"need n >= 1 and length >= 1, got n={n}, length={length}")
    n_blocks = max(1, n // length)
    return np.minimum(np.arange(n) // length, n_blocks - 1)


def group_counts(bin_index: np.ndarray, groups: np.ndarray, n_bins: int) -> np.ndarray:
    """Histogram of each group of frames.

    Args:
      bin_index: flat bin of each frame (n,); -1 for a frame outside every bin.
      groups: group of each frame (n,), integers 0 .. n_groups - 1.
      n_bins: number of bins.

    Returns:
      counts (n_groups, n_bins + 1); the last column counts the frames outside.
    """
    bin_index = np.asarray(bin_index)
    groups = np.asarray(groups)
    n_groups = int(groups.max()) + 1
    flat = groups * (n_bins + 1) + np.where(bin_index < 0, n_bins, bin_index)
    counts = np.bincount(flat, minlength=n_groups * (n_bins + 1))
    return counts.reshape(n_groups, n_bins + 1).astype(float)


def group_sums(rows: np.ndarray, groups: np.ndarray, n_groups: int | None = None) -> np.ndarray:
    """(n_groups, ...) sums of ``rows`` (n, ...) over the frames of each group
    (``groups`` (n,), integers 0 .. n_groups - 1): what a group bootstrap resamples
    (``resample_weights(...) @ group_sums(...)``)."""
    groups = np.asarray(groups)
    n_groups = int(groups.max()) + 1 if n_groups is None else n_groups
    out = np.zeros((n_groups,) + np.shape(rows)[1:])
    np.add.at(out, groups, rows)
    return out


def resample_weights(n_groups: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, n_groups) multinomial counts: how often each group is drawn when
    ``n_groups`` groups are resampled with replacement."""
    picks = rng.integers(0, n_groups, size=(n_boot, n_groups))
    flat = (picks + n_groups * np.arange(n_boot)[:, None]).ravel()
    return np.bincount(flat, minlength=n_boot * n_groups).reshape(n_boot, n_groups).astype(float)


def percentile_ci(
    draws: np.ndarray, alpha: float = 0.05, keep_inf: bool = False
) -> tuple[float, float]:
    """Percentile interval of bootstrap draws. NaN draws are left out, and so are
    infinite ones unless ``keep_inf`` (a ratio whose denominator can be 0); no draw
    left gives NaN."""
    d = np.asarray(draws, float)
    d = d[~np.isnan(d)] if keep_inf else d[np.isfinite(d)]
    if d.size == 0:
        return math.nan, math.nan
    if keep_inf:
        ordered = np.sort(d)
        return _linear_quantile(ordered, alpha / 2), _linear_quantile(ordered, 1 - alpha / 2)
    lo, hi = np.quantile(d, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def _linear_quantile(ordered: np.ndarray, q: float) -> float:
    """np.quantile's default (linear) quantile of sorted draws, where an infinite
    neighbour gives that infinity (np.quantile gives NaN between two infinities)."""
    pos = q * (ordered.size - 1)
    i = int(math.floor(pos))
    low, frac = ordered[i], pos - i
    if frac == 0 or np.isinf(low):
        return float(low)
    return float(low + frac * (ordered[i + 1] - low))


def hierarchical_mean(draws_by_unit: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Draws of the mean over units (e.g. seeds) that each have their own bootstrap
    draws: units are resampled with replacement, then one of each chosen unit's
    draws is taken (a two-level bootstrap). With one unit it is that unit's draws.

    Args:
      draws_by_unit: one (n_boot,) array per unit.
    """
    draws = np.stack([np.asarray(d, float) for d in draws_by_unit])
    units, picks = _hierarchical_picks(*draws.shape, rng)
    return draws[units, picks].mean(axis=1)


def hierarchical_ratio(
    numerator_by_unit: list[np.ndarray],
    denominator_by_unit: list[np.ndarray],
    rng: np.random.Generator,
) -> np.ndarray:
    """Draws of mean(numerator) / mean(denominator) over units, paired: each draw
    resamples the units once and takes the same draw of a unit for both (two runs
    of a seed scored on the same reference blocks), as ``hierarchical_mean`` does
    for one quantity. A zero denominator gives inf (or nan for 0 / 0).

    Args:
      numerator_by_unit, denominator_by_unit: one (n_boot,) array per unit, the
        same units in the same order.
    """
    num = np.stack([np.asarray(d, float) for d in numerator_by_unit])
    den = np.stack([np.asarray(d, float) for d in denominator_by_unit])
    if num.shape != den.shape:
        raise ValueError(f"numerator draws {num.shape} and denominator draws {den.shape} differ")
    units, picks = _hierarchical_picks(*num.shape, rng)
    with np.errstate(divide="ignore", invalid="ignore"):
        return num[units, picks].mean(axis=1) / den[units, picks].mean(axis=1)


def _hierarchical_picks(n_units: int, n_boot: int, rng: np.random.Generator):
    """(n_boot, n_units) unit indices (units resampled) and draw indices."""
    units = rng.integers(0, n_units, size=(n_boot, n_units))
    picks = rng.integers(0, n_boot, size=(n_boot, n_units))
    return units, picks


def bar(w_forward: np.ndarray, w_reverse: np.ndarray) -> tuple[float, float]:
    """Bennett acceptance ratio: the free-energy difference f1 - f0 (in kT) and its
    standard error, from the reduced work u1 - u0 on samples of state 0
    (``w_forward``) and u0 - u1 on samples of state 1 (``w_reverse``).

    pymbar's default root finder (false position) can fail to converge on work
    distributions far apart or nearly identical; the other two solvers are tried
    before giving up.

    Raises:
      ValueError: when no solver converges (no overlap to speak of).
    """
    pymbar = _pymbar()
    w_forward, w_reverse = np.asarray(w_forward, float), np.asarray(w_reverse, float)
    errors = (pymbar.utils.ConvergenceError, pymbar.utils.BoundsError, FloatingPointError)
    for method in ("false-position", "self-consistent-iteration", "bisection"):
        try:
            out = pymbar.other_estimators.bar(
                w_forward, w_reverse, compute_uncertainty=True, method=method
            )
        except errors:
            continue
        if np.isfinite(out["Delta_f"]):
            return float(out["Delta_f"]), float(out["dDelta_f"])
    raise ValueError("BAR did not converge with any of pymbar's solvers")
