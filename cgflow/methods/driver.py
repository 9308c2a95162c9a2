"""One host-side training driver for every method.

A method supplies a :class:`Trainer`: ``init``/``step`` functions over a typed state
(a NamedTuple whose docstring gives shapes), with its Optax optimiser passed in when
it was built. The driver runs the steps in checks; after every check it averages the
parameters (an exponential moving average, ``optax.incremental_update``), scores them
on held-out data, keeps the best, stops early when the score has not improved for
``patience`` checks (``flax.training.early_stopping``), logs one row, and writes a
checkpoint from which a restarted run resumes.

Pure steps (no host decisions) are scanned: one compiled program runs a whole check.
A step that needs the host (RE decides between reweighting and re-simulating) runs
once per check.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import jax
import optax
from flax.training.early_stopping import EarlyStopping

from cgflow import checkpoint as ckpt


class Trainer(NamedTuple):
    """A method's training, as functions.

    Attributes:
      init: ``init(params, key) -> state``.
      step: ``step(state, key) -> (state, metrics)``, metrics a dict of scalars.
      params: ``params(state) -> params``, the current parameters.
      pure: True when ``step`` is a pure JAX function (scanned within a check).
      validate: ``validate(params) -> score`` on held-out data (lower is better),
        applied to the averaged parameters after each check; None when the step
        reports ``val_loss`` itself, scored on the parameters it started from.
      optional: metrics that are NaN when a step has nothing to report (any other
        non-finite metric means the training diverged).
    """

    init: Callable
    step: Callable
    params: Callable
    pure: bool = False
    validate: Callable | None = None
    optional: tuple[str, ...] = ()


@dataclass(frozen=True)
class Schedule:
    """How the driver runs a trainer.

    Attributes:
      name: prefix of log lines (the method).
      n_checks: checks at most.
      steps_per_check: trainer steps per check (pure trainers only).
      ema_decay: decay of the parameter average (0: the raw parameters).
      patience: checks without a better score before stopping (None: never stop).
      keep: ``last``: the (averaged) parameters at the end; ``best``: those with the
        best score.
      checkpoint_every: checks between checkpoints (0: none).
      log_every: checks between log lines.
      step_name: name of the history column counting steps: for pure trainers the
        steps done, for others the check's index.
    """

    name: str
    n_checks: int
    steps_per_check: int = 1
    ema_decay: float = 0.0
    patience: int | None = None
    keep: str = "last"
    checkpoint_every: int = 0
    log_every: int = 10
    step_name: str = "step"


def fit(
    trainer: Trainer,
    params,
    key,
    schedule: Schedule,
    checkpoint: str | Path | None = None,
    fingerprint: str = "",
    log=None,
    stop_after: int | None = None,
):
    """Train ``params`` with ``trainer`` as ``schedule`` says.

    Args:
      trainer: the method's Trainer.
      params: starting parameters.
      key: JAX PRNG key (the state's init and every step draw from it).
      schedule: Schedule.
      checkpoint: file to write every ``schedule.checkpoint_every`` checks and to
        resume from when it was written with the same ``fingerprint``.
      fingerprint: hash of everything the run depends on (settings, data shapes).
      stop_after: stop after this many checks, leaving the checkpoint (tests).

    Returns:
      The parameters kept, and the history: one dict per check with the step
      count, the step's metrics (averaged over a check), ``val_loss`` and
      ``wall_time_s``.
    """
    log = log if log is not None else sys.stderr
    s = schedule
    # the state's key is folded off, so the steps draw the same keys whatever init needs
    state = trainer.init(params, jax.random.fold_in(key, 1))
    avg = trainer.params(state)
    run = _Run(s, trainer, avg)
    resumed = ckpt.load(checkpoint, run.tree(state, avg, key), fingerprint, log, s.name)
    start = 0
    if resumed is not None:
        (state, avg, key, run.best_params), meta, _ = _unpack(resumed)
        start = run.restore(meta)
        print(f"{s.name}: resumed from {checkpoint} at check {start}", file=log, flush=True)
    advance = _advance(trainer, s)
    t0 = time.perf_counter() - (run.history[-1]["wall_time_s"] if run.history else 0.0)
    end = s.n_checks if stop_after is None else min(s.n_checks, stop_after)
    for c in range(start, end):
        key, sub = jax.random.split(key)
        before = trainer.params(state)
        state, avg, metrics = advance(state, avg, sub)
        if trainer.validate is not None:
            score, scored = float(trainer.validate(avg)), avg
        else:
            score, scored = float(metrics.get("val_loss", math.nan)), before
        count = (c + 1) * s.steps_per_check if trainer.pure else c
        row = {s.step_name: count, **_floats(metrics), "val_loss": score}
        row["wall_time_s"] = time.perf_counter() - t0
        stop = run.record(row, score, scored, c, log)
        if checkpoint is not None and s.checkpoint_every and (c + 1) % s.checkpoint_every == 0:
            if c + 1 < s.n_checks and not stop:
                ckpt.save(checkpoint, run.tree(state, avg, key), run.meta(c + 1, fingerprint))
        if stop:
            break
    keep_best = s.keep == "best" and math.isfinite(run.best_score)
    return (run.best_params if keep_best else avg), run.history


def _advance(trainer: Trainer, s: Schedule):
    """``advance(state, avg, key) -> (state, avg, metrics)``: one check."""

    def average(avg, params):
        if s.ema_decay == 0:
            return params
        return optax.incremental_update(params, avg, step_size=1.0 - s.ema_decay)

    if trainer.pure:

        @jax.jit
        def block(state, avg, key):
            def body(carry, k):
                st, av = carry
                st, metrics = trainer.step(st, k)
                return (st, average(av, trainer.params(st))), metrics

            keys = jax.random.split(key, s.steps_per_check)
            (state, avg), metrics = jax.lax.scan(body, (state, avg), keys)
            return state, avg, jax.tree.map(lambda m: m.mean(), metrics)

        return block
    average = jax.jit(average)

    def one(state, avg, key):
        state, metrics = trainer.step(state, key)
        return state, average(avg, trainer.params(state)), metrics

    return one


def _floats(metrics: dict) -> dict:
    return {k: float(v) for k, v in metrics.items() if k != "val_loss"}


def _unpack(loaded):
    tree, meta, arrays = loaded
    return (tree["state"], tree["avg"], tree["key"], tree["best"]), meta, arrays


class _Run:
    """Host-side bookkeeping: history, best parameters, early stopping."""

    def __init__(self, s: Schedule, trainer: Trainer, params):
        self.s = s
        self.history: list[dict] = []
        self.best_score = math.inf
        self.best_params = params
        # Flax stops once patience_count exceeds its patience: after patience + 1 checks
        # without improvement; ours stops after ``patience``
        patience = s.patience - 1 if s.patience is not None else sys.maxsize
        self.stopper = EarlyStopping(min_delta=0.0, patience=patience)
        self.validated = trainer.validate is not None
        self.optional = ("val_loss", *trainer.optional)

    def tree(self, state, avg, key):
        return {"state": state, "avg": avg, "key": key, "best": self.best_params}

    def meta(self, check: int, fingerprint: str) -> dict:
        return {
            "fingerprint": fingerprint,
            "check": check,
            "history": self.history,
            "best_score": self.best_score,
            "patience_count": int(self.stopper.patience_count),
            "best_metric": float(self.stopper.best_metric),
        }

    def restore(self, meta: dict) -> int:
        self.history = meta["history"]
        self.best_score = meta["best_score"]
        self.stopper = self.stopper.replace(
            patience_count=meta["patience_count"], best_metric=meta["best_metric"]
        )
        return meta["check"]

    def record(self, row: dict, score: float, scored, c: int, log) -> bool:
        """Log the row, keep the best parameters; True when training should stop."""
        self.history.append(row)
        # val_loss is NaN without held-out data (a step that scores none); any other
        # non-finite number means the training diverged
        bad = [
            k for k, v in row.items() if math.isinf(v) or (math.isnan(v) and k not in self.optional)
        ]
        if bad or math.isinf(score) or (math.isnan(score) and self.validated):
            raise FloatingPointError(f"{self.s.name}: diverged at check {c}: {row}")
        if math.isfinite(score) and score < self.best_score:
            self.best_score, self.best_params = score, scored
        if math.isfinite(score):
            self.stopper = self.stopper.update(score)
        if c % self.s.log_every == 0 or c == self.s.n_checks - 1 or self.stopper.should_stop:
            shown = "  ".join(f"{k} {v:.5g}" for k, v in row.items() if k != "wall_time_s")
            print(f"{self.s.name}: {shown}  best {self.best_score:.5g}", file=log, flush=True)
        if self.stopper.should_stop:
            print(f"{self.s.name}: early stop at check {c}", file=log, flush=True)
        return bool(self.stopper.should_stop)
