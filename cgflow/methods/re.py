"""Relative entropy minimisation with trajectory reweighting (Thaler, Stupp, Zavadlav 2022).

    S_rel(theta) = beta <U_theta>_AA + ln Z_theta + const,
    grad S_rel   = beta ( <dU/dtheta>_AA - <dU/dtheta>_theta ),

where <.>_AA averages over mapped reference frames and <.>_theta over the CG model's
Boltzmann distribution. CG samples come from vmapped Langevin replicas that continue
from their last states. Between simulations the samples of parameters theta_old are
reused by reweighting:

    w_i = exp(-beta [U_theta(x_i) - U_theta_old(x_i)]) / sum_j (same),

and the model re-simulates once the effective sample size N_eff = exp(-sum w ln w)
falls below ``neff_threshold * N``. The weights enter the gradient as constants
(they estimate an average at the current theta); they are computed from log-weights
shifted by their maximum (a log-sum-exp). Energy differences are taken frame by frame
from stored energies, so float32 energies of any size lose nothing that matters; the
N_eff and free-energy bookkeeping that accumulates over many updates is done on the
host in float64.

The relative entropy of the run's validation frames is logged too; on request
(``keep: best_held_out``) the model kept is the one where it was lowest (early stopping,
as FM stops on its validation loss).

Training with the CG time step the model will be simulated at lets RE absorb the
integrator's error into the potential: its samples are those of the discretised
dynamics, not of exp(-beta U).
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from cgflow.io import atomic_write
from cgflow.method_settings import RESettings
from cgflow.simulate.langevin import SimSettings, make_integrator


def reweight(u_new, u_old, beta: float):
    """Normalised weights, N_eff and ln(Z_new / Z_old) from per-frame energies (float64).

    Args:
      u_new: energies of the samples under the current parameters, (N,).
      u_old: their energies under the parameters that generated them, (N,).
      beta: 1 / kT.

    Returns:
      (w, n_eff, dlnz): w sums to 1; n_eff = exp(-sum w ln w) is N when the
      parameters did not move; dlnz = ln <exp(-beta (u_new - u_old))>_old.
    """
    logw = -beta * (np.asarray(u_new, np.float64) - np.asarray(u_old, np.float64))
    top = logw.max()
    lse = float(top) + math.log(float(np.exp(logw - top).sum()))
    logw_n = logw - lse
    w = np.exp(logw_n)
    n_eff = math.exp(-float(np.sum(w * logw_n)))
    return w, n_eff, float(lse - math.log(logw.size))


def re_gradient_fn(energy_fn, beta: float):
    """``grad(params, X_ref, X_cg, U_old) -> (gradient, U_cg_new, mean U_ref)``.

    The gradient is beta (<dU/dtheta>_ref - sum_i w_i dU/dtheta(x_i)), with w the
    reweighting weights of the CG samples X_cg (held constant), so that for X_cg
    drawn from the current model it estimates grad S_rel.
    """
    energies = jax.vmap(energy_fn, (None, 0))

    def grad(params, X_ref, X_cg, U_old):
        u_ref, vjp_ref = jax.vjp(lambda p: energies(p, X_ref), params)
        u_cg, vjp_cg = jax.vjp(lambda p: energies(p, X_cg), params)
        w = jax.nn.softmax(-beta * (u_cg - U_old))
        (g_ref,) = vjp_ref(jnp.full_like(u_ref, 1.0 / u_ref.shape[0]))
        (g_cg,) = vjp_cg(w)
        g = jax.tree.map(lambda a, b: beta * (a - b), g_ref, g_cg)
        return g, u_cg, jnp.mean(u_ref)

    return grad


def _sampler(energy_fn, kT, sim: SimSettings, n_beads: int, save_every: int):
    """(init, burn, run): replicas of the current model; run(state, params, n_saves)
    keeps a frame every ``save_every`` steps (RE's own, not the simulation block's)."""
    init_fn, apply_fn = make_integrator(energy_fn, kT, sim, n_beads)
    step = jax.vmap(lambda st, p: apply_fn(st, params=p), (0, None))

    def init(key, R0, masses, params):
        keys = jax.random.split(key, R0.shape[0])
        return jax.vmap(lambda k, R: init_fn(k, R, mass=masses, params=params))(keys, R0)

    def advance(state, params, n):
        return jax.lax.fori_loop(0, n, lambda i, st: step(st, params), state)

    @jax.jit
    def burn(state, params, n_steps):
        return advance(state, params, n_steps)

    def run(state, params, n_saves):
        def body(st, _):
            st = advance(st, params, save_every)
            return st, st.position

        return jax.lax.scan(body, state, None, length=n_saves)

    return jax.jit(init), burn, jax.jit(run, static_argnums=2)


def _fingerprint(settings: RESettings, sim: SimSettings, extra: dict) -> str:
    text = json.dumps({"re": asdict(settings), "sim": asdict(sim), **extra}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _save_checkpoint(path: Path, fingerprint: str, update: int, carry: dict, extra: dict):
    leaves, _ = jax.tree_util.tree_flatten(carry)
    arrays = {f"leaf{i}": np.asarray(x) for i, x in enumerate(leaves)}
    meta = {"fingerprint": fingerprint, "update": update, "n_leaves": len(leaves), **extra}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    atomic_write(path, lambda fh: np.savez(fh, **arrays))


def _load_checkpoint(path: Path, fingerprint: str, template: dict, log):
    """(update, carry, extra) from ``path``, or None when absent or made by other settings."""
    if not path.exists():
        return None
    try:
        with np.load(path) as z:
            meta = json.loads(bytes(z["meta"]).decode())
            leaves = [z[f"leaf{i}"] for i in range(meta["n_leaves"])]
    except Exception as err:  # a torn or foreign file: start over, say so
        print(f"re: ignoring unreadable checkpoint {path}: {err}", file=log, flush=True)
        return None
    if meta["fingerprint"] != fingerprint:
        print(f"re: ignoring checkpoint {path} from other settings", file=log, flush=True)
        return None
    t_leaves, treedef = jax.tree_util.tree_flatten(template)
    if len(leaves) != len(t_leaves) or any(
        a.shape != np.shape(b) for a, b in zip(leaves, t_leaves, strict=True)
    ):
        print(f"re: ignoring checkpoint {path}: shapes differ", file=log, flush=True)
        return None
    carry = jax.tree_util.tree_unflatten(
        treedef,
        [jnp.asarray(a, np.asarray(b).dtype) for a, b in zip(leaves, t_leaves, strict=True)],
    )
    return meta["update"], carry, meta


def train_re(
    energy_fn,
    params,
    R_ref,
    R_start,
    masses,
    kT: float,
    settings: RESettings,
    sim: SimSettings,
    key,
    checkpoint: str | Path | None = None,
    log=None,
    stop_after: int | None = None,
    R_val=None,
):
    """Minimise the relative entropy of ``energy_fn`` to the reference frames ``R_ref``.

    Args:
      energy_fn: ``energy_fn(params, R) -> scalar``, R of shape (beads, dim).
      params: starting parameters (a fitted prior, or an FM model for FM->RE).
      R_ref: reference CG frames of the training split, (frames, beads, dim).
      R_start: frames the replicas start from, (>= 1, beads, dim), drawn at random.
      masses: bead masses, (beads,).
      kT: thermal energy.
      settings: RESettings.
      sim: simulation settings of the CG sampler; its ``dt`` is the time step RE
        trains at (``n_steps``, ``n_replicas``, ``equilibration_steps`` and
        ``save_every`` are ignored: RE has its own).
      key: JAX PRNG key (replica starts, dynamics, reference batches).
      checkpoint: file to checkpoint to every ``settings.checkpoint_every`` updates
        and to resume from (when it was written with the same settings).
      stop_after: stop after this many updates, leaving the checkpoint (tests).
      R_val: held-out reference frames (the run's validation split): their
        relative entropy, beta <U>_val + ln Z, is logged every update, and with
        ``settings.keep == "best_held_out"`` the parameters where it was lowest
        are returned (early stopping against fitting the noise of few frames).

    Returns:
      (params, history): the parameters (the last, or the best on R_val) and
      one dict per update with ``update, loss, val_loss, n_eff, n_eff_fraction,
      resimulated, grad_norm, wall_time_s, sim_time_s``. ``loss`` is S_rel up to
      a constant, beta <U>_ref + ln Z, at the parameters before that update, with
      ln Z tracked across re-simulations by the reweighting estimate; ``val_loss``
      is the same on R_val (NaN without it).
    """
    log = log if log is not None else sys.stderr
    s = settings
    beta = 1.0 / kT
    R_ref = jnp.asarray(R_ref, jnp.float32)
    R_start = np.asarray(R_start, np.float32)
    masses = jnp.asarray(masses, jnp.float32)
    n_ref, n_beads = R_ref.shape[0], R_ref.shape[1]
    batch = min(s.ref_batch_size, n_ref)
    n_saves = s.sample_steps // s.save_every
    schedule = optax.cosine_decay_schedule(s.learning_rate, s.n_updates, alpha=s.final_lr_fraction)
    opt = optax.adam(schedule)
    if s.max_grad_norm > 0:
        opt = optax.chain(optax.clip_by_global_norm(s.max_grad_norm), opt)
    init, burn, run = _sampler(energy_fn, kT, sim, n_beads, s.save_every)
    grad_fn = re_gradient_fn(energy_fn, beta)
    energies = jax.jit(jax.vmap(energy_fn, (None, 0)))

    has_val = R_val is not None and len(R_val) > 0
    R_val = jnp.asarray(R_val if has_val else R_ref[:1], jnp.float32)

    @jax.jit
    def update(params, opt_state, X_cg, U_old, key):
        # without replacement: a training split no larger than the batch is used whole
        idx = jax.random.choice(key, n_ref, (batch,), replace=False)
        g, u_cg, u_ref = grad_fn(params, R_ref[idx], X_cg, U_old)
        u_val = jnp.mean(energies(params, R_val))
        updates, opt_state = opt.update(g, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, g, u_cg, u_ref, u_val

    key, k_start, k_init = jax.random.split(key, 3)
    pick = np.asarray(jax.random.randint(k_start, (s.n_replicas,), 0, R_start.shape[0]))
    state = init(k_init, jnp.asarray(R_start[pick]), masses, params)
    X_cg = jnp.zeros((n_saves * s.n_replicas, n_beads, R_ref.shape[2]), jnp.float32)
    carry = {
        "params": params,
        "opt_state": opt.init(params),
        "state": state,
        "X_cg": X_cg,
        "U_old": jnp.zeros(X_cg.shape[0], jnp.float32),
        "key": key,
        "best_params": params,
    }
    fingerprint = _fingerprint(
        s,
        sim,
        {
            "kT": kT,
            "n_ref": int(n_ref),
            "shape": list(R_ref.shape),
            "beta": beta,
            "n_val": int(R_val.shape[0]) if has_val else 0,
        },
    )
    ckpt = Path(checkpoint) if checkpoint else None
    start, history, lnz_anchor, resim_needed = 0, [], 0.0, True
    best_val = math.inf
    if ckpt is not None:
        loaded = _load_checkpoint(ckpt, fingerprint, carry, log)
        if loaded is not None:
            start, carry, meta = loaded
            history, lnz_anchor = meta["history"], meta["lnz_anchor"]
            best_val = meta["best_val"]
            resim_needed = False
            print(f"re: resumed from {ckpt} at update {start}", file=log, flush=True)
    t0 = time.perf_counter() - (history[-1]["wall_time_s"] if history else 0.0)
    end = s.n_updates if stop_after is None else min(s.n_updates, stop_after)
    p, opt_state, state = carry["params"], carry["opt_state"], carry["state"]
    X_cg, U_old, key = carry["X_cg"], carry["U_old"], carry["key"]
    best_params = carry["best_params"]
    for k in range(start, end):
        t_sim, resimulated = 0.0, False
        key, sub = jax.random.split(key)
        if not resim_needed:  # reweight the samples we have to the current parameters
            out = update(p, opt_state, X_cg, U_old, sub)
            _, n_eff, dlnz = reweight(np.asarray(out[3]), np.asarray(U_old), beta)
            if n_eff < s.neff_threshold * X_cg.shape[0]:
                lnz_anchor += dlnz  # carry ln Z over to the new samples' parameters
                resim_needed = True
        if resim_needed:  # fresh samples of the current model, then the update on them
            ts = time.perf_counter()
            if s.equilibration_steps:
                state = burn(state, p, s.equilibration_steps)
            state, frames = run(state, p, n_saves)
            X_cg = jnp.swapaxes(frames, 0, 1).reshape((-1,) + frames.shape[2:])
            U_old = energies(p, X_cg)
            jax.block_until_ready(U_old)
            t_sim = time.perf_counter() - ts
            resimulated, resim_needed = True, False
            if not np.all(np.isfinite(np.asarray(X_cg))) or not np.all(np.isfinite(U_old)):
                raise FloatingPointError(
                    f"re: the CG model blew up while sampling at update {k} (dt {sim.dt}); "
                    "lower methods.re.learning_rate or the time step"
                )
            out = update(p, opt_state, X_cg, U_old, sub)
            _, n_eff, dlnz = reweight(np.asarray(out[3]), np.asarray(U_old), beta)
        p_next, opt_state, g, _, u_ref, u_val = out
        loss = beta * float(u_ref) + lnz_anchor + dlnz
        val_loss = beta * float(u_val) + lnz_anchor + dlnz if has_val else math.nan
        grad_norm = float(optax.tree.norm(g))
        if not (math.isfinite(loss) and math.isfinite(grad_norm)):
            raise FloatingPointError(f"re: non-finite loss or gradient at update {k}")
        if has_val and val_loss < best_val:
            best_val, best_params = val_loss, p
        p = p_next
        history.append(
            {
                "update": k,
                "loss": loss,
                "val_loss": val_loss,
                "n_eff": n_eff,
                "n_eff_fraction": n_eff / X_cg.shape[0],
                "resimulated": int(resimulated),
                "grad_norm": grad_norm,
                "sim_time_s": t_sim,
                "wall_time_s": time.perf_counter() - t0,
            }
        )
        if k % 10 == 0 or k == s.n_updates - 1:
            print(
                f"re: update {k:5d}  S_rel {loss:.5g}  held-out {val_loss:.5g}  "
                f"N_eff {n_eff / X_cg.shape[0]:.2f}  "
                f"|g| {grad_norm:.3g}  {'sim' if resimulated else 'rew'}",
                file=log,
                flush=True,
            )
        if ckpt is not None and (k + 1) % s.checkpoint_every == 0 and k + 1 < s.n_updates:
            carry = {
                "params": p,
                "opt_state": opt_state,
                "state": state,
                "X_cg": X_cg,
                "U_old": U_old,
                "key": key,
                "best_params": best_params,
            }
            extra = {"history": history, "lnz_anchor": lnz_anchor, "best_val": best_val}
            _save_checkpoint(ckpt, fingerprint, k + 1, carry, extra)
    return (best_params if has_val and s.keep == "best_held_out" else p), history
