"""Data-free coarse-graining with a normalizing flow: reverse KL with an exact density.

The latent-variable generator of :mod:`cgflow.methods.rkl` has no tractable
density q(x), so it minimises a bound whose gap also holds E KL(q(z|x) || r(z|x)).
A normalizing flow has one: x = f_theta(eps), eps ~ N(0, s^2 I_D), with f a chain
of affine coupling layers (RealNVP, Dinh et al. 2017), so

    ln q(x) = ln N(eps; 0, s^2 I) - ln |det df/deps|,
    L(theta) = E_eps [ beta U(f(eps)) + ln q(f(eps)) ] = KL(q || p) - ln Z,

and the gap L + ln Z is the reverse KL itself, with no encoder (the route of
data-free coarse-graining with flows, arXiv 2504.20940). Gradients by
reparametrisation, beta annealed as for ``rkl``; training, checkpoints and the log
go through the same trainer (:func:`cgflow.methods.rkl.fit_generator`). The
"latent" variables written with the samples are the base draws eps (D of them):
the CV scores then say how well any one base coordinate tracks the CV.

Each coupling layer keeps half of the coordinates (alternating halves) and moves
the others by x_b <- x_b * exp(a(x_a)) + t(x_a), with a = ``scale_bound`` *
tanh(.) so that no layer can blow a sample up in one step; its log-determinant
is the sum of a. The last layers of a and t start at zero: the flow starts as the
identity, a Gaussian of width ``init_scale``.

Why not distrax or flowjax: distrax pulls in TensorFlow Probability, and flowjax is
built on Equinox modules, whose parameters would not go through the Flax/msgpack
model files and the shared driver the rest of cgflow uses; a coupling flow is a
few lines of Flax.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from cgflow.methods.base import GeneratorProblem, Trained
from cgflow.methods.options import FlowSettings
from cgflow.methods.rkl import (
    fit_generator,
    log_normal,
    log_z_and_ess,
    read_generator_folder,
    trained,
)

SETTINGS = FlowSettings  # defined in cgflow.methods.options, which imports no JAX


class Coupling(nn.Module):
    """One affine coupling: ``(x, mask) -> (y, log det)``; mask 1 keeps a coordinate."""

    hidden: int
    scale_bound: float

    @nn.compact
    def __call__(self, x, mask):
        h = nn.softplus(nn.Dense(self.hidden)(x * mask))
        h = nn.softplus(nn.Dense(self.hidden)(h))
        zeros = nn.initializers.zeros
        a = self.scale_bound * jnp.tanh(nn.Dense(x.shape[-1], kernel_init=zeros)(h))
        t = nn.Dense(x.shape[-1], kernel_init=zeros)(h)
        a, t = a * (1 - mask), t * (1 - mask)
        return x * jnp.exp(a) + t, jnp.sum(a, -1)


class Flow(NamedTuple):
    """The flow's layers, masks and base width.

    Attributes:
      layers: the coupling modules.
      masks: (n_layers, D) 0/1 masks, alternating halves.
      data_dim: D.
      base_scale: width s of the base Gaussian.
      latent_dim: D (the base draws are the latent variables written).
    """

    layers: tuple
    masks: np.ndarray
    data_dim: int
    base_scale: float
    latent_dim: int


def make_flow(settings: FlowSettings, data_dim: int) -> Flow:
    half = np.arange(data_dim) < max(1, data_dim // 2)
    masks = np.stack([half if i % 2 == 0 else ~half for i in range(settings.n_layers)])
    layers = tuple(Coupling(settings.hidden, settings.scale_bound) for _ in masks)
    return Flow(layers, masks.astype(np.float32), data_dim, settings.init_scale, data_dim)


def init_flow(flow: Flow, key):
    keys = jax.random.split(key, len(flow.layers))
    x = jnp.zeros(flow.data_dim)
    return {
        f"layer_{i}": layer.init(k, x, jnp.asarray(m))
        for i, (layer, k, m) in enumerate(zip(flow.layers, keys, flow.masks, strict=True))
    }


def push(flow: Flow, params, eps):
    """x = f(eps) for base draws eps (n, D) and ln q(x) = ln N(eps) - ln |det|."""
    log_q = log_normal(eps, 0.0, jnp.full_like(eps, math.log(flow.base_scale)))
    x = eps
    for i, (layer, m) in enumerate(zip(flow.layers, flow.masks, strict=True)):
        x, log_det = layer.apply(params[f"layer_{i}"], x, jnp.asarray(m))
        log_q = log_q - log_det
    return x, log_q


def bound_terms(flow: Flow, energy_fn, params, key, n: int, beta):
    """Per-sample terms at ``beta``: ``beta_u``, ``log_q`` (the exact ln q(x)), ``l``
    = beta U + ln q (its mean is L, L + ln Z the reverse KL), the base draws ``z``
    and the samples ``x``."""
    eps = flow.base_scale * jax.random.normal(key, (n, flow.data_dim))
    x, log_q = push(flow, params, eps)
    beta_u = beta * jax.vmap(energy_fn)(x)
    return {"beta_u": beta_u, "log_q": log_q, "l": beta_u + log_q, "z": eps / flow.base_scale,
            "x": x}  # fmt: skip


def train(problem: GeneratorProblem, settings: FlowSettings, key) -> Trained:
    """The registry's entry: fit the flow to exp(-U / kT) of ``problem``."""
    flow = make_flow(settings, problem.data_dim)
    k_init, k_train = jax.random.split(key)
    params = init_flow(flow, k_init)

    def terms_fn(p, k, n, beta):
        return bound_terms(flow, problem.energy_fn, p, k, n, beta)

    params, history = fit_generator(problem, terms_fn, params, settings, k_train)
    return trained(problem, params, history, "rkl_flow")


def description(settings: FlowSettings, data_dim: int) -> dict:
    """The ``generator`` block of a flow's model.json."""
    s = settings
    return {"type": "affine_coupling_flow", "n_layers": s.n_layers, "hidden": s.hidden,
            "scale_bound": s.scale_bound, "init_scale": s.init_scale,
            "data_dim": int(data_dim)}  # fmt: skip


def load_generator(folder) -> tuple[Flow, object, dict]:
    """``(flow, params, description)`` from a flow's folder."""

    def build(block):
        keys = ("n_layers", "hidden", "scale_bound", "init_scale")
        return make_flow(FlowSettings(**{k: block[k] for k in keys}), block["data_dim"])

    return read_generator_folder(folder, "affine_coupling_flow", build, init_flow)


__all__ = ["FlowSettings", "bound_terms", "load_generator", "log_z_and_ess", "train"]
