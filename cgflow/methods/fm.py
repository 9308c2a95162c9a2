"""Force matching: minimise the mean squared error between model and mapped forces.

::

    L(theta) = < |F_map(r) + grad_R U_theta(M r)|^2 > / (n_beads * dim)

Its minimiser over all functions is the mean force, -grad A(R) (Noid et al. 2008).
Adam (Optax) with cosine decay on mini-batches drawn uniformly with replacement; the
driver averages the parameters (EMA), validates the average on held-out frames every
``eval_every`` steps, stops after ``patience`` checks without improvement and keeps
the best average (``keep: best``) or the last (``keep: last``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from cgflow.checkpoint import fingerprint
from cgflow.methods.base import Problem, Trained
from cgflow.methods.driver import Schedule, Trainer, fit
from cgflow.methods.options import FMSettings
from cgflow.models.pairs import PairList

SETTINGS = FMSettings  # defined in cgflow.methods.options, which imports no JAX


class FMState(NamedTuple):
    """Force-matching state (energy matching's too).

    Attributes:
      params: model parameters (pytree).
      opt_state: the optimiser's state.
    """

    params: object
    opt_state: object


def force_loss_fn(energy_fn):
    """``loss(params, R, F, pairs=None) -> scalar``: mean squared force error per
    component; with ``pairs`` (frames, 2, capacity), each frame's pair list
    (:mod:`cgflow.models.pairs`) reaches ``energy_fn`` as its ``neighbor``."""

    def force(params, R, idx):
        if idx is None:
            return -jax.grad(energy_fn, argnums=1)(params, R)
        return -jax.grad(lambda R: energy_fn(params, R, neighbor=PairList(idx)))(R)

    def loss(params, R, F, pairs=None):
        axis = None if pairs is None else 0
        return jnp.mean((jax.vmap(force, (None, 0, axis))(params, R, pairs) - F) ** 2)

    return loss


def optimizer(settings: FMSettings) -> optax.GradientTransformation:
    """Adam with cosine decay over ``max_steps``."""
    schedule = optax.cosine_decay_schedule(
        settings.learning_rate, settings.max_steps, alpha=settings.final_lr_fraction
    )
    return optax.adam(schedule)


def validated_schedule(settings: FMSettings, name: str) -> Schedule:
    """How the driver runs FM and methods with its settings (em): checks of
    ``eval_every`` steps up to ``max_steps``, the parameter average validated after
    each, early stopping after ``patience`` checks, the best or the last average kept
    (``keep``)."""
    s = settings
    return Schedule(
        name=name,
        n_checks=max(1, s.max_steps // s.eval_every),
        steps_per_check=s.eval_every,
        ema_decay=s.ema_decay,
        patience=s.patience,
        keep=s.keep,
        checkpoint_every=10,
    )


def fm_trainer(problem: Problem, settings, opt) -> Trainer:
    """Force matching as init/step over FMState.

    Args:
      problem: the run: its energy function, training and held-out frames with their
        mapped forces (no held-out frames: the training frames are scored), and its
        pair lister (every frame is listed once and the model sees only its pairs
        within the cutoff; None: all pairs).
      settings: any settings with ``batch_size``, the frames per step.
      opt: an Optax GradientTransformation.
    """
    data_train, data_val = problem.forces("fm")
    pairs, batch_size = problem.pairs, settings.batch_size
    R_tr, F_tr = (jnp.asarray(a, jnp.float32) for a in data_train)
    R_va, F_va = (jnp.asarray(a, jnp.float32) for a in data_val)
    if R_va.shape[0] == 0:
        R_va, F_va = R_tr, F_tr
    P_tr = P_va = None
    if pairs is not None:  # listed once: the frames never move
        P_tr, P_va = pairs(R_tr), pairs(R_va)
        P_tr, P_va = pairs.fit(P_tr), pairs.fit(P_va)
    n = R_tr.shape[0]
    batch = min(batch_size, n)
    loss = force_loss_fn(problem.energy_fn)
    grad_fn = jax.value_and_grad(loss)

    def init(params, key):
        del key
        return FMState(params, opt.init(params))

    def step(state: FMState, key):
        idx = jax.random.randint(key, (batch,), 0, n)
        P = None if P_tr is None else P_tr[idx]
        value, g = grad_fn(state.params, R_tr[idx], F_tr[idx], P)
        updates, opt_state = opt.update(g, state.opt_state, state.params)
        return FMState(optax.apply_updates(state.params, updates), opt_state), {"train_loss": value}

    # the validation frames are arguments, not constants of the program: XLA would
    # otherwise fold the loss's data-only parts at compile time, which takes long
    # for a box's scatters
    val_loss = jax.jit(loss)
    return Trainer(init, step, lambda st: st.params, pure=True,
                   validate=lambda p: val_loss(p, R_va, F_va, P_va))  # fmt: skip


def train_fm(problem: Problem, settings: FMSettings, key, stop_after: int | None = None):
    """Fit ``problem.params`` of its energy to the mapped forces of its training frames,
    validated on its held-out ones (checkpointed to ``problem.checkpoint``, resumed
    where written with the same settings and ``problem.inputs``; ``stop_after``
    checks: tests).

    Returns:
      (params, history): the averaged parameters ``settings.keep`` picks (the
      lowest validation loss, or the last), and one dict per check with ``step,
      train_loss, val_loss, wall_time_s``.
    """
    s, p = settings, problem
    trainer = fm_trainer(p, s, optimizer(s))
    schedule = validated_schedule(s, "fm")
    data_train, data_val = p.forces("fm")
    fp = fingerprint(s.to_dict(), [list(a.shape) for a in (*data_train, *data_val)], p.inputs)
    return fit(trainer, p.params, key, schedule, p.checkpoint, fp, p.log, stop_after)


def train(problem: Problem, settings: FMSettings, key) -> Trained:
    """The registry's entry: FM on the run's training frames, validated on its held-out ones."""
    p = problem
    params, history = train_fm(p, settings, key)
    info = {
        "settings": settings.to_dict(),
        "checks": len(history),
        "best_val_loss": min((h["val_loss"] for h in history), default=math.nan),
        "n_fit": int(p.R_train.shape[0]),
        "n_val": int(p.R_val.shape[0]),
        **({"pair_lists": p.pairs.describe()} if p.pairs is not None else {}),
        # the cost, comparable with RE's: one force (and its parameter gradient) per
        # frame of every batch; validation passes not counted
        "cost": {
            "force_evaluations": int(history[-1]["step"]) * min(settings.batch_size, len(p.R_train))
            if history
            else 0,
            "wall_time_s": history[-1]["wall_time_s"] if history else 0.0,
        },
    }
    return Trained(params, history, info)
