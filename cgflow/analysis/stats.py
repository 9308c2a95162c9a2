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

A statement about a method, not about one trained model, is a mean over seeds
(independent trainings). Its interval (``seed_mean_ci``, ``seed_ratio_ci``) is a
Student-t interval over the seeds' point values, so the spread between trainings
is in it with the right width at small n, plus the part of the sampling noise that
every seed shares (the test reference's blocks, the same in every seed's draws),
which the seeds' spread cannot show. A two-level bootstrap (seeds resampled, then
each seed's draws) resamples only the seeds there are: with 3 seeds it draws from
10 multisets, and its interval is too narrow (tests/test_stats.py measures both
intervals' coverage).

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
REFERENCE_SEED = 20_221_103
"""Seed of the reference side of every bootstrap: all models scored against one
reference draw the same reference blocks, so their differences are paired."""


def _pymbar():
    # pymbar's import logs a warning that it will switch JAX to 64 bit; that happens
    # only when MBAR's solvers run, which cgflow never calls.
    logging.getLogger("pymbar").setLevel(logging.ERROR)
    import pymbar

    return pymbar


def _segments(n: int, runs) -> list[slice]:
    """The frames of each run of a pooled series (``runs``: each frame's run, in
    order), or one segment without it."""
    if runs is None:
        return [slice(0, n)]
    runs = np.asarray(runs)
    if runs.shape != (n,):
        raise ValueError(f"runs has shape {runs.shape}; needs one per frame ({n},)")
    edges = np.flatnonzero(np.diff(runs)) + 1
    bounds = np.r_[0, edges, n]
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def statistical_inefficiency(series: np.ndarray, runs=None) -> float:
    """g = 1 + 2 tau_int (in frames) of a time series, the largest over its columns.

    Args:
      series: (n,) or (n, k) observables along a trajectory.
      runs: for a series pooled from independent runs, each frame's run (in
        order): g then comes from the runs' autocorrelations about their pooled
        mean (pymbar's ``statistical_inefficiency_multiple``), so that neither a
        join nor a run that stays in one basin while another stays in a second looks
        like fast mixing.
    """
    x = np.asarray(series, float)
    x = x.reshape(len(x), -1)
    timeseries = _pymbar().timeseries
    parts = _segments(len(x), runs)
    g = 1.0
    for col in x.T:
        if np.ptp(col) > 0:
            if len(parts) > 1:
                found = timeseries.statistical_inefficiency_multiple([col[p] for p in parts])
            else:
                found = timeseries.statistical_inefficiency(col, fast=False)
            g = max(g, float(found))
    return g


def block_length(series: np.ndarray, factor: float = BLOCK_FACTOR, runs=None) -> int:
    """Frames per bootstrap block: ``factor`` statistical inefficiencies, and at
    most a fifth of the series (so there are at least five blocks)."""
    n = len(series)
    g = statistical_inefficiency(series, runs)
    return int(max(1, min(math.ceil(factor * g), n // 5)))


def block_labels(n: int, length: int, runs=None) -> np.ndarray:
    """Block index of each of ``n`` frames for blocks of ``length`` frames (the last
    block of a run takes the remainder). With ``runs`` (each frame's run, in order),
    blocks lie within one run, so a block never spans the join of two runs."""
    if length < 1 or n < 1:
        raise ValueError(f"need n >= 1 and length >= 1, got n={n}, length={length}")
    out, offset = np.empty(n, np.int64), 0
    for part in _segments(n, runs):
        m = part.stop - part.start
        n_blocks = max(1, m // length)
        out[part] = offset + np.minimum(np.arange(m) // length, n_blocks - 1)
        offset += n_blocks
    return out


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


def shared_covariance(draws: np.ndarray) -> np.ndarray:
    """(k, k) covariance of the part of the sampling noise that every seed shares.

    Draw b of every seed reuses reference resample b, so two seeds' draws covary
    through the reference alone: the mean over pairs of distinct seeds of their
    draws' cross-covariance estimates it (symmetrised, negative eigenvalues set to
    zero). Draw indices where any draw is not finite are left out.

    Args:
      draws: (n_seeds, k, n_boot) bootstrap draws of k quantities per seed.
    """
    d = np.asarray(draws, float)
    n, k, _ = d.shape
    if n < 2:
        return np.zeros((k, k))
    d = d[:, :, np.isfinite(d).all(axis=(0, 1))]
    if d.shape[2] < 2:
        return np.zeros((k, k))
    c = d - d.mean(axis=2, keepdims=True)
    total = np.einsum("ikb,jlb->kl", c, c) / (d.shape[2] - 1)  # sum over all seed pairs
    own = np.einsum("ikb,ilb->kl", c, c) / (d.shape[2] - 1)  # i == j
    cross = (total - own) / (n * (n - 1))
    cross = (cross + cross.T) / 2
    w, v = np.linalg.eigh(cross)
    return (v * np.clip(w, 0.0, None)) @ v.T


def _seed_moments(values: np.ndarray, draws: np.ndarray):
    """Mean over seeds of k quantities and its covariance in two parts: the seeds'
    spread (sample covariance / n) and the shared sampling noise.

    Args:
      values: (n_seeds, k) point values; draws: (n_seeds, k, n_boot).
    """
    values = np.asarray(values, float)
    n = len(values)
    between = np.atleast_2d(np.cov(values.T, ddof=1)) / n
    return values.mean(axis=0), between, shared_covariance(draws)


def _t_quantile(n: int, between: float, shared: float, alpha: float) -> float:
    """Student-t quantile with Welch-Satterthwaite degrees of freedom: n - 1 for the
    seeds' part, the shared part taken as known (it comes from many draws)."""
    from scipy.stats import t

    total = between + shared
    dof = math.inf if between <= 0 else (n - 1) * total**2 / between**2
    return float(t.ppf(1 - alpha / 2, dof))


def seed_mean_ci(
    values: np.ndarray, draws_by_seed: list[np.ndarray], alpha: float = 0.05
) -> tuple[float, float]:
    """CI of the mean over seeds of one quantity (an error, or a paired difference).

    A random-effects t-interval: mean +- t * sqrt(max(s^2, v_own) / n + v_shared),
    with s^2 the variance of the seeds' point values (training spread and each
    seed's own sampling noise), v_own the mean over seeds of the sampling variance
    that is a seed's own (its draws' variance less the shared part), and v_shared
    the sampling noise all seeds share (``shared_covariance``). The floor v_own is
    the DerSimonian-Laird truncation (the training spread is not negative): seeds
    that agree by chance more closely than their own noise allows do not shrink the
    interval below it. t has n - 1 degrees of freedom (Welch-Satterthwaite with
    the shared part, and the floor where it binds, known from the draws). With one
    seed there is no spread to measure: the interval is that seed's percentile
    interval, a statement about one trained model, not about the method.

    Args:
      values: (n_seeds,) point values.
      draws_by_seed: one (n_boot,) array of bootstrap draws per seed.
    """
    values = np.asarray(values, float)
    if len(values) < 2:
        return percentile_ci(draws_by_seed[0], alpha)
    draws = np.stack([np.asarray(d, float) for d in draws_by_seed])
    mean, between, shared = _seed_moments(values[:, None], draws[:, None, :])
    vs = float(shared[0, 0])
    own = [np.var(d[np.isfinite(d)], ddof=1) for d in draws if np.isfinite(d).sum() > 1]
    v_own = max(0.0, float(np.mean(own)) - vs) if own else 0.0
    vb = float(between[0, 0])
    if vb < v_own / len(values):  # the floor binds: a variance known from many draws
        vs, vb = vs + v_own / len(values), 0.0
    half = _t_quantile(len(values), vb, vs, alpha) * math.sqrt(vb + vs)
    return float(mean[0] - half), float(mean[0] + half)


def seed_ratio_ci(
    num_values: np.ndarray,
    den_values: np.ndarray,
    num_draws: list[np.ndarray],
    den_draws: list[np.ndarray],
    alpha: float = 0.05,
) -> tuple[float, float]:
    """Fieller CI of mean(num) / mean(den) over seeds, paired (both measured on each
    seed): the ratios R with (mean(num) - R mean(den))^2 <= t^2 Var(num - R den),
    the variance from the seeds' spread plus the shared sampling noise as in
    ``seed_mean_ci``. When the denominator's CI reaches zero the set is unbounded and
    an end is infinite. One seed: the percentile interval of its draws' ratios.

    Args:
      num_values, den_values: (n_seeds,) point values.
      num_draws, den_draws: one (n_boot,) array per seed each.
    """
    num_values, den_values = np.asarray(num_values, float), np.asarray(den_values, float)
    n = len(num_values)
    if n < 2:
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.asarray(num_draws[0], float) / np.asarray(den_draws[0], float)
        return percentile_ci(ratio, alpha, keep_inf=True)
    values = np.stack([num_values, den_values], axis=1)
    draws = np.stack([np.stack([np.asarray(a, float), np.asarray(b, float)])
                      for a, b in zip(num_draws, den_draws, strict=True)])  # fmt: skip
    (b, m), between, shared = _seed_moments(values, draws)
    with np.errstate(divide="ignore", invalid="ignore"):
        r_hat = b / m
    a = np.array([1.0, -r_hat if np.isfinite(r_hat) else 0.0])
    t = _t_quantile(n, float(a @ between @ a), float(a @ shared @ a), alpha)
    v = between + shared
    a2 = m**2 - t**2 * v[1, 1]
    a1 = -2.0 * (b * m - t**2 * v[0, 1])
    a0 = b**2 - t**2 * v[0, 0]
    disc = a1**2 - 4.0 * a2 * a0
    if disc < 0:  # every ratio is in the set
        return -math.inf, math.inf
    if a2 == 0:  # one root: a ray
        root = -a0 / a1
        return (root, math.inf) if a1 < 0 else (-math.inf, root)
    roots = sorted((-a1 + s * math.sqrt(disc)) / (2 * a2) for s in (-1.0, 1.0))
    if a2 > 0:
        return float(roots[0]), float(roots[1])
    # the set is the outside of (roots[0], roots[1]): the ray that holds the estimate
    if np.isfinite(r_hat) and r_hat >= roots[1]:
        return float(roots[1]), math.inf
    return -math.inf, float(roots[0])


def proportion_difference_ci(
    x1: int, n1: int, x2: int, n2: int, alpha: float = 0.05
) -> tuple[float, float]:
    """Newcombe's hybrid score CI of p1 - p2 from x1 of n1 and x2 of n2 independent
    trials (e.g. the runs of two methods that blew up): each side's Wilson score
    interval (scipy), combined as the square root of the sum of their squared
    one-sided distances. Unlike the Wald interval it keeps its coverage at a few
    trials and at counts of 0 or n (Newcombe 1998, Stat. Med. 17, 873)."""
    from scipy.stats import binomtest

    if min(n1, n2) < 1 or not (0 <= x1 <= n1 and 0 <= x2 <= n2):
        raise ValueError(f"need 0 <= x <= n and n >= 1, got {x1}/{n1} and {x2}/{n2}")
    (p1, (l1, u1)), (p2, (l2, u2)) = (
        (x / n, binomtest(x, n).proportion_ci(1 - alpha, method="wilson"))
        for x, n in ((x1, n1), (x2, n2))
    )
    d = p1 - p2
    return (
        float(d - math.hypot(p1 - l1, u2 - p2)),
        float(d + math.hypot(u1 - p1, p2 - l2)),
    )


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


def exp_average(w_forward: np.ndarray) -> float:
    """One-sided exponential averaging (EXP, Zwanzig): the free-energy difference
    f1 - f0 (in kT) from the reduced works u1 - u0 on samples of state 0 alone,
    -ln <exp(-w)>_0 (pymbar)."""
    out = _pymbar().other_estimators.exp(np.asarray(w_forward, float), compute_uncertainty=False)
    return float(out["Delta_f"])
