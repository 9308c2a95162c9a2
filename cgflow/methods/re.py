"""Relative entropy minimisation with trajectory reweighting (Thaler, Stupp, Zavadlav 2022).

    S_rel(theta) = beta <U_theta>_AA + ln Z_theta + const,
    grad S_rel   = beta ( <dU/dtheta>_AA - <dU/dtheta>_theta ),

where <.>_AA averages over mapped reference frames and <.>_theta over the CG model's
Boltzmann distribution. CG samples come from replicas of the model (the runner the CG
simulator uses) that continue from their last states. Between simulations the samples
of parameters theta_old are reused by reweighting:

    w_i = exp(-beta [U_theta(x_i) - U_theta_old(x_i)]) / sum_j (same),

and the model re-simulates once the effective sample size N_eff = exp(-sum w ln w)
falls below ``neff_threshold * N``. Between two sample sets, ln Z is carried over by
BAR (Bennett's acceptance ratio, pymbar), which uses both the old samples under the
new parameters and the new samples under the old ones; a chain of one-sided
exponential averages would accumulate their bias over the re-simulations.

The weights enter the gradient as constants (they estimate an average at the current
theta); they are computed from log-weights shifted by their maximum (a log-sum-exp).
Energy differences are taken frame by frame from stored energies, so float32 energies
of any size lose nothing that matters; the N_eff and free-energy bookkeeping that
accumulates over many updates is done on the host in float64.

The relative entropy of the run's validation frames is logged too; on request
(``keep: best_held_out``) the model kept is the one where it was lowest (early stopping,
as FM stops on its validation loss).

Training with the CG time step the model will be simulated at lets RE absorb the
integrator's error into the potential: its samples are those of the discretised
dynamics, not of exp(-beta U).
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from scipy.special import logsumexp

from cgflow.analysis import mmd
from cgflow.analysis.stats import bar, exp_average
from cgflow.analysis.training import plot_re_log
from cgflow.checkpoint import fingerprint
from cgflow.methods.base import Problem, Trained
from cgflow.methods.driver import Schedule, Trainer, fit
from cgflow.methods.options import RESettings
from cgflow.models.batch import energies_fn, n_frames, weighted_grad_fn
from cgflow.models.pairs import FramePairs
from cgflow.simulate.replicas import Periodic, Replicas, replica_runner

SETTINGS = RESettings  # defined in cgflow.methods.options, which imports no JAX


class REState(NamedTuple):
    """RE training state.

    Attributes:
      params: model parameters.
      opt_state: the optimiser's state.
      replicas: the CG replicas (positions (n_replicas, beads, dim)).
      X_cg: CG samples of the last re-simulation, replica-major (N, beads, dim).
      U_old: their energies under the parameters that generated them (N,).
      gen_params: the parameters that generated them.
      lnz_anchor: ln Z of those parameters relative to the first (host float64).
      resim_needed: True when the next update must re-simulate first.
    """

    params: Any
    opt_state: Any
    replicas: Replicas
    X_cg: jax.Array
    U_old: jax.Array
    gen_params: Any
    lnz_anchor: float
    resim_needed: bool


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
    lse = float(logsumexp(logw))
    logw_n = logw - lse
    w = np.exp(logw_n)
    n_eff = math.exp(-float(np.sum(w * logw_n)))
    return w, n_eff, lse - math.log(logw.size)


def re_gradient_fn(energy_fn, beta: float, n_beads: int):
    """``grad(params, X_ref, X_cg, U_old) -> (gradient, U_cg_new, mean U_ref)``.

    The gradient is beta (<dU/dtheta>_ref - sum_i w_i dU/dtheta(x_i)), with w the
    reweighting weights of the CG samples X_cg (held constant), so that for X_cg
    drawn from the current model it estimates grad S_rel. Frames of ``n_beads``
    beads (or ``(R, idx)`` with their pair lists) go through the network a chunk at
    a time (:mod:`cgflow.models.batch`).
    """
    energies = energies_fn(energy_fn, n_beads)
    weighted_grad = weighted_grad_fn(energy_fn, n_beads)

    def grad(params, X_ref, X_cg, U_old):
        u_cg = energies(params, X_cg)
        w = jax.nn.softmax(-beta * (u_cg - U_old))
        n_ref = n_frames(X_ref)
        c = jnp.concatenate([jnp.full((n_ref,), 1.0 / n_ref, w.dtype), -w])
        both = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), X_ref, X_cg)
        u, g = weighted_grad(params, both, c)
        return jax.tree.map(lambda a: beta * a, g), u_cg, jnp.mean(u[:n_ref])

    return grad


def optimizer(settings: RESettings) -> optax.GradientTransformation:
    """Adam with cosine decay over ``n_updates``, after optional gradient clipping."""
    s = settings
    schedule = optax.cosine_decay_schedule(s.learning_rate, s.n_updates, alpha=s.final_lr_fraction)
    opt = optax.adam(schedule)
    if s.max_grad_norm > 0:
        opt = optax.chain(optax.clip_by_global_norm(s.max_grad_norm), opt)
    return opt


def lnz_difference(w_forward: np.ndarray, w_reverse: np.ndarray) -> tuple[float, float]:
    """ln Z1 - ln Z0 and its standard error from reduced works between two sample
    sets (as ``stats.bar``); where BAR finds no solution, the one-sided exponential
    average over the samples of state 0, with a NaN standard error."""
    try:
        df, ddf = bar(w_forward, w_reverse)
    except ValueError:
        df, ddf = exp_average(w_forward), math.nan
    return -df, ddf


class RunawayGuard:
    """Raises FloatingPointError when the S_rel estimate falls more than ``nats``
    below the first value it was called with (0: never): a runaway estimate, whose
    samples no longer inform the reweighting (``RESettings.divergence_nats``)."""

    def __init__(self, nats: float, dt: float):
        self.nats, self.dt, self.first = nats, dt, None

    def __call__(self, loss: float) -> None:
        if self.first is None:
            self.first = loss
        if self.nats and loss < self.first - self.nats:
            raise FloatingPointError(
                f"re: the S_rel estimate ran away, from {self.first:.4g} to {loss:.4g} "
                f"nats per frame (more than divergence_nats {self.nats:g}): the samples "
                f"no longer inform the reweighting; the model exploits its integrator "
                f"(dt {self.dt}) or the learning rate is too high"
            )


def _sampler(energy_fn, kT, integrator, n_beads, save_every, n_saves, pairs):
    """RE's replica runner: in free space, or in the box of ``pairs`` with
    neighbour lists (the CG simulator's runner)."""
    periodic = None if pairs is None else Periodic(pairs.box, pairs.cutoff)
    return replica_runner(energy_fn, kT, integrator, n_beads, save_every, n_saves, periodic)


def _with_lists(runner, reps: Replicas) -> Replicas:
    """Replicas with fresh neighbour lists where the runner uses them, at the
    capacity in use (a new capacity would compile the runner again). RE's state
    keeps none, so its checkpoints do not depend on their capacity."""
    if runner.neighbors is None:
        return reps
    return reps._replace(nbrs=runner.neighbors.refresh(reps.state.position))


class FrameLists:
    """RE's frames as the model takes them: positions, or with a pair lister
    ``(positions, pair lists)``. The reference and validation frames are listed
    once; a CG sample set when it is first met (the last one is kept)."""

    def __init__(self, pairs: FramePairs | None, R_ref, R_val):
        self.pairs, self._R = pairs, (R_ref, R_val)
        self._lists = None if pairs is None else [pairs(R_ref), pairs(R_val)]
        self._last = (None, None)

    def __call__(self, X):
        if self.pairs is None:
            return X
        if self._last[0] is not X:
            self._last = (X, self.pairs(X))
        return X, self.pairs.fit(self._last[1])

    def _listed(self, k: int):
        if self.pairs is None:
            return self._R[k]
        self._lists[k] = self.pairs.fit(self._lists[k])  # the capacity may have grown
        return self._R[k], self._lists[k]

    def all(self, X_cg):
        """(CG samples, reference frames, validation frames), as the model takes them."""
        X_cg = self(X_cg)  # first: its lists may grow the capacity
        return X_cg, self._listed(0), self._listed(1)


def _held_out(R_val, R_ref, features):
    """(whether there are held-out frames, their sample score, the frames whose
    relative entropy is logged: the held-out ones, else one reference frame)."""
    has_val = R_val is not None and len(R_val) > 0
    features = features or (lambda R: np.asarray(R, float).reshape(len(R), -1))
    sample_score = mmd.HeldOutSampleScore(R_val, features) if has_val else None
    return has_val, sample_score, jnp.asarray(R_val if has_val else R_ref[:1], jnp.float32)


def _updater(grad_fn, energies, opt, n_ref: int, batch: int):
    """RE's jitted update: the gradient on a batch of reference frames drawn without
    replacement (a training split no larger than the batch is used whole), the
    held-out frames' mean energy, and the optimiser's step."""

    @jax.jit
    def update(params, opt_state, X_cg, X_ref, X_val, U_old, key):
        idx = jax.random.choice(key, n_ref, (batch,), replace=False)
        g, u_cg, u_ref = grad_fn(params, jax.tree.map(lambda a: a[idx], X_ref), X_cg, U_old)
        u_val = jnp.mean(energies(params, X_val))
        updates, opt_state = opt.update(g, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, g, u_cg, u_ref, u_val

    return update


def _starter(runner, R_train, masses, opt, n_replicas: int, n_samples: int):
    """RE's initial state: replicas started from training frames drawn at random,
    no samples yet (the first step re-simulates)."""
    R_start = np.asarray(R_train, np.float32)

    def init(params, key) -> REState:
        k_start, k_init = jax.random.split(key)
        pick = np.asarray(jax.random.randint(k_start, (n_replicas,), 0, R_start.shape[0]))
        reps = runner.init(k_init, R_start[pick], masses, params)
        reps = reps._replace(nbrs=None)  # lists are made anew for every re-simulation
        X_cg = jnp.zeros((n_samples, *R_start.shape[1:]), jnp.float32)
        U0 = jnp.zeros(n_samples)
        return REState(params, opt.init(params), reps, X_cg, U0, params, 0.0, True)

    return init


def _resimulator(runner, energies, listed, settings: RESettings, dt: float):
    """RE's re-simulation: the replicas continue under the current parameters
    (equilibration, then ``sample_steps`` saved every ``save_every``); the samples and
    their energies become the state's; FloatingPointError where the model blew up."""
    s, n_saves = settings, settings.sample_steps // settings.save_every

    def resimulate(state: REState) -> REState:
        p, reps = state.params, _with_lists(runner, state.replicas)
        if s.equilibration_steps:
            reps = runner.advance(reps, p, s.equilibration_steps)
        reps, frames = runner.record(reps, p, n_saves)
        X_cg = jnp.swapaxes(frames, 0, 1).reshape((-1,) + frames.shape[2:])
        U_old = energies(p, listed(X_cg))
        if not (np.all(np.isfinite(np.asarray(X_cg))) and np.all(np.isfinite(U_old))):
            raise FloatingPointError(
                f"re: the CG model blew up while sampling (dt {dt}); "
                "lower methods.re.learning_rate or the time step"
            )
        return state._replace(
            replicas=reps._replace(nbrs=None), X_cg=X_cg, U_old=U_old, gen_params=p,
            resim_needed=False,
        )  # fmt: skip

    return resimulate


def _carried_lnz(u_gen_new, old: REState, new: REState, u_cur_old, beta: float):
    """ln Z(new.gen_params) - ln Z(old.gen_params) and its standard error, by BAR
    between the old samples (energies under both parameter sets: ``old.U_old`` and
    ``u_cur_old``) and the new (``new.U_old``, and ``u_gen_new`` under the old
    parameters); where BAR finds no solution, the one-sided exponential average over
    the old samples, with a NaN standard error."""
    w_forward = beta * (np.asarray(u_cur_old, np.float64) - np.asarray(old.U_old, np.float64))
    w_reverse = beta * (np.asarray(u_gen_new, np.float64) - np.asarray(new.U_old, np.float64))
    return lnz_difference(w_forward, w_reverse)


def re_trainer(problem: Problem, settings: RESettings, opt) -> Trainer:
    """RE as init/step over REState; each step is one parameter update.

    Args:
      problem: the run: its ``energy_fn(params, R) -> scalar``; its training frames
        ``R_train`` (frames, beads, dim), the reference of the relative entropy and
        where the replicas start (drawn at random); ``masses`` and ``kT``; the
        ``integrator`` RE samples with (its dt is the one trained at); held-out frames
        ``R_val``, whose relative entropy beta <U>_val + ln Z is reported as
        ``val_srel`` and whose squared MMD to the CG samples (reweighted to the
        parameters each update starts from) as ``val_mmd``, compared in the system's
        ``features`` (None: the flat positions); and a periodic model's ``pairs``
        lister: the replicas run in its box with neighbour lists, and every frame the
        gradient or the reweighting evaluates is listed once (None: free space, all
        pairs).
      settings: RESettings; ``val_loss`` is the held-out score ``settings.keep``
        stops on.
      opt: an Optax GradientTransformation.
    """
    p, s, beta = problem, settings, 1.0 / problem.kT
    energy_fn, integrator, masses, pairs = p.energy_fn, p.integrator, p.masses, p.pairs
    R_ref = jnp.asarray(p.R_train, jnp.float32)
    n_ref, n_beads = R_ref.shape[0], R_ref.shape[1]
    batch = min(s.ref_batch_size, n_ref)
    n_saves = s.sample_steps // s.save_every
    n_samples = n_saves * s.n_replicas
    runner = _sampler(energy_fn, p.kT, integrator, n_beads, s.save_every, n_saves, pairs)
    n_force_per_resim = s.n_replicas * (s.equilibration_steps + n_saves * s.save_every)
    grad_fn = re_gradient_fn(energy_fn, beta, n_beads)
    energies = jax.jit(energies_fn(energy_fn, n_beads))
    has_val, sample_score, R_val = _held_out(p.R_val, R_ref, p.features)
    listed = FrameLists(pairs, R_ref, R_val)

    update = _updater(grad_fn, energies, opt, n_ref, batch)

    init = _starter(runner, p.R_train, masses, opt, s.n_replicas, n_samples)
    resimulate = _resimulator(runner, energies, listed, s, integrator.dt)
    guard = RunawayGuard(s.divergence_nats, integrator.dt)

    def step(state: REState, key):
        t_sim, resimulated, anchor, lnz_se = 0.0, False, state.lnz_anchor, math.nan
        stale = None
        if not state.resim_needed:  # reweight the samples we have to the current parameters
            out = update(state.params, state.opt_state, *listed.all(state.X_cg), state.U_old, key)
            w, n_eff, dlnz = reweight(np.asarray(out[3]), np.asarray(state.U_old), beta)
            if n_eff < s.neff_threshold * n_samples:
                stale = (state, out[3])  # ln Z is carried to the new samples by BAR
                state = state._replace(resim_needed=True)
        if state.resim_needed:  # fresh samples of the current model, then the update
            ts = time.perf_counter()
            state = resimulate(state)
            jax.block_until_ready(state.U_old)
            t_sim, resimulated = time.perf_counter() - ts, True
            if stale is not None:
                u_gen_new = energies(stale[0].gen_params, listed(state.X_cg))
                dlnz_bar, lnz_se = _carried_lnz(u_gen_new, stale[0], state, stale[1], beta)
                anchor += dlnz_bar
            out = update(state.params, state.opt_state, *listed.all(state.X_cg), state.U_old, key)
            w, n_eff, dlnz = reweight(np.asarray(out[3]), np.asarray(state.U_old), beta)
        params, opt_state, g, _, u_ref, u_val = out
        srel_val = beta * float(u_val) + anchor + dlnz if has_val else math.nan
        mmd_val = sample_score(state.X_cg, w) if has_val else math.nan
        metrics = {
            "loss": beta * float(u_ref) + anchor + dlnz,
            "val_loss": mmd_val if s.keep == "best_sample_score" else srel_val,
            "val_srel": srel_val,
            "val_mmd": mmd_val,
            "n_eff": n_eff,
            "n_eff_fraction": n_eff / n_samples,
            "resimulated": int(resimulated),
            "grad_norm": float(optax.tree.norm(g)),
            "sim_time_s": t_sim,
            "lnz_bar_se": lnz_se,
            "force_evaluations": float(n_force_per_resim * resimulated),
        }
        guard(metrics["loss"])
        return state._replace(params=params, opt_state=opt_state, lnz_anchor=anchor), metrics

    optional = ("lnz_bar_se", "val_srel", "val_mmd")
    return Trainer(init, step, lambda st: st.params, pure=False, optional=optional)


def train_re(problem: Problem, settings: RESettings, key, stop_after: int | None = None):
    """Minimise the relative entropy of ``problem``'s model, from ``problem.params``,
    to its training frames (see :func:`re_trainer`), checkpointed to
    ``problem.checkpoint`` every ``settings.checkpoint_every`` updates and resumed
    from where written with the same settings and ``problem.inputs``, a digest of
    everything else the result depends on; ``stop_after`` updates (tests).

    Returns:
      (params, history): the parameters (the last, or the best on R_val) and one
      dict per update with ``update, loss, val_loss, n_eff, n_eff_fraction,
      resimulated, grad_norm, sim_time_s, wall_time_s``. ``loss`` is S_rel up to a
      constant, beta <U>_ref + ln Z, at the parameters before that update, with ln Z
      tracked across re-simulations by the reweighting estimate; ``val_loss`` is the
      same on R_val (NaN without it).
    """
    s, p = settings, problem
    trainer = re_trainer(p, s, optimizer(s))
    schedule = Schedule(
        name="re",
        n_checks=s.n_updates,
        keep="last" if s.keep == "last" else "best",
        ema_decay=s.ema_decay,
        checkpoint_every=s.checkpoint_every,
        step_name="update",
    )
    fp = fingerprint(s.to_dict(), p.integrator.to_dict(), p.kT, list(np.shape(p.R_train)),
                     len(p.R_val), p.inputs)  # fmt: skip
    return fit(trainer, p.params, key, schedule, p.checkpoint, fp, p.log, stop_after)


def train(problem: Problem, settings: RESettings, key) -> Trained:
    """The registry's entry (``re`` and ``fm_re``): RE at the run's time step, from the
    prior or from the start model, on the training frames."""
    p = problem
    start = p if p.start is None else replace(p, params=p.start)
    params, history = train_re(start, settings, key)
    val = [h["val_loss"] for h in history]
    best = settings.keep != "last" and p.R_val.shape[0] and np.isfinite(val).any()
    info = {
        "settings": settings.to_dict(),
        "dt": p.integrator.dt,
        "integrator": p.integrator.to_dict(),
        "updates": len(history),
        "resimulations": int(sum(h["resimulated"] for h in history)),
        "final_loss": history[-1]["loss"],
        # the parameters kept: the last, or those before the update with the lowest
        # held-out score (S_rel or the sample MMD)
        "kept_update": int(np.nanargmin(val)) if best else len(history),
        "n_fit": int(p.R_train.shape[0]),
        "n_val": int(p.R_val.shape[0]),
        **({"pair_lists": p.pairs.describe()} if p.pairs is not None else {}),
        "timing": re_timing(history),
        # force evaluations of the CG sampling (the gradients add one energy
        # gradient per reference and CG frame per update, not counted)
        "cost": {
            "force_evaluations": int(sum(h["force_evaluations"] for h in history)),
            "wall_time_s": history[-1]["wall_time_s"],
        },
    }
    return Trained(params, history, info, plot_re_log)


def re_timing(history: list[dict]) -> dict:
    """Wall time per RE update and the share of it spent simulating (vs reweighting
    and the gradient), over the updates after the first (which also compiles)."""
    if len(history) < 2:
        return {}
    wall = history[-1]["wall_time_s"] - history[0]["wall_time_s"]
    sim = sum(h["sim_time_s"] for h in history[1:])
    n = len(history) - 1
    return {
        "updates_timed": n,
        "wall_per_update_s": wall / n,
        "simulating_per_update_s": sim / n,
        "simulating_share": sim / wall if wall > 0 else float("nan"),
        "first_update_s": history[0]["wall_time_s"],
    }
