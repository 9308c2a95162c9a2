"""Data-free coarse-graining by reverse KL (Schoeberl, Zabaras & Koutsourelakis 2020).

A latent-variable generator of all-atom configurations is fitted to the Boltzmann
density p(x) = exp(-beta U(x)) / Z by minimising an upper bound on the reverse KL
divergence; it needs the all-atom energy and forces at the configurations it
generates, and no simulation data.

    latent prior      q(z) = N(0, I_k)
    decoder           q_theta(x | z) = N(mu_theta(z), diag sigma_theta(z)^2)
    encoder           r_phi(z | x)   = N(m_phi(x), diag s_phi(x)^2)

    L(theta, phi) = E_{z ~ q(z), x ~ q_theta(x|z)} [ beta U(x) + ln q_theta(x|z)
                                                    + ln q(z) - ln r_phi(z|x) ]

Since E_{q(x,z)}[ln q(x|z) q(z) / r(z|x)] = E_{q(x)}[ln q(x)] + E_{q(x)} KL(q(z|x) ||
r(z|x)) >= E_{q(x)}[ln q(x)] (the auxiliary-variable bound), L + ln Z =
KL(q_theta(x) || p) + E KL(q(z|x) || r(z|x)) >= 0: the gap L + ln Z bounds the
reverse KL. Gradients by reparametrisation (x = mu + sigma * eps), so the gradient of
beta E[U] takes the all-atom forces at the generated x. An annealing schedule
raises beta from ``beta_start_fraction`` of its target to the target over the first
``anneal_fraction`` of the steps (geometrically), against the mode collapse of a
reverse KL at low temperature.

Importance weights w = exp(-beta U(x)) r(z|x) / (q(x|z) q(z)) give ln Z >= ln mean w
(in expectation) and an effective sample size (sum w)^2 / sum w^2 per step; the
training log records L, its parts, the ESS, beta and the energy evaluations used.

This module holds the method's mathematics, its trainer on an energy given as a
JAX function of flat all-atom coordinates (``energy_fn(x) -> scalar``), and its
``train(problem, settings, key)`` for the registry (a :class:`GeneratorProblem`:
the energy, not data). A trained generator is a folder like a model's:
``model.json`` (its description, ``generator`` block) and ``params.msgpack``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from cgflow.checkpoint import fingerprint
from cgflow.methods.base import GeneratorProblem, Trained
from cgflow.methods.driver import Schedule, Trainer, fit
from cgflow.methods.options import RKLSettings

LOG_2PI = math.log(2.0 * math.pi)


SETTINGS = RKLSettings  # defined in cgflow.methods.options, which imports no JAX


class GaussianMLP(nn.Module):
    """``x -> (mean, log sigma)`` of a diagonal Gaussian of dimension ``out``."""

    hidden: int
    out: int
    min_log_sigma: float

    @nn.compact
    def __call__(self, x):
        h = nn.softplus(nn.Dense(self.hidden)(x))
        h = nn.softplus(nn.Dense(self.hidden)(h))
        mean = nn.Dense(self.out)(h)
        log_sigma = nn.Dense(self.out)(h)
        return mean, jnp.maximum(log_sigma, self.min_log_sigma)


class Generator(NamedTuple):
    """Decoder and encoder modules and the all-atom dimension.

    Attributes:
      decoder: z (k,) -> (mu, log sigma) over x (D,).
      encoder: x (D,) -> (m, log s) over z (k,).
      latent_dim, data_dim: k and D.
    """

    decoder: GaussianMLP
    encoder: GaussianMLP
    latent_dim: int
    data_dim: int


def make_generator(settings: RKLSettings, data_dim: int) -> Generator:
    s = settings
    return Generator(
        GaussianMLP(s.hidden, data_dim, s.min_log_sigma),
        GaussianMLP(s.hidden, s.latent_dim, s.min_log_sigma),
        s.latent_dim,
        data_dim,
    )


def init_generator(gen: Generator, key, x_scale: float = 1.0):
    """Parameters {"decoder", "encoder"}; the decoder starts broad (log sigma about
    ln x_scale) so the first samples cover the region the energy is explored in."""
    k_dec, k_enc = jax.random.split(key)
    dec = gen.decoder.init(k_dec, jnp.zeros(gen.latent_dim))
    enc = gen.encoder.init(k_enc, jnp.zeros(gen.data_dim))
    last = [k for k in dec["params"] if k.startswith("Dense")][-1]  # the log-sigma head
    dec["params"][last]["bias"] = jnp.full(gen.data_dim, math.log(x_scale))
    return {"decoder": dec, "encoder": enc}


def log_normal(x, mean, log_sigma):
    """ln N(x; mean, diag sigma^2), summed over the last axis."""
    return jnp.sum(-0.5 * ((x - mean) / jnp.exp(log_sigma)) ** 2 - log_sigma - 0.5 * LOG_2PI, -1)


def draw(gen: Generator, params, key, n: int):
    """n pairs from q(z) q_theta(x | z) by reparametrisation: (z, x, ln q(x|z), ln q(z))."""
    kz, kx = jax.random.split(key)
    z = jax.random.normal(kz, (n, gen.latent_dim))
    mu, log_sigma = gen.decoder.apply(params["decoder"], z)
    x = mu + jnp.exp(log_sigma) * jax.random.normal(kx, mu.shape)
    return z, x, log_normal(x, mu, log_sigma), log_normal(z, 0.0, jnp.zeros_like(z))


def bound_terms(gen: Generator, energy_fn, params, key, n: int, beta):
    """Per-sample terms of L at inverse temperature ``beta``: a dict of (n,) arrays
    ``beta_u``, ``log_q_x_given_z``, ``log_q_z``, ``log_r_z_given_x`` and ``l``, and
    the draws ``z`` (n, k) and ``x`` (n, D)."""
    z, x, log_qxz, log_qz = draw(gen, params, key, n)
    m, log_s = gen.encoder.apply(params["encoder"], x)
    log_r = log_normal(z, m, log_s)
    beta_u = beta * jax.vmap(energy_fn)(x)
    return {
        "beta_u": beta_u,
        "log_q_x_given_z": log_qxz,
        "log_q_z": log_qz,
        "log_r_z_given_x": log_r,
        "l": beta_u + log_qxz + log_qz - log_r,
        "z": z,
        "x": x,
    }


def log_z_and_ess(terms: dict):
    """ln of the mean importance weight (a lower bound on ln Z in expectation) and
    the effective sample size of the weights, from the per-sample terms."""
    log_w = -terms["l"]
    n = log_w.shape[0]
    log_mean = jax.scipy.special.logsumexp(log_w) - jnp.log(n)
    ess = jnp.exp(2 * jax.scipy.special.logsumexp(log_w) - jax.scipy.special.logsumexp(2 * log_w))
    return log_mean, ess


def beta_schedule(settings: RKLSettings, beta_target: float):
    """step -> beta: geometric from beta_start_fraction * target up to the target over
    the first anneal_fraction of the steps, then constant."""
    s = settings
    n_anneal = max(1, int(round(s.anneal_fraction * s.steps)))
    start = math.log(s.beta_start_fraction)

    def beta(step):
        frac = jnp.clip(step / n_anneal, 0.0, 1.0)
        return beta_target * jnp.exp(start * (1.0 - frac))

    return beta


class RKLState(NamedTuple):
    """Reverse-KL state.

    Attributes:
      params: {"decoder", "encoder"} parameters.
      opt_state: the optimiser's state.
      step: optimiser steps taken (scalar int).
    """

    params: object
    opt_state: object
    step: jnp.ndarray


def rkl_trainer(terms_fn, beta_target: float, settings) -> Trainer:
    """Reverse KL as init/step over RKLState (a pure step, scanned by the driver).

    ``terms_fn(params, key, n, beta)`` gives the per-sample terms of the objective
    (a dict with ``l``, the sample's contribution, whose mean is minimised, and
    ``beta_u``; ``z`` and ``x`` are left out of the log). Shared by every data-free
    generator; ``settings`` needs learning_rate, steps, samples_per_step and the
    annealing fields of :class:`RKLSettings`."""
    s = settings
    opt = optax.adam(optax.cosine_decay_schedule(s.learning_rate, s.steps, alpha=0.01))
    beta_of = beta_schedule(s, beta_target)

    def loss(params, key, beta):
        terms = terms_fn(params, key, s.samples_per_step, beta)
        return jnp.mean(terms["l"]), terms

    grad_fn = jax.value_and_grad(loss, has_aux=True)

    def init(params, key):
        del key
        return RKLState(params, opt.init(params), jnp.zeros((), jnp.int32))

    def step(state: RKLState, key):
        beta = beta_of(state.step)
        (value, terms), g = grad_fn(state.params, key, beta)
        updates, opt_state = opt.update(g, state.opt_state, state.params)
        log_z, ess = log_z_and_ess(terms)
        parts = {k: jnp.mean(v) for k, v in terms.items() if k not in ("l", "z", "x", "log_q_z")}
        metrics = {
            "bound": value,
            **parts,
            "log_z_estimate": log_z,
            "ess_fraction": ess / s.samples_per_step,
            "beta": beta,
        }
        new = RKLState(optax.apply_updates(state.params, updates), opt_state, state.step + 1)
        return new, metrics

    return Trainer(init, step, lambda st: st.params, pure=True)


def fit_generator(problem: GeneratorProblem, terms_fn, params, settings, key,
                  stop_after: int | None = None):  # fmt: skip
    """Train a generator's ``params`` by reverse KL to exp(-U / kT) of ``problem``
    with the shared driver (checkpointed to ``problem.checkpoint`` and resumed where
    written with the same settings, ``problem.inputs`` and dimension; ``stop_after``
    checks: tests); returns (params, history) with ``energy_evaluations`` counted in
    each row."""
    s = settings
    schedule = Schedule(
        name=s.block.split(".")[-1],
        n_checks=max(1, s.steps // s.log_every),
        steps_per_check=s.log_every,
        keep="last",
        checkpoint_every=5,
    )
    trainer = rkl_trainer(terms_fn, 1.0 / problem.kT, s)
    fp = fingerprint(s.to_dict(), problem.inputs, problem.data_dim)
    params, history = fit(trainer, params, key, schedule, problem.checkpoint, fp, problem.log,
                          stop_after)  # fmt: skip
    for row in history:
        row["energy_evaluations"] = int(row["step"]) * s.samples_per_step
    return params, history


def train_rkl(problem: GeneratorProblem, settings: RKLSettings, key,
              stop_after: int | None = None):  # fmt: skip
    """Fit the generator to exp(-U / kT) of ``problem``, its decoder starting at
    ``settings.init_scale``; returns (generator, params, history).

    History rows (one per ``log_every`` steps, means over them): ``step``, ``bound``
    (L), its parts, ``log_z_estimate``, ``ess_fraction``, ``beta`` and
    ``energy_evaluations`` (energies and forces computed so far).
    """
    gen = make_generator(settings, problem.data_dim)
    k_init, k_train = jax.random.split(key)
    params = init_generator(gen, k_init, settings.init_scale)

    def terms_fn(p, k, n, beta):
        return bound_terms(gen, problem.energy_fn, p, k, n, beta)

    params, history = fit_generator(problem, terms_fn, params, settings, k_train, stop_after)
    return gen, params, history


def sample(gen: Generator, params, key, n: int) -> dict[str, np.ndarray]:
    """n draws of (z, x) from the generator: z (n, k), x (n, D)."""
    z, x, _, _ = draw(gen, params, key, n)
    return {"z": np.asarray(z), "x": np.asarray(x)}


def train(problem: GeneratorProblem, settings: RKLSettings, key) -> Trained:
    """The registry's entry: fit the generator to exp(-U / kT) of ``problem``."""
    _, params, history = train_rkl(problem, settings, key)
    return trained(problem, params, history, "rkl")


def trained(problem: GeneratorProblem, params, history: list[dict], method: str) -> Trained:
    """A data-free generator's result: the gap L + ln Z in its log where ln Z is known
    (once beta is at its target), and what the model records of its training."""
    if problem.log_z is not None:  # the gap is a KL once beta is at its target
        for row in history:
            at_target = np.isclose(row["beta"], 1.0 / problem.kT, rtol=1e-5)
            row["gap"] = row["bound"] + problem.log_z if at_target else float("nan")
    last = history[-1]
    info = {
        "method": method,
        "steps": int(last["step"]),
        "energy_evaluations": int(last["energy_evaluations"]),
        "final_bound": float(last["bound"]),
        "final_ess_fraction": float(last["ess_fraction"]),
        "wall_time_s": float(last["wall_time_s"]),
    }
    if problem.log_z is not None:
        info["exact_log_z"] = problem.log_z
    return Trained(params, history, info, plot_history)


def description(settings: RKLSettings, data_dim: int) -> dict:
    """The ``generator`` block of a generator's model.json."""
    s = settings
    return {"type": "latent_gaussian", "latent_dim": s.latent_dim, "hidden": s.hidden,
            "min_log_sigma": s.min_log_sigma, "data_dim": int(data_dim)}  # fmt: skip


def load_generator(folder) -> tuple[Generator, object, dict]:
    """``(generator, params, description)`` from a latent-variable generator's folder."""

    def build(block):
        s = RKLSettings(latent_dim=block["latent_dim"], hidden=block["hidden"],
                        min_log_sigma=block["min_log_sigma"])  # fmt: skip
        return make_generator(s, block["data_dim"])

    return read_generator_folder(folder, "latent_gaussian", build, init_generator)


def read_generator_folder(folder, kind: str, build, init):
    """``(generator, params, description)`` of a generator folder whose ``generator``
    block has type ``kind``: ``build(block)`` rebuilds the generator, ``init(generator,
    key)`` gives the parameters' shapes the file must have (ValueError naming the
    file otherwise)."""
    from flax import serialization

    from cgflow.integrity import problem
    from cgflow.io import read_json
    from cgflow.models.description import GeneratorDescription

    folder = Path(folder)
    where = str(folder / "model.json")
    desc = GeneratorDescription.from_json(read_json(folder / "model.json"), where)
    block = desc.generator
    if not isinstance(block, dict) or block.get("type") != kind:
        raise ValueError(f"{where}: not a cgflow {kind} generator")
    gen = build(block)
    params_file = folder / "params.msgpack"
    if not params_file.is_file():
        raise FileNotFoundError(f"{params_file}: generator parameters not found")
    damaged = problem(params_file)
    if damaged:
        raise ValueError(f"{params_file}: {damaged}")
    params = serialization.msgpack_restore(params_file.read_bytes())
    expected = jax.eval_shape(lambda: init(gen, jax.random.PRNGKey(0)))
    shapes = jax.tree.map(lambda x: tuple(x.shape), (params, expected))
    if shapes[0] != shapes[1]:
        raise ValueError(f"{params_file}: parameters do not match {folder / 'model.json'}")
    return gen, params, desc


def plot_history(history: list[dict], path, title: str) -> None:
    """The reverse-KL log: the bound L (and the gap L + ln Z where known), the ESS of
    the importance weights, and beta, against the energy evaluations spent."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cgflow.io import atomic_write

    n = [h["energy_evaluations"] for h in history]
    fig, axes = plt.subplots(3, 1, figsize=(6, 7), sharex=True)
    axes[0].plot(n, [h["bound"] for h in history], lw=1, label="bound L")
    axes[0].plot(n, [-h["log_z_estimate"] for h in history], lw=1, label="-ln mean w")
    axes[0].set_ylabel("nats")
    axes[0].legend(fontsize=7)
    if "gap" in history[0]:
        twin = axes[0].twinx()
        twin.semilogy(n, [max(h["gap"], 1e-4) if h["gap"] == h["gap"] else np.nan
                          for h in history], "k:", lw=1)  # fmt: skip
        twin.set_ylabel("gap L + ln Z (dotted)")
    axes[1].plot(n, [h["ess_fraction"] for h in history], lw=1)
    axes[1].set_ylabel("ESS / samples")
    axes[1].set_ylim(0, 1.05)
    axes[2].plot(n, [h["beta"] for h in history], lw=1)
    axes[2].set_ylabel("beta")
    axes[2].set_xlabel("all-atom energy and force evaluations")
    axes[0].set_title(title)
    fig.tight_layout()
    atomic_write(Path(path), lambda fh: fig.savefig(fh, format="png", dpi=100))
    plt.close(fig)
