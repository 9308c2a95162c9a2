"""Settings of the training methods (config blocks ``methods.*``).

Kept free of JAX so that config validation runs on the OpenMM side of the DAG too.
"""

from __future__ import annotations

from dataclasses import dataclass

from cgflow.config import require_fraction, require_positive, settings_from

METHODS = ("fm", "prior", "re", "fm_re")
"""``fm``: prior + network by force matching; ``prior``: the fitted prior alone, no
network and no training (the baseline a learned model has to beat); ``re``: prior +
network by relative entropy minimisation, from the prior; ``fm_re``: the same, from
the FM model of the run."""

RE_METHODS = ("re", "fm_re")
"""Methods trained by simulating the model: one model per CG time step."""


@dataclass(frozen=True)
class FMSettings:
    """Hyperparameters of force matching (the ``methods.fm`` config block).

    Attributes:
      learning_rate: peak Adam learning rate (cosine decay to
        ``final_lr_fraction`` of it over ``max_steps``).
      batch_size: frames per mini-batch (drawn uniformly, with replacement, each step).
      max_steps: optimiser steps at most.
      eval_every: steps between validation checks.
      patience: validation checks without improvement before stopping.
      ema_decay: decay of the parameter moving average that is validated and kept
        (0 keeps the raw parameters).
    """

    learning_rate: float = 3e-3
    final_lr_fraction: float = 0.01
    batch_size: int = 256
    max_steps: int = 20000
    eval_every: int = 200
    patience: int = 20
    ema_decay: float = 0.99

    def __post_init__(self):
        names = ("learning_rate", "batch_size", "max_steps", "eval_every", "patience")
        require_positive(self, "methods.fm", names)
        require_fraction(self, "methods.fm", ("final_lr_fraction", "ema_decay"), closed=False)

    @classmethod
    def from_dict(cls, d: dict) -> FMSettings:
        return settings_from(cls, d, "methods", "fm")


RE_KEEP = ("last", "best_held_out")


@dataclass(frozen=True)
class RESettings:
    """Hyperparameters of RE training (the ``methods.re`` / ``methods.fm_re`` config block).

    Attributes:
      learning_rate: peak Adam learning rate, cosine decay to ``final_lr_fraction``
        of it over ``n_updates``.
      n_updates: parameter updates.
      n_replicas: CG replicas simulated in parallel (they continue across updates).
      equilibration_steps: steps discarded at the start of every re-simulation.
      sample_steps: production steps per replica per re-simulation.
      save_every: steps between kept frames.
      neff_threshold: re-simulate when N_eff / N falls below this.
      ref_batch_size: reference frames per update, drawn from the training split
        without replacement (the whole split when it is smaller).
      checkpoint_every: updates between checkpoints.
      max_grad_norm: gradients are clipped to this global norm (0: no clipping).
      keep: ``last``: the parameters after ``n_updates`` (the protocol of Thaler et
        al.); ``best_held_out``: those with the lowest relative entropy on the
        run's validation frames, beta <U>_val + ln Z (early stopping; its estimate
        carries the noise of ln Z, so on a flat curve it may stop early).
    """

    learning_rate: float = 3e-3
    final_lr_fraction: float = 0.1
    n_updates: int = 300
    n_replicas: int = 64
    equilibration_steps: int = 100
    sample_steps: int = 1000
    save_every: int = 10
    neff_threshold: float = 0.9
    ref_batch_size: int = 1024
    checkpoint_every: int = 20
    max_grad_norm: float = 0.0
    keep: str = "last"

    def __post_init__(self):
        names = (
            "learning_rate",
            "n_updates",
            "n_replicas",
            "sample_steps",
            "save_every",
            "ref_batch_size",
            "checkpoint_every",
        )
        require_positive(self, "methods.re", names)
        require_fraction(self, "methods.re", ("final_lr_fraction", "neff_threshold"))
        if self.keep not in RE_KEEP:
            raise ValueError(f"methods.re.keep: {self.keep!r} is not one of {list(RE_KEEP)}")
        if self.equilibration_steps < 0 or self.max_grad_norm < 0:
            raise ValueError("methods.re.equilibration_steps and max_grad_norm must be >= 0")
        if self.sample_steps < self.save_every:
            raise ValueError("methods.re.sample_steps must be >= save_every")

    @classmethod
    def from_dict(cls, d: dict, block: str = "re") -> RESettings:
        try:
            return settings_from(cls, d, "methods", block)
        except ValueError as err:  # name the block the values came from (re or fm_re)
            raise ValueError(str(err).replace("methods.re.", f"methods.{block}.")) from None
