"""Energy matching (Duschatko et al. 2024): a free energy A(R, beta) trained on the
mapped forces and on the all-atom potential energy, at several temperatures at once.

For a CG map R = M(x) the exact CG free energy satisfies::

    -grad_R A(R, beta) = <f_mapped | R>_beta        (the mean force, as in FM)
    d(beta A)/d beta   = <U_AA | R>_beta + c(beta)  (the conditional all-atom energy)

with c(beta) independent of R (A is defined up to a function of beta). So every
reference frame i at kT_i gives two unbiased labels, its mapped force F_i and its
all-atom energy U_i, and the loss::

    L = w_F <|F_i + grad_R A(R_i, beta_i)|^2> / (D sigma_F^2)
      + w_E <(r_i - rbar_{T(i)})^2> / sigma_U^2,   r_i = U_i - d(beta A)/d beta (R_i, beta_i)

is minimised by the exact A at every training temperature (D = beads x dim). The
offsets c(beta) are profiled out: each temperature's residuals are centred on their
mean within the batch (the offset that minimises the loss), so only the R-dependence
of d(beta A)/d beta is learned, which is all the relation fixes. d(beta A)/d beta
comes from forward-mode AD in beta (``jax.jvp``). sigma_F^2 and sigma_U^2 are the
variance of the training forces' components and the within-temperature variance of
the training energies, so both terms start near 1 and the weights say what counts.

Optionally (``variance_weight`` > 0) a third term fits the second derivative,
d^2(beta A)/d beta^2 = -Var(U_AA | R): w_V <(r_i'^2 + d^2(beta A)/d beta^2)^2> /
(2 sigma_U^4), r_i' the centred residual, whose conditional mean is Var(U | R) at the
exact A (a second forward-mode pass; the entropy form's derivative is 0, so it
needs the input form).

Mini-batches are stratified: each step draws ``batch_size / K`` frames (with
replacement) from each of the K training temperatures, so each temperature's offset
has frames to be centred on. The driver averages the parameters (EMA), validates the
loss on the held-out frames of every temperature, stops early and keeps the best (or
the last: ``keep``), as for FM.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from cgflow.checkpoint import fingerprint
from cgflow.methods.base import Problem, Trained
from cgflow.methods.driver import Trainer, fit
from cgflow.methods.fm import FMState, optimizer, validated_schedule
from cgflow.methods.options import EMSettings

SETTINGS = EMSettings  # defined in cgflow.methods.options, which imports no JAX


class Frames(NamedTuple):
    """Frames of several temperatures, concatenated.

    Attributes:
      R, F: positions and mapped forces (n, beads, dim).
      U: all-atom potential energies (n,).
      kT: thermal energy of each frame (n,).
      group: index of each frame's temperature, 0..K-1 (n,).
    """

    R: jnp.ndarray
    F: jnp.ndarray
    U: jnp.ndarray
    kT: jnp.ndarray
    group: jnp.ndarray


def beta_derivative(free_energy_fn):
    """``d(params, R, kT) -> d(beta A)/d beta`` at beta = 1/kT, by ``jax.jvp`` in beta."""

    def d_beta_a(params, R, kT):
        beta = 1.0 / kT
        _, tangent = jax.jvp(lambda b: b * free_energy_fn(params, R, 1.0 / b), (beta,), (1.0,))
        return tangent

    return d_beta_a


def beta_derivatives(free_energy_fn):
    """``d(params, R, kT) -> (g, dg)``: g = d(beta A)/d beta and dg = dg/d beta at
    beta = 1/kT, by nested ``jax.jvp`` in beta. For the exact free energy g is
    <U_AA | R> (up to c(beta)) and dg is -Var(U_AA | R)."""
    first = beta_derivative(free_energy_fn)

    def both(params, R, kT):
        beta = 1.0 / kT
        return jax.jvp(lambda b: first(params, R, 1.0 / b), (beta,), (1.0,))

    return both


def em_loss_fn(free_energy_fn, n_groups: int, sigma_f2: float, sigma_u2: float,
               force_weight: float, energy_weight: float,
               variance_weight: float = 0.0):  # fmt: skip
    """``loss(params, frames) -> (total, (force_term, energy_term, variance_term))``,
    per frame means. The variance term (only computed when ``variance_weight`` > 0)
    is <(r_i'^2 + dg_i)^2> / (2 sigma_U^4), r_i' the residual centred per temperature
    and dg = d^2(beta A)/d beta^2: E[r'^2 | R] = Var(U | R) = -dg for the exact A."""
    grad_r = jax.vmap(jax.grad(free_energy_fn, argnums=1), (None, 0, 0))
    if variance_weight > 0:
        both = jax.vmap(beta_derivatives(free_energy_fn), (None, 0, 0))
    else:
        d_beta_a = jax.vmap(beta_derivative(free_energy_fn), (None, 0, 0))

        def both(params, R, kT):
            g = d_beta_a(params, R, kT)
            return g, jnp.zeros_like(g)

    def loss(params, f: Frames):
        force = jnp.mean((f.F + grad_r(params, f.R, f.kT)) ** 2) / sigma_f2
        g, dg = both(params, f.R, f.kT)
        r = f.U - g
        count = jax.ops.segment_sum(jnp.ones_like(r), f.group, n_groups)
        mean = jax.ops.segment_sum(r, f.group, n_groups) / jnp.maximum(count, 1.0)
        centred = r - mean[f.group]
        energy = jnp.mean(centred**2) / sigma_u2
        variance = (
            jnp.mean((centred**2 + dg) ** 2) / (2.0 * sigma_u2**2)
            if variance_weight > 0
            else jnp.zeros(())
        )
        total = force_weight * force + energy_weight * energy + variance_weight * variance
        return total, (force, energy, variance)

    return loss


def energy_offsets(free_energy_fn, params, frames: Frames, kTs) -> list[list[float]]:
    """The offset c(beta) = <U - d(beta A)/d beta> over each training temperature's
    frames, for the parameters kept: [[kT, c], ...]. A predicts <U | R> only up to
    it; with these, ``mean_energy_offset`` gives c at any kT."""
    d_beta_a = jax.jit(jax.vmap(beta_derivative(free_energy_fn), (None, 0, 0)))
    out = []
    for g, kT in enumerate(kTs):
        sel = np.asarray(frames.group) == g
        r = np.asarray(frames.U)[sel] - np.asarray(d_beta_a(params, frames.R[sel], frames.kT[sel]))
        out.append([float(kT), float(np.mean(r))])
    return out


def mean_energy_offset(offsets, kT: float) -> float:
    """c(kT) through the training temperatures' offsets, linear in kT (extrapolated
    linearly beyond them). Exact when the model's d(beta A)/d beta does not change
    with T (the entropy form: c = <U - E(R)> is then kT-linear for a harmonic bath,
    as in the variable-stiffness double well); for the input form it also carries
    the network's own R-independent kT dependence, which nothing in the loss fixes."""
    t, c = (np.asarray(v, float) for v in zip(*offsets, strict=True))
    order = np.argsort(t)
    t, c = t[order], c[order]
    if len(t) == 1:
        return float(c[0])
    k = int(np.clip(np.searchsorted(t, kT) - 1, 0, len(t) - 2))
    return float(c[k] + (c[k + 1] - c[k]) * (kT - t[k]) / (t[k + 1] - t[k]))


def mean_energy_offset_slope(offsets, kT: float) -> float:
    """dc/dkT of ``mean_energy_offset`` at kT (at a training temperature, the mean of
    the slopes on either side)."""
    h = 1e-3 * kT
    return (mean_energy_offset(offsets, kT + h) - mean_energy_offset(offsets, kT - h)) / (2 * h)


def within_group_variance(values: np.ndarray, group: np.ndarray) -> float:
    """Variance of ``values`` about their group's mean, pooled over groups."""
    values = np.asarray(values, float)
    centred = values.copy()
    for g in np.unique(group):
        centred[group == g] -= values[group == g].mean()
    return float(np.mean(centred**2))


def frames_of(R, F, U, kT, group) -> Frames:
    return Frames(
        jnp.asarray(R, jnp.float32),
        jnp.asarray(F, jnp.float32),
        jnp.asarray(U, jnp.float32),
        jnp.asarray(kT, jnp.float32),
        jnp.asarray(group, jnp.int32),
    )


class EMData(NamedTuple):
    """A problem's frames as energy matching reads them.

    Attributes:
      train, val: the training frames ordered by temperature, and the held-out ones.
      temperatures: the training kTs, ascending (group g is ``temperatures[g]``).
      sigma_f2, sigma_u2: the variance of the training forces' components and the
        within-temperature variance of the training energies (the loss's scales).
    """

    train: Frames
    val: Frames
    temperatures: np.ndarray
    sigma_f2: float
    sigma_u2: float


def em_data(problem: Problem) -> EMData:
    """The training and held-out frames of every training temperature, grouped."""
    p = problem
    if p.free_energy_fn is None or p.U_train is None or p.kT_train is None:
        raise ValueError(
            "em needs the all-atom energies and temperatures of its frames and a "
            "temperature-aware model (the train step provides them for methods that "
            "train across temperatures)"
        )
    temperatures = np.unique(p.kT_train)
    group_of = {float(t): i for i, t in enumerate(temperatures)}
    g_train = np.array([group_of[float(t)] for t in p.kT_train])
    g_val = np.array([group_of.get(float(t), 0) for t in p.kT_val])
    order = np.argsort(g_train, kind="stable")
    tr = frames_of(p.R_train[order], p.F_train[order], p.U_train[order], p.kT_train[order],
                   g_train[order])  # fmt: skip
    va = frames_of(p.R_val, p.F_val, p.U_val, p.kT_val, g_val)
    sigma_f2 = float(np.var(p.F_train))
    sigma_u2 = within_group_variance(p.U_train, g_train)
    if not (sigma_f2 > 0 and sigma_u2 > 0):
        raise ValueError(
            f"em: the training forces or energies do not vary (variances {sigma_f2}, {sigma_u2})"
        )
    return EMData(tr, va, temperatures, sigma_f2, sigma_u2)


def em_trainer(problem: Problem, settings: EMSettings, opt, data: EMData | None = None) -> Trainer:
    """Energy matching as init/step over FMState (parameters, optimiser state).

    Args:
      problem: the run: its free energy ``A(params, R, kT) -> scalar`` and the frames,
        forces, all-atom energies and temperatures of its training and held-out
        splits (no held-out frames: the training frames are scored).
      settings: ``batch_size`` (frames per step, split evenly over the temperatures)
        and the terms' weights.
      opt: an Optax GradientTransformation.
      data: ``em_data(problem)`` where the caller has it already.
    """
    data, s = data if data is not None else em_data(problem), settings
    train, val, batch_size = data.train, data.val, s.batch_size
    weights = (s.force_weight, s.energy_weight, s.variance_weight)
    group = np.asarray(train.group)
    n_groups = int(group.max()) + 1
    starts = np.array([np.flatnonzero(group == g)[0] for g in range(n_groups)])
    sizes = np.array([np.sum(group == g) for g in range(n_groups)])
    if not np.all(np.diff(group) >= 0):
        raise ValueError("em: training frames must be ordered by temperature")
    per_group = max(1, batch_size // n_groups)
    if val.R.shape[0] == 0:
        val = train
    loss = em_loss_fn(problem.free_energy_fn, n_groups, data.sigma_f2, data.sigma_u2,
                      *weights)  # fmt: skip
    grad_fn = jax.value_and_grad(loss, has_aux=True)
    starts_j, sizes_j = jnp.asarray(starts), jnp.asarray(sizes)

    def init(params, key):
        del key
        return FMState(params, opt.init(params))

    def step(state: FMState, key):
        offsets = jax.random.randint(key, (n_groups, per_group), 0, sizes_j[:, None])
        idx = (starts_j[:, None] + offsets).reshape(-1)
        batch = jax.tree.map(lambda a: a[idx], train)
        (value, (force, energy, variance)), g = grad_fn(state.params, batch)
        updates, opt_state = opt.update(g, state.opt_state, state.params)
        metrics = {"train_loss": value, "force_loss": force, "energy_loss": energy}
        if s.variance_weight > 0:
            metrics["variance_loss"] = variance
        return FMState(optax.apply_updates(state.params, updates), opt_state), metrics

    val_loss = jax.jit(lambda p, data: loss(p, data)[0])  # data an argument (see fm)
    return Trainer(init, step, lambda st: st.params, pure=True,
                   validate=lambda p: val_loss(p, val))  # fmt: skip


def train(problem: Problem, settings: EMSettings, key) -> Trained:
    """The registry's entry: EM on the training frames of every training temperature."""
    p, s = problem, settings
    data = em_data(p)
    tr, va, temperatures = data.train, data.val, data.temperatures
    trainer = em_trainer(p, s, optimizer(s), data)
    schedule = validated_schedule(s, "em")
    fp = fingerprint(s.to_dict(), [list(np.shape(a)) for a in (*tr, *va)], p.inputs)
    params, history = fit(trainer, p.params, key, schedule, p.checkpoint, fp, p.log)
    batch = max(1, s.batch_size // len(temperatures)) * len(temperatures)
    steps = int(history[-1]["step"]) if history else 0
    info = {
        "settings": s.to_dict(),
        "checks": len(history),
        "best_val_loss": min((h["val_loss"] for h in history), default=math.nan),
        "n_fit": int(p.R_train.shape[0]),
        "n_val": int(p.R_val.shape[0]),
        "kT_train": [float(t) for t in temperatures],
        "n_fit_per_kT": [int(np.sum(tr.group == g)) for g in range(len(temperatures))],
        "sigma_F2": data.sigma_f2,
        "sigma_U2": data.sigma_u2,
        "energy_offsets": energy_offsets(p.free_energy_fn, params, tr, temperatures),
        # one force and one beta-derivative (and their parameter gradients) per frame
        "cost": {
            "force_evaluations": steps * batch,
            "energy_derivative_evaluations": steps * batch,
            "wall_time_s": history[-1]["wall_time_s"] if history else 0.0,
        },
    }
    return Trained(params, history, info)
