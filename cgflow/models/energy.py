"""The shared CG energy: ``energy_fn(params, R) -> scalar``, prior + network.

A model is described by a ``ModelDescription`` (:mod:`cgflow.models.description`,
enough to rebuild the function; its JSON form is below) and its parameters, saved
with Flax serialisation.

Networks: ``mlp`` (a feed-forward net on the standardised flat coordinates; for
low-dimensional toy systems) and ``schnet`` (an invariant continuous-filter
message-passing network over bead pairs within a cutoff, Schuett et al. 2018,
with species embeddings and a smooth cosine envelope; for molecules). The
description::

    description = {
      "n_beads": int, "dim": int, "kT": float,
      "box": [Lx, Ly, Lz] or absent,                  # periodic box (nm), liquids
      "prior": {...},                                 # see cgflow.models.prior
      "network": {"type": "mlp", "hidden": [...], "activation": str,
                  "input_shift": [...], "input_scale": [...],
                  "temperature": {"form": "input" | "entropy",
                                  "kT_shift": float, "kT_scale": float}},  # optional
    }

A network with a ``temperature`` entry is a free energy A(R, kT). With ``form:
input`` it reads the standardised thermal energy (kT - kT_shift) / kT_scale beside
the coordinates (the MLP as one more input, SchNet as a learned shift of every
bead's embedding): any dependence on kT. With ``form: entropy`` it has two outputs,
an energy and an entropy, and A = E(R) - kT S(R): the form of a free energy whose
energy and entropy do not change with temperature (so d(beta A)/d beta = E(R)
exactly), which interpolates and extrapolates in temperature by construction. The
prior stays a temperature-independent energy, so A = prior(R) + network(R, kT).
``build_free_energy`` gives A(params, R, kT); ``build_energy`` fixes kT at the
description's ``kT``, the temperature the model is simulated at, so every model has
the same signature for the CG simulator.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from cgflow.integrity import PARAMS_SHA256, sha256_of
from cgflow.integrity import problem as damage
from cgflow.io import atomic_write, read_json, write_json
from cgflow.jaxmd import partition
from cgflow.models import geometry, tables
from cgflow.models.description import GeneratorDescription, ModelDescription, as_model
from cgflow.models.prior import prior_energy
from cgflow.runtime import switched_off

ACTIVATIONS = {"softplus": nn.softplus, "silu": nn.silu, "tanh": jnp.tanh, "gelu": nn.gelu}
NETWORK_TYPES = ("mlp", "schnet", "none")
ORDERED_SPARSE = partition.NeighborListFormat.OrderedSparse  # each pair once, i < j
SCHNET_DEFAULTS = {"features": 32, "interactions": 2, "rbf": 16, "cutoff": 0.5}


class MLPEnergy(nn.Module):
    """A scalar energy (or ``outputs`` of them) from a flat feature vector:
    Dense-activation stack, linear head."""

    hidden: Sequence[int]
    activation: str = "softplus"
    outputs: int = 1

    @nn.compact
    def __call__(self, x):
        act = ACTIVATIONS[self.activation]
        for width in self.hidden:
            x = act(nn.Dense(width)(x))
        out = nn.Dense(self.outputs)(x)
        return out[..., 0] if self.outputs == 1 else out


def shifted_softplus(x):
    return nn.softplus(x) - jnp.log(2.0)


class SchNetEnergy(nn.Module):
    """Invariant pair-message-passing energy of beads R (n, 3) with species (n,).

    Works on an edge list: by default every pair (molecules), or the pairs of a
    JAX MD neighbour list (``edges`` = its ``idx``, padded with n). A pair's filter
    depends only on its distance, so with ``edges_once`` (the default list, or an
    ``OrderedSparse`` neighbour list: each pair once, i < j) it is computed once per
    pair and the message sent both ways: the same sum as over ordered pairs, at half
    the cost of the filter network, which dominates the model's cost.
    Pair vectors come from ``displacement`` (free space by default; minimum image
    in a periodic box). Distances within ``cutoff`` are expanded in ``rbf``
    Gaussians and weighted by 0.5 (cos(pi r / cutoff) + 1), so energies and forces
    go smoothly to zero at the cutoff; ``interactions`` residual continuous-filter
    blocks update per-bead features; the energy is the sum of per-bead outputs.

    With ``filter_tables`` (:func:`schnet_filter_tables` of the same parameters) the
    filters are looked up instead of computed: the sampler's form of the model.
    """

    n_species: int
    features: int = 32
    interactions: int = 2
    rbf: int = 16
    cutoff: float = 0.5
    outputs: int = 1

    @nn.compact
    def __call__(
        self,
        R,
        species,
        edges=None,
        displacement=None,
        temperature=None,
        edges_once=False,
        filter_tables=None,
    ):
        n = R.shape[0]
        both_ways = edges is None or edges_once
        if edges is None:
            receivers, senders = (jnp.asarray(a) for a in np.triu_indices(n, 1))
        else:
            receivers, senders = edges[0], edges[1]
        valid = (receivers < n) & (senders < n)
        receivers = jnp.where(valid, receivers, 0)
        senders = jnp.where(valid, senders, 0)
        disp = displacement if displacement is not None else geometry.FREE
        dR = jax.vmap(disp)(R[receivers], R[senders])
        sq = jnp.sum(dR**2, axis=-1)
        d = jnp.sqrt(jnp.where(valid, sq, 1.0))  # padding never enters; keep its grad finite
        h = nn.Embed(self.n_species, self.features)(species)
        if temperature is not None:  # a free energy A(R, kT): kT shifts every embedding
            h = h + nn.Dense(self.features, name="temperature")(jnp.reshape(temperature, (1, 1)))
        dense = _schnet_dense(self.features)
        for k in range(self.interactions):
            if filter_tables is None:
                outer, inner = dense(k, 0), dense(k, 1)
                w = schnet_filter(d, inner, outer, self.rbf, self.cutoff)
            else:
                w = tables.lookup(filter_tables[k], d, self.cutoff)
            w = w * valid[:, None]
            x = dense(k, 2, use_bias=False)(h)
            message = jax.ops.segment_sum(w * x[senders], receivers, num_segments=n)
            if both_ways:
                message = message + jax.ops.segment_sum(w * x[receivers], senders, num_segments=n)
            h = h + dense(k, 3)(shifted_softplus(dense(k, 4)(message)))
        k = self.interactions
        out = dense(k, 0, self.outputs)(shifted_softplus(dense(k, 1, self.features // 2)(h)))
        return jnp.sum(out) if self.outputs == 1 else jnp.sum(out, axis=0)


def _schnet_dense(features: int):
    """``dense(k, j, width=features, use_bias=True)``: the j-th Dense layer of
    interaction block k (k = interactions: the output head), named as Flax numbered
    them when SchNetEnergy created them in call order, so that saved parameters
    load: per block, the filter's outer (0) and inner (1) layer, the bead features
    (2), and the update's outer (3) and inner (4) layer."""

    def dense(k: int, j: int, width: int | None = None, use_bias: bool = True):
        return nn.Dense(width or features, use_bias=use_bias, name=_schnet_layer(k, j))

    return dense


def _schnet_layer(k: int, j: int) -> str:
    return f"Dense_{5 * k + j}"


def schnet_filter(d, inner, outer, rbf: int, cutoff: float):
    """SchNet's continuous filter at distances d (pairs,): ``rbf`` Gaussians on
    [0, cutoff], ``outer(ssp(inner(.)))``, times the cosine envelope (zero from the
    cutoff on). (pairs, features)."""
    mu = jnp.linspace(0.0, cutoff, rbf)
    gamma = 0.5 / (mu[1] - mu[0]) ** 2
    expanded = jnp.exp(-gamma * (d[:, None] - mu) ** 2)
    envelope = jnp.where(d < cutoff, 0.5 * (jnp.cos(jnp.pi * d / cutoff) + 1.0), 0.0)
    return outer(shifted_softplus(inner(expanded))) * envelope[:, None]


def _schnet_config(network: dict) -> dict:
    """A SchNet's hyperparameters: the network entry's, else ``SCHNET_DEFAULTS``."""
    return {**SCHNET_DEFAULTS, **{k: network[k] for k in SCHNET_DEFAULTS if k in network}}


def schnet_filter_tables(params, network: dict) -> jax.Array:
    """The filters of a SchNet's parameters as lookup tables (``cgflow.models.tables``),
    one per interaction block: (interactions, rows, 6 features)."""
    cfg = _schnet_config(network)
    layers = params["params"]

    def layer(k, j):
        return lambda x: nn.Dense(cfg["features"]).apply({"params": layers[_schnet_layer(k, j)]}, x)

    n_points = tables.POINTS_PER_RBF * cfg["rbf"] + 1
    return jnp.stack([
        tables.tabulate(
            lambda d, k=k: schnet_filter(d, layer(k, 1), layer(k, 0), cfg["rbf"], cfg["cutoff"]),
            cfg["cutoff"],
            n_points,
        )
        for k in range(cfg["interactions"])
    ])  # fmt: skip


TEMPERATURE_FORMS = ("input", "entropy")


def _temperature_form(desc: ModelDescription) -> str | None:
    """How a temperature-aware network reads kT (None: it does not)."""
    t = desc.network.get("temperature")
    if t is None:
        return None
    form = t.get("form", "input")
    if form not in TEMPERATURE_FORMS:
        raise ValueError(f"unknown temperature form {form!r}; allowed: {list(TEMPERATURE_FORMS)}")
    return form


def _network(desc: ModelDescription):
    net = desc.network
    if net["type"] not in NETWORK_TYPES:
        raise ValueError(f"unknown network {net['type']!r}; allowed: {list(NETWORK_TYPES)}")
    outputs = 2 if _temperature_form(desc) == "entropy" else 1
    if net["type"] == "schnet":
        cfg = _schnet_config(net)
        return SchNetEnergy(n_species=len(desc.species_names), outputs=outputs, **cfg)
    activation = net.get("activation", "softplus")
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; allowed: {sorted(ACTIVATIONS)}")
    return MLPEnergy(hidden=tuple(net.get("hidden", (64, 64))), activation=activation,
                     outputs=outputs)  # fmt: skip


def interaction_range(desc: ModelDescription | dict) -> float | None:
    """Distance beyond which beads do not interact through the network (None: any)."""
    return network_range(as_model(desc).network)


def network_range(network: dict) -> float | None:
    """The same for a network's config block (``network`` of a system entry, before
    there is a model): its cutoff for a SchNet, None for any other."""
    if network.get("type") != "schnet":
        return None
    return float(_schnet_config(network)["cutoff"])


def is_temperature_aware(desc: ModelDescription | dict) -> bool:
    """Whether a model is a free energy A(R, kT) (its network reads kT)."""
    return as_model(desc).temperature_aware


def _temperature_feature(desc: ModelDescription):
    """kT -> the standardised input the network reads, or None (no kT input)."""
    if _temperature_form(desc) != "input":
        return None
    t = desc.network["temperature"]
    shift, scale = float(t["kT_shift"]), float(t["kT_scale"])
    return lambda kT: (jnp.asarray(kT, jnp.float32) - shift) / scale


def build_free_energy(desc: ModelDescription | dict):
    """Return the pure ``free_energy_fn(params, R, kT, neighbor=None) -> scalar``.

    For a temperature-aware model (``network.temperature``) the network reads kT; for
    any other, kT is ignored (its energy is the same at every temperature).
    """
    desc = as_model(desc)
    box = desc.box
    if box is not None and desc.network_type == "mlp":
        raise ValueError(
            "a periodic model (box) takes the schnet network or none: the mlp reads "
            "free-space coordinates"
        )
    prior = prior_energy(desc.prior, box)
    if desc.network_type == "none":
        return lambda params, R, kT, neighbor=None: prior(R, neighbor)
    module = _network(desc)
    t_feature = _temperature_feature(desc)
    # form entropy: the network's (E, S) combine to E - kT S; else its one output
    combine = (lambda out, kT: out[0] - kT * out[1]) if _temperature_form(desc) == "entropy" \
        else (lambda out, kT: out)  # fmt: skip
    if desc.network_type == "schnet":
        species = jnp.asarray(desc.species_index)
        displacement = geometry.displacement_fn(box)  # minimum image in a box

        def free_energy_fn(params, R, kT, neighbor=None, filter_tables=None):
            edges = neighbor.idx if neighbor is not None else None
            once = neighbor is not None and neighbor.format == ORDERED_SPARSE
            t = t_feature(kT) if t_feature is not None else None
            out = module.apply(params, R, species, edges, displacement, t, once, filter_tables)
            return prior(R, neighbor) + combine(out, kT)

        return free_energy_fn
    shift = jnp.asarray(desc.network["input_shift"]).reshape(-1)
    scale = jnp.asarray(desc.network["input_scale"]).reshape(-1)

    def free_energy_fn(params, R, kT, neighbor=None):
        del neighbor
        features = (R.reshape(-1) - shift) / scale
        if t_feature is not None:
            features = jnp.concatenate([features, t_feature(kT)[None]])
        return prior(R) + combine(module.apply(params, features), kT)

    return free_energy_fn


def build_energy(desc: ModelDescription | dict):
    """Return the pure ``energy_fn(params, R) -> scalar`` for a model description
    (``energy_fn(params, R, neighbor)`` for SchNet): the free energy at the
    description's ``kT``.

    Args:
      desc: model description (a ModelDescription, or its JSON dict).

    Returns:
      energy_fn taking network params and positions R of shape (n_beads, dim).
    """
    desc = as_model(desc)
    free_energy_fn = build_free_energy(desc)
    kT = float(desc.kT) if desc.temperature_aware else None  # else not read
    if desc.network_type != "schnet":
        return lambda params, R: free_energy_fn(params, R, kT)

    def energy_fn(params, R, neighbor=None):
        return free_energy_fn(params, R, kT, neighbor)

    def prepare(params):
        return params, schnet_filter_tables(params, desc.network)

    def tabulated_energy_fn(prepared, R, neighbor=None):
        params, filter_tables = prepared
        return free_energy_fn(params, R, kT, neighbor, filter_tables)

    energy_fn.sampling_form = SamplingForm(prepare, tabulated_energy_fn)
    return energy_fn


class SamplingForm(NamedTuple):
    """How a sampler, whose parameters stay fixed for many steps, evaluates a model.

    Attributes:
      prepare: ``params -> prepared``, once per stretch of steps.
      energy_fn: ``energy_fn(prepared, R, **kw)``, the model's energy.
    """

    prepare: Callable
    energy_fn: Callable


FILTER_TABLES_ENV = "CGFLOW_FILTER_TABLES"


def sampling_form(energy_fn, environ=None) -> SamplingForm:
    """The form of ``energy_fn`` (a :func:`build_energy` result) for a sampler: for a
    SchNet, its filters tabulated once per parameter set (``cgflow.models.tables``;
    forces within float32 rounding of the network's, at about half its cost), unless
    ``CGFLOW_FILTER_TABLES=off``; for any other model, the model itself."""
    form = getattr(energy_fn, "sampling_form", None)
    if form is None or switched_off(FILTER_TABLES_ENV, environ):
        return SamplingForm(lambda params: params, energy_fn)
    return form


def box_scaling_derivative(desc: ModelDescription | dict):
    """Return ``du_ds(params, R) -> scalar`` for a periodic model: the derivative of
    its energy at s = 1 when the box and the beads are scaled by s (all pairs,
    minimum image; the cutoffs stay), the virial term of the CG pressure
    ``cgflow.units.pressure_bar``. Differentiates through the box as well as the
    positions, so what depends on the box only through minimum images is right."""
    desc = as_model(desc)
    if desc.box is None:
        raise ValueError("a pressure needs a periodic model (a description with a box)")
    box = jnp.asarray(desc.box, jnp.float32)

    def scaled(s, params, R):
        return build_energy(desc.replace(box=s * box))(params, s * R)

    grad = jax.grad(scaled)
    return lambda params, R: grad(jnp.float32(1.0), params, R)


def init_params(desc: ModelDescription | dict, key):
    desc = as_model(desc)
    if desc.network_type == "none":
        return {}
    module = _network(desc)
    if desc.network_type == "schnet":
        # a spread-out dummy configuration: init must not see coincident beads
        R = jnp.arange(desc.n_beads * 3.0).reshape(-1, 3) * 0.1
        t = jnp.zeros(()) if _temperature_feature(desc) is not None else None
        return module.init(key, R, jnp.asarray(desc.species_index), None, None, t)
    n_in = desc.n_beads * desc.dim + int(_temperature_feature(desc) is not None)
    return module.init(key, jnp.zeros((n_in,)))


def save_model(folder: str | Path, desc: ModelDescription | GeneratorDescription | dict,
               params) -> None:  # fmt: skip
    """Write ``model.json`` (the description; a dict is read as a ModelDescription's
    JSON, recording the SHA-256 of the parameters) and ``params.msgpack`` (Flax
    bytes)."""
    folder = Path(folder)
    desc = desc if isinstance(desc, GeneratorDescription) else as_model(desc)
    data = serialization.to_bytes(params)
    desc = desc.replace(**{PARAMS_SHA256: sha256_of(data)})
    atomic_write(folder / "params.msgpack", lambda fh: fh.write(data))
    write_json(folder / "model.json", desc.to_json())


def at_temperature(desc: ModelDescription | dict, kT: float,
                   transfer: bool = False) -> ModelDescription:  # fmt: skip
    """The description of a model run at ``kT``: a temperature-aware model's ``kT``
    is set to it; any other must have been trained at that kT (ValueError), unless
    ``transfer``: then it runs as it is at ``kT`` (its energy unchanged; the
    description records ``trained_at_kT``)."""
    desc = as_model(desc)
    if desc.temperature_aware:
        return desc.replace(kT=float(kT))
    same = np.isclose(float(desc.kT), float(kT), rtol=1e-9, atol=0.0)
    if transfer and not same:
        return desc.replace(kT=float(kT), trained_at_kT=float(desc.kT))
    if not same:
        raise ValueError(
            f"the model was trained at kT {desc.kT} and does not read the temperature: "
            f"it cannot be run at kT {kT}"
        )
    return desc


def prior_shape_problem(desc: ModelDescription) -> str | None:
    """What is wrong with the shapes of a description's prior terms (None: nothing):
    per-coordinate arrays of (n_beads, dim), index lists within the beads, one
    parameter per indexed term. Broadcasting would otherwise accept a wrong prior."""
    prior, n, dim = desc.prior, int(desc.n_beads), int(desc.dim)
    if not isinstance(prior, dict) or "type" not in prior:
        return "prior is not a prior description (no type)"
    if prior["type"] == "harmonic_position":
        for key in ("k", "x0"):
            shape = np.shape(prior.get(key))
            if shape != (n, dim):
                return f"prior {key} has shape {shape}; the model has ({n}, {dim})"
    if prior["type"] == "pair_repulsion":
        if len(prior.get("species", [])) != n:
            return f"prior species has {len(prior.get('species', []))} beads; the model has {n}"
    if prior["type"] == "bonded":
        for term, width in (("bonds", 2), ("angles", 3), ("dihedrals", 4),
                            ("narrow_dihedrals", 4), ("repulsion", 2)):  # fmt: skip
            block = prior.get(term) or {"idx": []}
            idx = np.asarray(block.get("idx", []), int).reshape(-1, width)
            if idx.size and (idx.min() < 0 or idx.max() >= n):
                return f"prior {term} index beads outside 0..{n - 1}"
            for key in ("k", "x0", "a", "b", "sigma"):
                if key in block and len(block[key]) != len(idx):
                    return f"prior {term} has {len(block[key])} {key} for {len(idx)} terms"
    return None


def load_model(folder: str | Path, kT: float | None = None, transfer: bool = False):
    """Rebuild ``(energy_fn, params, description)`` from a model folder; with ``kT``,
    the model at that thermal energy (see :func:`at_temperature`)."""
    folder = Path(folder)
    desc = ModelDescription.from_json(read_json(folder / "model.json"), str(folder / "model.json"))
    params_file = folder / "params.msgpack"
    if not params_file.is_file():
        raise FileNotFoundError(f"{params_file}: model parameters not found")
    damaged = damage(params_file)
    if damaged:
        raise ValueError(f"{params_file}: {damaged}")
    try:
        params = serialization.msgpack_restore(params_file.read_bytes())
    except Exception as err:  # noqa: BLE001 -- msgpack raises several kinds
        raise ValueError(f"{params_file}: not readable model parameters ({err})") from None
    wrong = prior_shape_problem(desc)
    if wrong:
        raise ValueError(f"{folder / 'model.json'}: {wrong}")
    expected = jax.eval_shape(lambda: init_params(desc, jax.random.PRNGKey(0)))
    shapes = jax.tree.map(lambda x: tuple(x.shape), (params, expected))
    if shapes[0] != shapes[1]:
        raise ValueError(f"{params_file}: parameters do not match {folder / 'model.json'}")
    if kT is not None:
        desc = at_temperature(desc, kT, transfer)
    return build_energy(desc), params, desc
