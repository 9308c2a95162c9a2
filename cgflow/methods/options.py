"""The settings of the built-in training methods, in one module that imports no JAX.

Each method's module re-exports its class as ``SETTINGS``; the registry reads them
from here (``BY_MODULE``), so that checking a config, building the schema and
planning the DAG (``snakemake -n``, and every cluster job's Snakemake process)
import no JAX, Flax or Optax.
"""

from __future__ import annotations

from dataclasses import dataclass

from cgflow.settings import Settings, setting
from cgflow.simulate.settings import sampling_memory

RE_KEEP = ("last", "best_held_out", "best_sample_score")
"""Which parameters RE keeps (its ``keep`` setting)."""

FM_KEEP = ("best", "last")
"""Which parameters FM (and energy matching) keeps (its ``keep`` setting)."""


@dataclass(frozen=True)
class MethodSettings(Settings):
    """Base of a method's settings: what the train step asks of every method.

    A method overrides these where it differs from the defaults; the train step calls
    them on any method without knowing which it is.
    """

    def sampling_bytes(self, n_beads: int, dim: int, width: int) -> int:
        """Peak memory of the CG sampling the method does while training, checked
        before training starts (0: it samples nothing)."""
        return 0

    def network_temperature_form(self) -> str:
        """How a model trained across temperatures reads kT (``input`` or
        ``entropy``, see :mod:`cgflow.models.energy`)."""
        return "input"


@dataclass(frozen=True)
class FMSettings(MethodSettings):
    """Hyperparameters of force matching (the ``methods.fm`` config block).

    Attributes:
      learning_rate: peak Adam learning rate (cosine decay to ``final_lr_fraction``
        of it over ``max_steps``).
      final_lr_fraction: the learning rate's final fraction.
      batch_size: frames per mini-batch (drawn uniformly, with replacement, each step).
      max_steps: optimiser steps at most.
      eval_every: steps between validation checks.
      patience: validation checks without improvement before stopping.
      ema_decay: decay of the parameter moving average that is validated and kept
        (0 keeps the raw parameters).
      keep: ``best``: the average with the lowest validation loss (early stopping);
        ``last``: the average at the end of training (after ``max_steps``, or where
        ``patience`` stopped it). ``last`` suits data whose force noise hides the
        validation loss's differences between models (the double well at large d):
        there, picking the best check picks noise.
    """

    block = "methods.fm"

    learning_rate: float = setting(3e-3, gt=0, doc="peak Adam learning rate")
    final_lr_fraction: float = setting(
        0.01, ge=0, le=1, doc="final learning rate as a fraction of the peak (cosine decay)"
    )
    batch_size: int = setting(256, ge=1, doc="frames per mini-batch")
    max_steps: int = setting(20000, ge=1, doc="optimiser steps at most")
    eval_every: int = setting(200, ge=1, doc="steps between validation checks")
    patience: int = setting(20, ge=1, doc="checks without improvement before stopping")
    ema_decay: float = setting(
        0.99, ge=0, lt=1, doc="decay of the parameter moving average that is validated"
    )
    keep: str = setting(
        "best",
        choices=FM_KEEP,
        doc="best (the average with the lowest validation loss) or last (the average at "
        "the end of training)",
    )


@dataclass(frozen=True)
class RESettings(MethodSettings):
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
      ema_decay: the model is the exponential moving average of the parameters over
        updates with this decay (0: the raw parameters; FM averages too).
      keep: ``last``: the parameters after ``n_updates`` (the protocol of Thaler et
        al.); ``best_held_out``: those with the lowest relative entropy on the
        run's validation frames, beta <U>_val + ln Z (early stopping; its estimate
        carries the noise of ln Z, so on a flat curve it may stop early);
        ``best_sample_score``: those whose CG samples (reweighted to them) are
        closest to the validation frames in the system's collective variables,
        by the squared MMD (``val_mmd``, logged in every mode): a score that looks
        at where the samples are, so a model exploiting its integrator's error
        cannot fool it.
      divergence_nats: stop when the S_rel estimate (``loss``, nats per frame) has
        fallen this far below its first value (0: never). S_rel is bounded below
        (by the reference's entropy), so a runaway estimate means the samples no
        longer inform the reweighting: the model digs wells its integrator steps
        over, or the learning rate is too high. The run is then recorded as
        diverged (an unusable model, scored unstable), not trained on for nothing.
    """

    block = "methods.re"

    learning_rate: float = setting(3e-3, gt=0, doc="peak Adam learning rate")
    final_lr_fraction: float = setting(
        0.1, ge=0, le=1, doc="final learning rate as a fraction of the peak (cosine decay)"
    )
    n_updates: int = setting(300, ge=1, doc="parameter updates")
    n_replicas: int = setting(64, ge=1, doc="CG replicas, continued across updates")
    equilibration_steps: int = setting(100, ge=0, doc="steps discarded per re-simulation")
    sample_steps: int = setting(1000, ge=1, doc="production steps per re-simulation")
    save_every: int = setting(10, ge=1, doc="steps between kept frames")
    neff_threshold: float = setting(0.9, ge=0, le=1, doc="re-simulate when N_eff / N is below")
    ref_batch_size: int = setting(1024, ge=1, doc="reference frames per update")
    checkpoint_every: int = setting(20, ge=1, doc="updates between checkpoints")
    max_grad_norm: float = setting(0.0, ge=0, doc="clip gradients to this norm (0: none)")
    ema_decay: float = setting(
        0.0, ge=0, lt=1, doc="decay of the parameter average over updates (0: none)"
    )
    keep: str = setting(
        "last",
        choices=RE_KEEP,
        doc="last (after n_updates, as Thaler et al.), best_held_out (lowest relative "
        "entropy on the validation split) or best_sample_score (CG samples closest to the "
        "validation frames in the collective variables, squared MMD)",
    )

    divergence_nats: float = setting(
        1000.0,
        ge=0,
        doc="stop when the S_rel estimate falls this far below its first value "
        "(nats per frame; 0: never)",
    )

    def sampling_bytes(self, n_beads: int, dim: int, width: int) -> int:
        """Peak memory of the CG sampling of one re-simulation (an estimate)."""
        n_saved = self.sample_steps // self.save_every
        return sampling_memory(self.n_replicas, n_saved, n_beads, dim, width)

    def check(self):
        if self.sample_steps < self.save_every:
            raise ValueError("methods.re.sample_steps must be >= save_every")
        if self.sample_steps % self.save_every:
            raise ValueError(
                f"methods.re.sample_steps: {self.sample_steps} is not a multiple of "
                f"save_every ({self.save_every})"
            )


@dataclass(frozen=True)
class EMSettings(FMSettings):
    """Hyperparameters of energy matching (the ``methods.em`` config block): FM's
    optimiser and stopping settings, and the weights of the two terms.

    Attributes:
      force_weight: w_F, the weight of the force term.
      energy_weight: w_E, the weight of the energy term (0: FM on the temperatures
        pooled, with the temperature as an input).
      variance_weight: w_V, the weight of the second-derivative term, which fits
        d^2(beta A)/d beta^2 to minus the conditional variance of the all-atom
        energy (0: off; it costs a second forward-mode pass, and the entropy form,
        whose d(beta A)/d beta does not depend on T, cannot fit it).
      temperature_form: ``input``: the network reads the standardised kT beside the
        coordinates (any temperature dependence); ``entropy``: it outputs an energy
        and an entropy, A = E(R) - kT S(R) (see :mod:`cgflow.models.energy`).
    """

    block = "methods.em"

    force_weight: float = setting(1.0, ge=0, doc="weight of the force term")
    energy_weight: float = setting(1.0, ge=0, doc="weight of the all-atom energy term")
    variance_weight: float = setting(
        0.0, ge=0, doc="weight of the conditional-variance term (0: off)"
    )
    temperature_form: str = setting(
        "input",
        choices=("input", "entropy"),
        doc="how the network reads kT: as an input (any dependence), or as A = E(R) - kT S(R)",
    )

    def network_temperature_form(self) -> str:
        return self.temperature_form

    def check(self) -> None:
        if self.force_weight == 0 and self.energy_weight == 0:
            raise ValueError(f"{self.block}: force_weight and energy_weight are both 0")


@dataclass(frozen=True)
class PriorSettings(MethodSettings):
    """The ``methods.prior`` block takes no settings."""

    block = "methods.prior"


@dataclass(frozen=True)
class NearestSettings(MethodSettings):
    """The ``methods.fm_nearest`` block takes no settings."""

    block = "methods.fm_nearest"


@dataclass(frozen=True)
class RKLSettings(MethodSettings):
    """Settings of the data-free reverse-KL method (the ``methods.rkl`` block).

    Attributes:
      latent_dim: dimension k of the latent CG variables z.
      hidden: width of the two hidden layers of decoder and encoder.
      samples_per_step: (z, x) pairs drawn per optimiser step.
      steps: optimiser steps.
      learning_rate: Adam learning rate (cosine decay to 1 % of it).
      anneal_fraction: share of the steps over which beta rises to its target.
      beta_start_fraction: beta at the start, as a fraction of the target.
      min_log_sigma: floor of the decoder's and encoder's log standard deviations.
      init_scale: the decoder's standard deviation at the start, so that the first
        samples cover the region the energy is explored in.
      log_every: steps per logged check.
    """

    block = "methods.rkl"

    latent_dim: int = setting(1, ge=1, le=8, doc="dimension of the latent CG variables z")
    hidden: int = setting(64, ge=1, doc="width of the hidden layers of decoder and encoder")
    samples_per_step: int = setting(256, ge=2, doc="(z, x) pairs drawn per optimiser step")
    steps: int = setting(10000, ge=1, doc="optimiser steps")
    learning_rate: float = setting(1e-3, gt=0, doc="peak Adam learning rate")
    anneal_fraction: float = setting(
        0.3, ge=0, le=1, doc="share of the steps over which beta rises to the target"
    )
    beta_start_fraction: float = setting(
        0.1, gt=0, le=1, doc="beta at the start as a fraction of the target"
    )
    min_log_sigma: float = setting(-7.0, doc="floor of the log standard deviations")
    init_scale: float = setting(
        2.0, gt=0, doc="decoder standard deviation at the start (coordinate units)"
    )
    log_every: int = setting(200, ge=1, doc="steps per logged check")


@dataclass(frozen=True)
class FlowSettings(MethodSettings):
    """Settings of the data-free flow (the ``methods.rkl_flow`` block).

    Attributes:
      n_layers: affine coupling layers (alternating halves; even, so each
        coordinate is moved as often).
      hidden: width of the two hidden layers of each coupling's network.
      scale_bound: the largest |log scale| one layer applies.
      samples_per_step, steps, learning_rate, anneal_fraction,
        beta_start_fraction, init_scale, log_every: as for ``rkl``.
    """

    block = "methods.rkl_flow"

    n_layers: int = setting(8, ge=2, le=64, doc="affine coupling layers (even)")
    hidden: int = setting(64, ge=1, doc="width of the coupling networks' hidden layers")
    scale_bound: float = setting(3.0, gt=0, doc="largest |log scale| of one layer")
    samples_per_step: int = setting(256, ge=2, doc="samples drawn per optimiser step")
    steps: int = setting(10000, ge=1, doc="optimiser steps")
    learning_rate: float = setting(1e-3, gt=0, doc="peak Adam learning rate")
    anneal_fraction: float = setting(
        0.3, ge=0, le=1, doc="share of the steps over which beta rises to the target"
    )
    beta_start_fraction: float = setting(
        0.1, gt=0, le=1, doc="beta at the start as a fraction of the target"
    )
    init_scale: float = setting(2.0, gt=0, doc="width of the base Gaussian (coordinate units)")
    log_every: int = setting(200, ge=1, doc="steps per logged check")

    def check(self):
        if self.n_layers % 2:
            raise ValueError(f"{self.block}.n_layers: {self.n_layers} is odd; give an even number")


BY_MODULE = {
    "cgflow.methods.fm": FMSettings,
    "cgflow.methods.re": RESettings,
    "cgflow.methods.em": EMSettings,
    "cgflow.methods.prior": PriorSettings,
    "cgflow.methods.nearest": NearestSettings,
    "cgflow.methods.rkl": RKLSettings,
    "cgflow.methods.rkl_flow": FlowSettings,
}
