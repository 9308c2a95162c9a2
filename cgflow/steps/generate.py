"""Data-free methods: ``train-generator`` fits a generator to the all-atom Boltzmann
density at one temperature (no data read); ``generate`` draws CG samples from it.

A generator is sampled, not simulated: its samples are independent draws, mapped to
CG coordinates by the run's map, written as a ``samples.npz`` that the evaluate step
scores like any simulation's, with the latent variables z beside them (the
collective variables the method discovers). The samples are grouped into
``GROUPS`` bootstrap groups of independent draws.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from cgflow import checkpoint as ckpt
from cgflow import methods
from cgflow.io import check_output_folder, save_dataset, write_json
from cgflow.mapping import apply_map
from cgflow.methods.base import GeneratorProblem
from cgflow.methods.data import KEY_SIMULATE, KEY_TRAIN
from cgflow.models import GeneratorDescription
from cgflow.runtime import jax_device_info
from cgflow.simulate.settings import run_settings
from cgflow.simulate.status import GeneratorStatus
from cgflow.systems import get_map

GROUPS = 200
"""Bootstrap groups of a generator's samples (each group independent draws)."""


class GeneratorSpace(NamedTuple):
    """Where a system's generator works.

    Attributes:
      energy_fn: y (dim,) -> the energy whose Boltzmann density the generator fits:
        the all-atom energy, less kT ln |dx/dy| where y are not Cartesian.
      dim: the generator's dimension.
      to_cartesian: y (n, dim) -> all-atom coordinates (n, atoms, spatial dim).
    """

    energy_fn: Callable
    dim: int
    to_cartesian: Callable


CLASH_NM = 0.05
"""Atoms closer than this (nm) make a configuration a clash: its energy is a constant
above the soft cap, with no gradient, rather than an overflow to inf or NaN."""
E_HIGH_KT = 1000.0
"""Energies above this many kT are compressed logarithmically (e_high + kT ln(1 + (U -
e_high) / kT)), so that a proposal in a steep wall does not blow up a gradient step;
the target density is unchanged wherever it is not vanishingly small."""
CLASH_LOG_KT = 30.0
"""A clash's energy: this many kT above the soft cap."""


def generator_space(system, kT: float) -> GeneratorSpace:
    """The space a data-free generator of ``system`` works in at ``kT``: the system's
    ``generator_coordinates`` where it has them (a molecule: internal coordinates,
    whose density carries the Jacobian, so exp(-E(y) / kT) with E = U - kT ln |dx/dy|
    is the Boltzmann density in y; with U softly capped and clashes given a constant
    energy, see ``E_HIGH_KT`` and ``CLASH_NM``), else its flat Cartesian coordinates. ValueError
    naming the system when it has no all-atom energy in JAX."""
    if not system.jax_energy:
        raise ValueError(
            f"{system.type}: data-free methods need the all-atom energy in JAX, which this "
            "system does not provide"
        )
    energy = system.aa_energy_jax()
    shape = (system.n_atoms, system.dim)
    coords = system.generator_coordinates(kT, energy)  # its scales need the energy too
    if coords is None:
        flat = system.n_atoms * system.dim
        return GeneratorSpace(energy, flat, lambda y: np.reshape(np.asarray(y), (-1, *shape)))
    safe = coords.to_cartesian(np.zeros(coords.dim, np.float32))[0]  # the centre structure
    i, j = np.triu_indices(system.n_atoms, 1)
    e_high = E_HIGH_KT * kT

    def energy_fn(y):
        x, log_det = coords.to_cartesian(y)
        d2 = jnp.sum((x[i] - x[j]) ** 2, -1)
        clash = (jnp.min(d2) < CLASH_NM**2) | ~jnp.all(jnp.isfinite(x))
        u = energy(jnp.where(clash, safe, x).reshape(-1))
        u = jnp.where(u > e_high, e_high + kT * jnp.log1p(jnp.maximum(u - e_high, 0.0) / kT), u)
        u = jnp.where(clash | ~jnp.isfinite(u), e_high + kT * CLASH_LOG_KT, u)
        return u - kT * log_det

    cartesian = jax.jit(jax.vmap(lambda y: coords.to_cartesian(y)[0]))
    return GeneratorSpace(energy_fn, coords.dim, lambda y: np.asarray(cartesian(y)))


def train_generator(study, method_name: str, temperature: float, mapping: str, seed: int,
                    out_dir: str, checkpoint: str | None = None, log=None) -> dict:  # fmt: skip
    """Fit ``method_name`` (a data-free method) at ``temperature``; write its folder:
    ``model.json`` (``generator`` block, ``kT``, ``mapping``, ``n_train`` 0),
    ``params.msgpack``, ``train_log.csv`` and ``train_log.png``."""
    from cgflow.steps.train import check_room, write_trained

    log = log if log is not None else sys.stderr
    method = methods.get(method_name)
    if method.data != "none":
        raise ValueError(f"method {method_name!r} learns from data: use cgflow train")
    if method_name not in study.methods:
        raise ValueError(f"method {method_name!r} is not configured in config.methods")
    system = study.build_system()
    get_map(system, mapping)  # a clear error for an unknown map, before training
    kT = system.kT(temperature)
    space = generator_space(system, kT)
    settings = method.settings(study.methods[method_name])
    check_room(out_dir, checkpoint, "train-generator")
    device = jax_device_info("train-generator", log)
    log_z = system.log_partition(kT)
    module = method.implementation()
    problem = GeneratorProblem(
        energy_fn=space.energy_fn,
        data_dim=space.dim,
        kT=kT,
        checkpoint=Path(checkpoint) if checkpoint else None,
        log=log,
        inputs=ckpt.fingerprint(system.describe(), kT, mapping),
        log_z=log_z,
    )
    result = method.train(
        problem, settings, jax.random.fold_in(jax.random.PRNGKey(seed), KEY_TRAIN)
    )
    desc = GeneratorDescription(
        system=study.system,
        mapping=mapping,
        kT=kT,
        method=method_name,
        n_train=0,
        seed=seed,
        units=system.units,
        generator=module.description(settings, space.dim),
        potential=system.describe(),
        training={**result.info, "device": device},
    )
    write_trained(out_dir, desc, result, f"{method_name} kT={kT:g}", checkpoint)
    return desc


class _Loaded(NamedTuple):
    """A generator and what it is drawn with: its method's module, the generator and
    its parameters and description, the system and the space it proposes in."""

    module: Any
    gen: Any
    params: Any
    desc: Any
    system: Any
    space: GeneratorSpace


def generate_step(
    study, model_dir: str, n_samples: int | None, out_dir: str, log=None
) -> GeneratorStatus:
    """Draw ``n_samples`` from a generator (None: as many as a CG simulation of the
    system saves frames, replicas times saved frames each, so that both are scored
    on samples of one size); write ``samples.npz`` (CG ``positions``,
    ``latent`` z, ``log_weight`` ln w = -(beta U + ln q(x|z) + ln q(z) - ln r(z|x)),
    ``replica``: the bootstrap group) and ``status.json`` (the bound L over the
    samples with its standard error, the gap L + ln Z where ln Z is known, the
    importance-weight ESS, the left/right occupancy where the system has basins, and
    the force evaluations the training spent). The basin occupancies are given as
    drawn and reweighted by the self-normalised importance weights (exact in the
    limit of many samples); the samples themselves are scored as drawn."""
    log = log if log is not None else sys.stderr
    device = jax_device_info("generate", log)
    g = _load(study, model_dir)
    desc, system = g.desc, g.system
    if n_samples is None:
        run = run_settings(study.entry["simulation"])
        n_samples = run.n_replicas * (run.n_steps // run.save_every)
    cg_map = get_map(system, desc.mapping)
    data_dim = system.n_atoms * system.dim
    check_output_folder(out_dir, 4 * n_samples * (data_dim + g.gen.latent_dim + 2) + 10**6,
                        "generate")  # fmt: skip
    t0 = time.perf_counter()
    key = jax.random.fold_in(jax.random.PRNGKey(desc.seed), KEY_SIMULATE)
    beta = 1.0 / desc.kT
    terms = jax.jit(
        lambda p, k: g.module.bound_terms(g.gen, g.space.energy_fn, p, k, n_samples, beta)
    )(g.params, key)
    l_values = np.asarray(terms["l"], float)
    log_z_est, ess = (float(v) for v in g.module.log_z_and_ess(terms))
    cg_positions = apply_map(cg_map, np.asarray(g.space.to_cartesian(terms["x"]), float))[0]
    wall = time.perf_counter() - t0
    finite = bool(np.all(np.isfinite(cg_positions)) and np.all(np.isfinite(l_values)))
    status = GeneratorStatus(
        stable=finite,
        reason=None if finite else "the generator produced non-finite coordinates",
        n_samples=n_samples,
        wall_time_s=wall,
        **_bound(desc, l_values, log_z_est, ess),
        model=str(model_dir),
        device=device,
    )
    cv = system.cv(cg_map)(cg_positions)
    status = status.replace(**_basin_fractions(system, cv, l_values))
    arrays = {
        "positions": cg_positions.astype(np.float32),
        "latent": np.asarray(terms["z"], np.float32),
        "log_weight": (-l_values).astype(np.float32),
        "replica": np.arange(n_samples) % GROUPS,
    }
    meta = {"system": desc.system, "mapping": desc.mapping, "kT": desc.kT, "units": desc.units,
            "generator": True,
            "n_replicas": GROUPS}  # fmt: skip
    status = status.replace(
        samples_write_id=save_dataset(Path(out_dir) / "samples.npz", arrays, meta)
    )
    plot_latent(arrays["latent"], cv, system.cv_names, Path(out_dir) / "latent.png",
                f"{desc.method} kT={desc.kT:g}")  # fmt: skip
    write_json(Path(out_dir) / "status.json", status.to_json())
    print(f"generate: {n_samples} samples, bound {status.bound:.4f} +- "
          f"{status.bound_se:.4f}, ESS {status.ess_fraction:.3f}", file=log,
          flush=True)  # fmt: skip
    return status


def _load(study, model_dir) -> _Loaded:
    """The generator of ``model_dir``, checked against the study's system."""
    from cgflow.io import read_json

    name = read_json(Path(model_dir) / "model.json").get("method")
    if name not in methods.REGISTRY or methods.get(name).data != "none":
        raise ValueError(f"{model_dir}: not a data-free generator (method {name!r})")
    module = methods.get(name).implementation()
    gen, params, desc = module.load_generator(model_dir)
    system = study.build_system()
    if (desc.potential or system.describe()) != system.describe():
        raise ValueError(
            f"{model_dir}: the generator was trained on {desc.potential}, not on this "
            f"config's {system.describe()}"
        )
    space = generator_space(system, desc.kT)
    if space.dim != gen.data_dim:
        raise ValueError(
            f"{model_dir}: the generator makes {gen.data_dim} coordinates; {system.type}'s "
            f"generators make {space.dim}"
        )
    return _Loaded(module, gen, params, desc, system, space)


def _bound(desc, l_values: np.ndarray, log_z_est: float, ess: float) -> dict:
    """What a generator's draws measured: the bound L with its standard error, the
    ln Z estimate, the ESS, the training's cost, and the gap L + ln Z where ln Z is
    known."""
    n = len(l_values)
    bound, bound_se = float(l_values.mean()), float(l_values.std(ddof=1) / np.sqrt(n))
    out = {
        "bound": bound,
        "bound_se": bound_se,
        "log_z_estimate": log_z_est,
        "ess_fraction": ess / n,
        "energy_evaluations": desc.training["energy_evaluations"],
    }
    if "exact_log_z" in desc.training:
        gap = bound + desc.training["exact_log_z"]
        out.update(exact_log_z=desc.training["exact_log_z"], gap=gap,
                   gap_ci95=(gap - 1.96 * bound_se, gap + 1.96 * bound_se))  # fmt: skip
    return out


def _basin_fractions(system, cv: np.ndarray, l_values: np.ndarray) -> dict:
    """The basin occupancies of the draws, as drawn and reweighted by their
    self-normalised importance weights."""
    basins = np.asarray(system.basins(cv))
    w = np.exp(-(l_values - l_values.min()))
    w /= w.sum()
    names = system.basin_names
    return {
        "basin_fractions": {n: float(np.mean(basins == b)) for b, n in enumerate(names)},
        "basin_fractions_reweighted": {
            n: float(np.sum(w[basins == b])) for b, n in enumerate(names)
        },
    }


def plot_latent(latent: np.ndarray, cv: np.ndarray, cv_names, path: Path, title: str,
                max_points: int = 20_000) -> None:  # fmt: skip
    """The learned latent space coloured by each CV: a panel per CV, the first two
    latent dimensions as axes (one: the CV against z)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cgflow.io import atomic_write

    n = min(len(latent), max_points)
    z, c = latent[:n], cv[:n]
    fig, axes = plt.subplots(1, len(cv_names), figsize=(4.2 * len(cv_names), 3.6), squeeze=False)
    for ax, name, values in zip(axes[0], cv_names, c.T, strict=True):
        if z.shape[1] >= 2:
            shown = ax.scatter(z[:, 0], z[:, 1], c=values, s=2, cmap="twilight"
                               if name in ("phi", "psi") else "viridis")  # fmt: skip
            fig.colorbar(shown, ax=ax, label=name)
            ax.set_ylabel("z2")
        else:
            ax.scatter(z[:, 0], values, s=1, alpha=0.3)
            ax.set_ylabel(name)
        ax.set_xlabel("z1")
        ax.set_title(f"{title}: latent vs {name}", fontsize=9)
    fig.tight_layout()
    atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=100))
    plt.close(fig)
