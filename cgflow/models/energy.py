"""The shared CG energy: ``energy_fn(params, R) -> scalar``, prior + network.

A model is described by a JSON-ready dict (enough to rebuild the function) and
its parameters, saved with Flax serialisation.

    description = {
      "n_beads": int, "dim": int, "kT": float,
      "prior": {...},                                 # see cgflow.models.prior
      "network": {"type": "mlp", "hidden": [...], "activation": str,
                  "input_shift": [...], "input_scale": [...]},
    }
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import serialization

from cgflow.io import read_json, write_json
from cgflow.models.prior import prior_energy

ACTIVATIONS = {"softplus": nn.softplus, "silu": nn.silu, "tanh": jnp.tanh, "gelu": nn.gelu}
NETWORK_TYPES = ("mlp",)


class MLPEnergy(nn.Module):
    """A scalar energy from a flat feature vector: Dense-activation stack, linear head."""

    hidden: Sequence[int]
    activation: str = "softplus"

    @nn.compact
    def __call__(self, x):
        act = ACTIVATIONS[self.activation]
        for width in self.hidden:
            x = act(nn.Dense(width)(x))
        return nn.Dense(1)(x)[..., 0]


def _network(desc: dict):
    net = desc["network"]
    if net["type"] not in NETWORK_TYPES:
        raise ValueError(f"unknown network {net['type']!r}; allowed: {list(NETWORK_TYPES)}")
    if net["activation"] not in ACTIVATIONS:
        raise ValueError(
            f"unknown activation {net['activation']!r}; allowed: {sorted(ACTIVATIONS)}"
        )
    return MLPEnergy(hidden=tuple(net["hidden"]), activation=net["activation"])


def build_energy(desc: dict):
    """Return the pure ``energy_fn(params, R) -> scalar`` for a model description.

    Args:
      desc: model description (see module docstring).

    Returns:
      energy_fn taking network params and positions R of shape (n_beads, dim).
    """
    module = _network(desc)
    prior = prior_energy(desc["prior"])
    shift = jnp.asarray(desc["network"]["input_shift"]).reshape(-1)
    scale = jnp.asarray(desc["network"]["input_scale"]).reshape(-1)

    def energy_fn(params, R):
        features = (R.reshape(-1) - shift) / scale
        return prior(R) + module.apply(params, features)

    return energy_fn


def init_params(desc: dict, key):
    module = _network(desc)
    return module.init(key, jnp.zeros((desc["n_beads"] * desc["dim"],)))


def save_model(folder: str | Path, desc: dict, params) -> None:
    """Write ``model.json`` (description) and ``params.msgpack`` (Flax bytes)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / ".params.msgpack.tmp"
    tmp.write_bytes(serialization.to_bytes(params))
    tmp.replace(folder / "params.msgpack")
    write_json(folder / "model.json", desc)


def load_model(folder: str | Path):
    """Rebuild ``(energy_fn, params, description)`` from a model folder."""
    folder = Path(folder)
    desc = read_json(folder / "model.json")
    params_file = folder / "params.msgpack"
    if not params_file.is_file():
        raise FileNotFoundError(f"{params_file}: model parameters not found")
    params = serialization.msgpack_restore(params_file.read_bytes())
    expected = jax.eval_shape(lambda: init_params(desc, jax.random.PRNGKey(0)))
    shapes = jax.tree.map(lambda x: tuple(x.shape), (params, expected))
    if shapes[0] != shapes[1]:
        raise ValueError(f"{params_file}: parameters do not match {folder / 'model.json'}")
    return build_energy(desc), params, desc
