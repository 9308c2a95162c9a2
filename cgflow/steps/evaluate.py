"""The ``evaluate`` step: score one CG simulation (or a reference data set) with 95 %
confidence intervals."""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from cgflow.analysis import stats
from cgflow.analysis.fes import (
    ExactTarget,
    SurfaceGrid,
    score_profile,
    score_quadrature,
    score_surface,
)
from cgflow.analysis.records import RUN_KEYS, MetricsRecord, RunId
from cgflow.io import load_dataset, read_json, save_dataset, write_json
from cgflow.provenance import check_same
from cgflow.simulate.status import GeneratorStatus, SimulationStatus, read_status
from cgflow.systems import (
    cv_feature_values,
    evaluation_settings,
    get_map,
    reference_settings,
    scored_exactly,
)

MAX_GROUPS = 200
"""At most this many bootstrap groups per data set: frames of a data set without
replicas are cut into blocks of at least n / MAX_GROUPS frames (which any block
bootstrap allows; it bounds the memory of the draws)."""


def time_blocks(system, cv_values: np.ndarray, runs=None) -> tuple[np.ndarray, int]:
    """Block of each frame of a time series of CV values, and the block length: two
    statistical inefficiencies of the slowest of the CVs (cos and sin of angles) and
    the basin indicators. ``runs``: a pooled reference's run of each frame (blocks
    stay within a run)."""
    series = cv_feature_values(system, cv_values)
    basins = np.asarray(system.basins(cv_values))
    onehot = (basins[:, None] == np.arange(len(system.basin_names))).astype(float)
    series = np.concatenate([series, onehot], axis=1)
    n = len(series)
    length = max(stats.block_length(series, runs=runs), math.ceil(n / MAX_GROUPS))
    return stats.block_labels(n, length, runs), int(length)


def basin_relaxation(system, cv_values: np.ndarray, interval: float | None,
                     runs=None) -> dict:  # fmt: skip
    """How slowly a time series moves between the system's basins: the integrated
    autocorrelation time tau of each basin's occupancy indicator (pymbar's
    statistical inefficiency g = 1 + 2 tau), the largest over the basins visited.

    Args:
      cv_values: (n_frames, n_cv) CV values of consecutive frames.
      interval: time between frames (None: report frames only).
      runs: a pooled reference's run of each frame: tau from the runs'
        autocorrelations about their pooled mean.

    Returns:
      ``tau_frames`` (the slowest basin's), ``tau`` (times ``interval``; NaN without
      it), ``slowest_basin``, ``n_frames`` and ``independent_samples``: n_frames / g,
      the effectively independent basin samples the run holds (a few tens at least
      for basin free energies to mean much).
    """
    basins = np.asarray(system.basins(cv_values))
    taus = {}
    for b, name in enumerate(system.basin_names):
        indicator = (basins == b).astype(float)
        if 0 < indicator.mean() < 1:
            taus[name] = (stats.statistical_inefficiency(indicator, runs) - 1.0) / 2.0
    n = len(basins)
    if not taus:
        return {"tau_frames": math.nan, "tau": math.nan, "slowest_basin": None,
                "n_frames": n, "independent_samples": math.nan}  # fmt: skip
    slowest = max(taus, key=taus.get)
    tau = taus[slowest]
    return {
        "tau_frames": tau,
        "tau": tau * interval if interval else math.nan,
        "slowest_basin": slowest,
        "n_frames": n,
        "independent_samples": n / (2.0 * tau + 1.0),
        "n_runs": 1 if runs is None else int(np.max(runs)) + 1,
    }


def groups_of(system, samples: dict, cv_values: np.ndarray,
              frame_interval: float | None = None) -> tuple[np.ndarray, dict]:  # fmt: skip
    """Bootstrap groups of a data set: its CG replicas where it has them (each an
    independent chain), else blocks of its time series, within each of its pooled
    runs where it has ``run`` (with the series' basin relaxation time,
    ``frame_interval`` being the time between its frames)."""
    if "replica" in samples:
        replica = np.asarray(samples["replica"])
        info = {"groups": "replicas", "n_groups": int(replica.max()) + 1}
        if len(system.basin_names) > 1:  # a liquid has none
            info["replicas_crossing"] = replicas_crossing(system, cv_values, replica)
        return replica, info
    runs = samples.get("run")
    labels, length = time_blocks(system, cv_values, runs)
    return labels, {
        "groups": "time blocks",
        "n_groups": int(labels.max()) + 1,
        "block_length": length,
        "basin_relaxation": basin_relaxation(system, cv_values, frame_interval, runs),
    }


def replicas_crossing(system, cv_values: np.ndarray, replica: np.ndarray) -> float:
    """Share of the replicas whose frames lie in more than one of the system's basins.

    Near 0, the replicas stayed in the basins they started in, so the basin
    populations of the samples are those of the start frames (drawn from the
    training reference), not the model's own, and a bootstrap over replicas measures
    the start frames' spread. A frame on the far side of a basin's edge counts as a
    visit, so this is an upper bound on the replicas that relaxed between basins."""
    basins = np.asarray(system.basins(cv_values))
    replica = np.asarray(replica)
    n = int(replica.max()) + 1
    seen = np.zeros((n, len(system.basin_names)), bool)
    inside = basins >= 0  # a frame in no basin visits none
    seen[replica[inside], basins[inside]] = True
    return float(np.mean(seen.sum(axis=1) > 1))


def _mixing(groups: dict) -> dict:
    """``replicas_crossing`` as a metric, for samples grouped by replicas."""
    found = groups["samples"].get("replicas_crossing")
    return {} if found is None else {"replicas_crossing": found}


def _run_id(run: RunId | dict) -> RunId:
    """A run's identity, from one or from its dict (ValueError naming what it lacks)."""
    if isinstance(run, RunId):
        return run
    missing = [k for k in RUN_KEYS if k not in run]
    if missing:
        raise ValueError(f"run identity lacks {missing}")
    return RunId.from_json(run)


def run_seed(run: RunId) -> int:
    """Seed of the model side of a run's bootstrap, from its identity."""
    key = "/".join(str(getattr(run, k)) for k in RUN_KEYS[:-1])
    return zlib.crc32(key.encode())


def exact_target(system, settings, kT: float) -> ExactTarget:
    return ExactTarget.of(
        system.exact_profile(kT), kT, settings.bins, settings.density_threshold,
        system.basin_edges, system.basin_names,
    )  # fmt: skip


def surface_grid(system, settings) -> SurfaceGrid:
    return SurfaceGrid(
        settings.bins, settings.coarse_bins, settings.f_max, system.basins, system.basin_names
    )


def quadrature(system, cg_map, model_dir: str, target: ExactTarget, kT: float):
    """The model's own PMF along the CV by quadrature of its energy (1-D systems
    whose CG configuration is the CV): metrics prefixed ``quad_`` and its curve."""
    import jax
    import jax.numpy as jnp

    from cgflow.models import is_temperature_aware, load_model

    if cg_map.coord_matrix.shape[0] != 1 or system.dim != 1:
        raise ValueError(f"{system.type}: quadrature needs one CG bead in one dimension")
    # at the scored kT: a temperature-aware model reads it, any other is scored as it
    # is (for fm_nearest, away from the temperature it was trained at)
    energy_fn, params, desc = load_model(model_dir, kT=kT, transfer=True)
    if not desc.usable:  # its training diverged: no model to score
        return {}, {}
    profile = system.exact_profile(kT)
    grid = profile.grid[::20]
    positions = jnp.asarray(grid, jnp.float32).reshape(-1, 1, 1)
    energy = np.asarray(jax.jit(jax.vmap(lambda r: energy_fn(params, r)))(positions), float)
    if not np.all(np.isfinite(energy)):
        return {}, {}
    values, curves = score_quadrature(energy, grid, kT, target)
    exact = system.mean_energy_x1(grid, kT) if is_temperature_aware(desc) else None
    if exact is not None:
        weights = np.exp(-(profile.free_energy[::20] - profile.free_energy.min()) / kT)
        values_e, curves_e = _mean_energy_error(desc, params, positions, grid, kT, exact,
                                                weights / weights.sum())  # fmt: skip
        values.update(values_e)
        curves.update(curves_e)
        offsets = desc.training.get("energy_offsets")
        if offsets:
            from cgflow.models import build_free_energy

            values.update(thermodynamics(build_free_energy(desc), params, system, kT, offsets))
    return values, curves


def thermodynamics(free_energy_fn, params, system, kT: float, offsets, h: float = 0.02) -> dict:
    """A free energy A(params, R, kT)'s prediction of the mean all-atom energy <U>(T)
    and the heat capacity C = d<U>/dT (k_B = 1) of the ensemble, by quadrature
    along the CV, against the exact ones: <U> = <d(beta A)/d beta>_A + c(beta), c
    through the training temperatures' offsets (``em.mean_energy_offset``); C by
    central differences (kT +- h kT). Metrics: ``quad_mean_energy_err_kT`` (in kT)
    and ``quad_heat_capacity_err`` (in k_B)."""
    import jax
    import jax.numpy as jnp

    from cgflow.methods.em import beta_derivative, mean_energy_offset

    A = free_energy_fn
    d_beta_a = jax.jit(jax.vmap(beta_derivative(A), (None, 0, None)))
    free = jax.jit(jax.vmap(A, (None, 0, None)))

    def mean_energies(t):
        """(predicted, exact) <U> at kT t, on one exact profile's grid."""
        prof = system.exact_profile(t)
        R = jnp.asarray(prof.grid[::20], jnp.float32).reshape(-1, 1, 1)
        a = np.asarray(free(params, R, float(t)), float)
        w = np.exp(-(a - a.min()) / t)
        model = float(np.sum(w * np.asarray(d_beta_a(params, R, float(t)), float)) / w.sum())
        w = np.exp(-(prof.free_energy - prof.free_energy.min()) / t)
        exact = float(np.sum(w * system.mean_energy_x1(prof.grid, t)) / np.sum(w))
        return np.array([model + mean_energy_offset(offsets, t), exact])

    dt = h * kT
    low, mid, high = (mean_energies(t) for t in (kT - dt, kT, kT + dt))
    heat = (high - low) / (2 * dt)
    return {
        "quad_mean_energy_err_kT": float(mid[0] - mid[1]) / kT,
        "quad_heat_capacity_err": float(heat[0] - heat[1]),
    }


def _mean_energy_error(desc, params, positions, grid, kT, exact, weights):
    """A temperature-aware model's conditional all-atom energy, d(beta A)/d beta,
    against the exact <U | x> on ``grid`` (``exact``), both up to a constant (the offset c(beta)
    is not learned): the probability-weighted RMSE in kT after the weighted mean
    difference is removed (``quad_energy_wrmse_kT``), and both curves."""
    import jax

    from cgflow.methods.em import beta_derivative
    from cgflow.models import build_free_energy

    d_beta_a = jax.jit(jax.vmap(beta_derivative(build_free_energy(desc)), (None, 0, None)))
    model = np.asarray(d_beta_a(params, positions, float(kT)), float)
    exact = np.asarray(exact, float)
    diff = model - exact
    offset = float(np.sum(weights * diff))
    error = float(np.sqrt(np.sum(weights * (diff - offset) ** 2)) / kT)
    curves = {
        "mean_energy_grid": np.asarray(grid, float),
        "mean_energy_model_kT": (model - offset) / kT,
        "mean_energy_exact_kT": exact / kT,
    }
    return {"quad_energy_wrmse_kT": error}, curves


def sampled_thermodynamics(model_dir: str, samples: dict, groups, reference: dict,
                           ref_groups, kT: float, rng, chunk: int = 2048):  # fmt: skip
    """A temperature-aware model's <U> and heat capacity at kT from its own CG
    samples, against the reference's all-atom energies (:mod:`cgflow.analysis.thermo`),
    and (``*_on_reference``) the errors of the same formulas over the reference's
    frames instead of the model's samples: what its energy gets wrong where the
    reference is, apart from where its own sampling goes. Empty for models that are
    not free energies A(R, kT) with fitted offsets, and for references without
    all-atom energies."""
    import jax
    import jax.numpy as jnp

    from cgflow.analysis.thermo import ModelEnergies, ReferenceEnergies, score_thermodynamics
    from cgflow.methods.em import beta_derivatives, mean_energy_offset, mean_energy_offset_slope
    from cgflow.models import build_free_energy, is_temperature_aware, load_model

    _, params, desc = load_model(model_dir)
    offsets = desc.training.get("energy_offsets")
    if not (is_temperature_aware(desc) and offsets and "aa_energies" in reference):
        return {}, {}, {}
    both = jax.jit(jax.vmap(beta_derivatives(build_free_energy(desc)), (None, 0, None)))

    def derivatives(positions):
        positions = np.asarray(positions, np.float32)
        parts = [both(params, jnp.asarray(positions[i:i + chunk]), float(kT))
                 for i in range(0, len(positions), chunk)]  # fmt: skip
        return (np.concatenate([np.asarray(p[k], float) for p in parts]) for k in (0, 1))

    offset = (mean_energy_offset(offsets, kT), mean_energy_offset_slope(offsets, kT))
    ref = ReferenceEnergies(reference["aa_energies"], ref_groups)
    model = ModelEnergies(*derivatives(samples["positions"]), groups, *offset)
    values, cis, draws = score_thermodynamics(model, ref, kT, rng)
    # the same on the reference's frames: the energy model without the model's sampling
    on_frames = ModelEnergies(*derivatives(reference["positions"]), ref_groups, *offset)
    on_ref = score_thermodynamics(on_frames, ref, kT, rng, same_frames=True)
    for part, found in zip((values, cis, draws), on_ref, strict=True):
        part.update({f"{k}_on_reference": v for k, v in found.items()
                     if k in ("mean_energy_err_kT", "heat_capacity_err")})  # fmt: skip
    return values, cis, draws


def _thermodynamics_of(scoring: Scoring, model_dir, samples, ref_data, rng):
    system, interval = scoring.system, scoring.frame_interval
    cv = system.cv(scoring.cg_map)
    groups, _ = groups_of(system, samples, cv(samples["positions"]), interval)
    ref_groups, _ = groups_of(system, _runs_of(ref_data), cv(ref_data["positions"]), interval)
    return sampled_thermodynamics(model_dir, samples, groups, ref_data, ref_groups, scoring.kT,
                                  rng)  # fmt: skip


def _runs_of(data: dict) -> dict:
    """A data set's ``run`` labels (a pooled reference), for ``groups_of``."""
    return {"run": data["run"]} if "run" in data else {}


def sampling_speed(status: SimulationStatus | GeneratorStatus, meta: dict) -> dict:
    """How fast the scored frames were made: a CG simulation's ns/day per replica and
    summed over replicas (its status), or for a reference data set the all-atom
    MD's ns/day (the metadata of the all-atom set it was mapped from). Empty where
    none was measured (exact samples, generators)."""
    if not status.generator and status.ns_per_day_all_replicas is not None:
        return {"kind": "cg", "ns_per_day_per_replica": status.ns_per_day_per_replica,
                "ns_per_day_all_replicas": status.ns_per_day_all_replicas}  # fmt: skip
    source = meta.get("source") if isinstance(meta, dict) else None
    if source:
        from cgflow.io import meta_path

        path = meta_path(source)
        if path.is_file():
            aa = read_json(path)
            if aa.get("ns_per_day") is not None:
                return {"kind": "aa", "ns_per_day": aa["ns_per_day"],
                        "n_atoms_simulated": aa.get("n_atoms_simulated")}  # fmt: skip
    return {}


def _latent(system, cg_map, samples: dict, run: RunId):
    """CV discovery scores of a generator's samples (:mod:`cgflow.analysis.latent`)."""
    from cgflow.analysis.latent import latent_scores

    cv_values = system.cv(cg_map)(samples["positions"])
    rng = np.random.default_rng(run_seed(run) + 1)
    return latent_scores(samples["latent"], cv_values, system.cv_names, system.cv_periodic,
                         samples["replica"], rng)  # fmt: skip


@dataclass(frozen=True)
class Scoring:
    """How a system's samples are scored: the system and map whose CVs are scored, its
    ``evaluation`` settings, the thermal energy, and the time between a time
    series' frames (for its basin relaxation time; None: frames only)."""

    system: Any
    cg_map: Any
    settings: Any
    kT: float
    frame_interval: float | None = None

    @classmethod
    def of(cls, study, mapping: str, kT: float) -> Scoring:
        """The study's scoring of its system under ``mapping`` at ``kT``."""
        system = study.build_system()
        reference = reference_settings(system, study.entry)
        return cls(system, get_map(system, mapping), evaluation_settings(system, study.entry),
                   kT, reference.frame_interval)  # fmt: skip

    def exact_target(self) -> ExactTarget:
        return exact_target(self.system, self.settings, self.kT)


@dataclass(frozen=True)
class Reference:
    """The frames CG samples are scored against (systems scored on a reference):
    their positions, a liquid's virial pressure of each frame (or None), and each
    frame's run where the reference pools several (or None)."""

    positions: np.ndarray
    pressure: np.ndarray | None = None
    runs: np.ndarray | None = None

    @classmethod
    def of(cls, data: dict) -> Reference:
        return cls(data["positions"], data.get("pressure_bar"), data.get("run"))


class Scores(NamedTuple):
    """What scoring gives: the metrics, their 95 % CIs, the bootstrap draws, the
    curves for the figures, the raw (noise-biased) metrics before correction, and how
    the frames were grouped (``samples``, ``reference``, ``ci95_by_side``)."""

    metrics: dict
    cis: dict
    draws: dict
    curves: dict
    raw: dict
    groups: dict


class _Sampled(NamedTuple):
    """The samples' side: the data set, its CV values, bootstrap groups and how they
    were formed."""

    samples: dict
    values: np.ndarray
    groups: np.ndarray
    info: dict


def score(scoring: Scoring, samples: dict, reference: Reference | None = None, rng=None,
          target: ExactTarget | None = None) -> Scores:  # fmt: skip
    """The system's metrics for CG ``samples`` (``positions``, and ``replica`` where
    they come from CG replicas, ``run`` where they are a pooled reference), by the
    scorer of its figure kind: against the exact profile (``target``, default the
    system's at kT) or against ``reference``. A liquid's samples with a
    ``pressure_bar`` are scored against the reference's pressure too."""
    rng = rng if rng is not None else np.random.default_rng(0)
    system = scoring.system
    values = system.cv(scoring.cg_map)(samples["positions"])
    groups, info = groups_of(system, samples, values, scoring.frame_interval)
    sampled = _Sampled(samples, values, groups, info)
    if not scored_exactly(system) and reference is None:
        raise ValueError(f"{system.type}: scoring needs reference positions")
    return _SCORERS[system.figure_kind](scoring, sampled, reference, rng, target)


def _score_profile(scoring: Scoring, sampled: _Sampled, reference, rng, target) -> Scores:
    """A 1-D system: the CV's free-energy profile against the exact one."""
    del reference
    target = target if target is not None else scoring.exact_target()
    scored = score_profile(sampled.values[:, 0], sampled.groups, target, rng)
    return Scores(*scored, {"samples": sampled.info})


def _reference_side(scoring: Scoring, reference: Reference):
    system = scoring.system
    ref_values = system.cv(scoring.cg_map)(reference.positions)
    ref_runs = {} if reference.runs is None else {"run": reference.runs}
    ref_groups, ref_info = groups_of(system, ref_runs, ref_values, scoring.frame_interval)
    return ref_values, ref_groups, ref_info


def _score_structure(scoring: Scoring, sampled: _Sampled, reference: Reference, rng,
                     target) -> Scores:  # fmt: skip
    """A liquid: g(r), the ADF and, with pressures on both sides, the pressure."""
    from cgflow.analysis.structure import score_pressure, score_structure

    del target
    _, ref_groups, ref_info = _reference_side(scoring, reference)
    samples = sampled.samples
    box = np.full(3, scoring.system.box_nm)
    scored = score_structure(samples["positions"], sampled.groups, reference.positions,
                             ref_groups, box, scoring.settings, rng)  # fmt: skip
    if "pressure_bar" in samples and reference.pressure is not None:
        pressure = score_pressure(samples["pressure_bar"], sampled.groups, reference.pressure,
                                  ref_groups, rng)  # fmt: skip
        for part, found in zip(scored[:3], pressure, strict=True):
            part.update(found)
    return Scores(*scored, {"samples": sampled.info, "reference": ref_info})


def _score_surface(scoring: Scoring, sampled: _Sampled, reference: Reference, rng,
                   target) -> Scores:  # fmt: skip
    """A molecule: the free-energy surface of its CVs and its basins."""
    del target
    ref_values, ref_groups, ref_info = _reference_side(scoring, reference)
    grid = surface_grid(scoring.system, scoring.settings)
    *scored, sides = score_surface(sampled.values, sampled.groups, ref_values, ref_groups, grid,
                                   rng, names=scoring.system.cv_names)  # fmt: skip
    return Scores(*scored, {"samples": sampled.info, "reference": ref_info,
                            "ci95_by_side": sides})  # fmt: skip


_SCORERS = {"profile_1d": _score_profile, "structure": _score_structure,
            "surface_2d": _score_surface}  # fmt: skip
"""The scorer of each figure kind (:data:`cgflow.systems.base.FIGURE_KINDS`)."""


def evaluate_step(
    study,
    samples_path: str,
    run: RunId | dict,
    out: str,
    status_path: str | None = None,
    reference_path: str | None = None,
    model_dir: str | None = None,
) -> dict:
    """Compute the system's metrics, with 95 % CIs, for the positions in ``samples_path``.

    Systems with an exact answer (``profile_1d``) are scored against it; the others
    against the positions in ``reference_path`` (the held-out test reference). CIs
    are bootstrap percentiles over the samples' groups (CG replicas, or blocks of a
    reference time series) and the reference's blocks; the reference side is drawn
    with a fixed seed, so two runs scored against one reference have paired draws.
    With ``model_dir``: for 1-D systems the model's PMF by quadrature is scored too;
    for a temperature-aware model scored against a reference with all-atom
    energies, its <U> and heat capacity (``sampled_thermodynamics``).

    Writes ``out`` (metrics.json: the run's identity, its metrics, their CIs
    ``ci95``, how the bootstrap grouped the frames, each side's CIs where a surface's
    samples and reference are both resampled (``ci95_by_side``, see
    ``cgflow.analysis.fes.ci_by_side``), and the system's primary metric
    and figure kind), ``curves.npz`` (profiles for figures) and ``bootstrap.npz``
    (the draws of each metric, for paired differences) beside it. An unstable
    simulation gets ``stable = 0`` and NaN for every sampled metric.
    """
    run = _run_id(run)
    samples, meta = load_dataset(samples_path, required=("positions",))
    status = _status(status_path, samples_path, meta)
    scoring = Scoring.of(study, run.mapping, meta["kT"])
    system = scoring.system
    asked = {"system": study.system, "mapping": run.mapping, "kT": system.kT(run.temperature)}
    check_same(str(samples_path), meta, f"the run asked for (system {study.system}, --mapping "
               f"{run.mapping}, --temperature {run.temperature:g})", asked)  # fmt: skip
    if model_dir:
        _check_model(model_dir, samples_path, meta)
    target = scoring.exact_target() if scored_exactly(system) else None
    if status.stable and samples["positions"].shape[0] > 0:
        ref_data = None
        if target is None:
            if not reference_path:
                raise ValueError(f"{system.type}: scoring needs a reference data set")
            ref_data, ref_meta = load_dataset(reference_path, required=("positions",))
            check_same(str(samples_path), meta, str(reference_path), ref_meta)
        scores = _scored(scoring, samples, run, target, ref_data, model_dir, status)
    else:
        nan = {k: math.nan for k in system.metric_names}
        scores = Scores(nan, {}, {}, {}, {}, {})
    metrics = {"stable": float(status.stable), **scores.metrics}
    cis, curves = dict(scores.cis), dict(scores.curves)
    generated, generated_cis = status.metrics() if status.generator else ({}, {})
    metrics.update(generated)
    cis.update(generated_cis)
    if model_dir and target is not None:  # a 1-D model's own PMF by quadrature
        quad, quad_curve = quadrature(system, scoring.cg_map, model_dir, target, scoring.kT)
        metrics.update(quad)
        curves.update(quad_curve)
    bootstrap = {"n_boot": stats.N_BOOT, **scores.groups}
    if scores.groups:
        bootstrap["raw"] = scores.raw  # the noise-biased metrics before correction
    record = MetricsRecord(
        run=run,
        speed=sampling_speed(status, meta),
        metrics=metrics,
        ci95={k: list(v) for k, v in cis.items()},
        bootstrap=bootstrap,
        unstable_reason=status.why_unstable,
        primary_metric=system.primary_metric,
        figure_kind=system.figure_kind,
        units=system.units,
    )
    write_json(out, record.to_json())
    meta_run = {"run": run.to_json()}
    save_dataset(Path(out).with_name("curves.npz"), curves or {"empty": np.zeros(0)}, meta_run)
    save_dataset(Path(out).with_name("bootstrap.npz"), scores.draws or {"empty": np.zeros(0)},
                 meta_run)  # fmt: skip
    return metrics


def _check_model(model_dir, samples_path, meta) -> None:
    """The model read besides the samples is theirs: its system and map (its kT may
    be another's: a model may run away from its training temperature)."""
    model_json = Path(model_dir) / "model.json"
    check_same(str(model_json), read_json(model_json), str(samples_path), meta,
               ("system", "mapping"))  # fmt: skip


def _status(status_path, samples_path, meta) -> SimulationStatus | GeneratorStatus:
    """The simulation's status.json (stable without one), checked to belong to the
    samples."""
    if not status_path:
        return SimulationStatus()
    status = read_status(read_json(status_path), str(status_path))
    written = status.samples_write_id
    if written is not None and written != meta.get("write_id"):
        raise ValueError(
            f"{status_path} and {samples_path} come from different simulate runs (one "
            "was interrupted, or the disk was full?); rerun that simulation"
        )
    return status


def _scored(scoring: Scoring, samples: dict, run: RunId, target, ref_data: dict | None,
            model_dir, status: SimulationStatus | GeneratorStatus) -> Scores:  # fmt: skip
    """A stable run's scores: the system's metrics, how often a CG simulation's
    replicas crossed between basins (not a generator's: its draws are independent, and
    its groups of draws are bootstrap groups, not chains), a generator's latent
    variables against the CVs, and a free energy's <U> and heat capacity against the
    reference's."""
    rng = np.random.default_rng(run_seed(run))
    reference = None if ref_data is None else Reference.of(ref_data)
    scores = score(scoring, samples, reference, rng, target)
    metrics, cis, draws = dict(scores.metrics), dict(scores.cis), dict(scores.draws)
    if not status.generator:
        metrics.update(_mixing(scores.groups))
    parts = []
    if "latent" in samples:
        parts.append(_latent(scoring.system, scoring.cg_map, samples, run))
    if model_dir and target is None:
        parts.append(_thermodynamics_of(scoring, model_dir, samples, ref_data, rng))
    for found in parts:
        for part, values in zip((metrics, cis, draws), found, strict=True):
            part.update(values)
    return scores._replace(metrics=metrics, cis=cis, draws=draws)
