"""Force matching: minimise the mean squared error between model and mapped forces.

    L(theta) = < |F_map(r) + grad_R U_theta(M r)|^2 > / (n_beads * dim)

Its minimiser over all functions is the mean force, -grad A(R) (Noid et al. 2008).
Adam (Optax) on shuffled mini-batches; after every epoch the loss on a held-out
validation set decides early stopping, and the best parameters are kept.
"""

from __future__ import annotations

import math
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from cgflow.method_settings import FMSettings


def force_loss_fn(energy_fn):
    """Return ``loss(params, R, F) -> scalar``: mean squared force error per component."""
    force_fn = jax.vmap(lambda p, R: -jax.grad(energy_fn, argnums=1)(p, R), (None, 0))

    def loss(params, R, F):
        return jnp.mean((force_fn(params, R) - F) ** 2)

    return loss


def train_fm(energy_fn, params, data_train, data_val, settings: FMSettings, key, log=None):
    """Fit ``params`` of ``energy_fn`` to mapped forces.

    Args:
      energy_fn: ``energy_fn(params, R) -> scalar``, R of shape (beads, dim).
      params: initial parameters (pytree).
      data_train, data_val: tuples (R, F) of arrays (frames, beads, dim).
      settings: FMSettings.
      key: JAX PRNG key for mini-batch sampling.

    Returns:
      (best_params, history): the averaged parameters with the lowest validation
      loss, and one dict per check with ``step, train_loss, val_loss, wall_time_s``.
    """
    log = log if log is not None else sys.stderr
    R_tr, F_tr = (jnp.asarray(a, jnp.float32) for a in data_train)
    R_va, F_va = (jnp.asarray(a, jnp.float32) for a in data_val)
    n = R_tr.shape[0]
    batch = min(settings.batch_size, n)
    schedule = optax.cosine_decay_schedule(
        settings.learning_rate, settings.max_steps, alpha=settings.final_lr_fraction
    )
    opt = optax.adam(schedule)
    loss = force_loss_fn(energy_fn)
    grad_fn = jax.value_and_grad(loss)
    decay = settings.ema_decay

    @jax.jit
    def block(carry, key):
        def step(carry, k):
            p, s, ema = carry
            idx = jax.random.randint(k, (batch,), 0, n)
            value, g = grad_fn(p, R_tr[idx], F_tr[idx])
            updates, s = opt.update(g, s, p)
            p = optax.apply_updates(p, updates)
            ema = jax.tree.map(lambda e, q: decay * e + (1 - decay) * q, ema, p)
            return (p, s, ema), value

        carry, values = jax.lax.scan(step, carry, jax.random.split(key, settings.eval_every))
        return carry, values.mean()

    val_loss = jax.jit(loss)
    has_val = R_va.shape[0] > 0
    carry = (params, opt.init(params), params)
    best = (math.inf, params, 0)
    history = []
    t0 = time.perf_counter()
    n_blocks = max(1, settings.max_steps // settings.eval_every)
    for b in range(1, n_blocks + 1):
        key, sub = jax.random.split(key)
        carry, tr = block(carry, sub)
        ema = carry[2]
        va = float(val_loss(ema, R_va, F_va)) if has_val else float(tr)
        step = b * settings.eval_every
        history.append(
            {
                "step": step,
                "train_loss": float(tr),
                "val_loss": va,
                "wall_time_s": time.perf_counter() - t0,
            }
        )
        if not np.isfinite(va):
            raise FloatingPointError(f"force matching diverged at step {step} (loss {va})")
        if va < best[0]:
            best = (va, ema, b)
        if b % 10 == 0 or b == 1:
            print(
                f"fm: step {step:6d}  train {float(tr):.4g}  val {va:.4g}  "
                f"best {best[0]:.4g} @ {best[2] * settings.eval_every}",
                file=log,
                flush=True,
            )
        if b - best[2] >= settings.patience:
            print(
                f"fm: early stop at step {step}; best step {best[2] * settings.eval_every}",
                file=log,
                flush=True,
            )
            break
    return best[1], history
