"""Claims under test: paired comparisons of two methods, with a 95 % CI and a verdict.

Each kind of claim is one module (``better``, ``degrades_less``, ``within``,
``at_least``, ``more_stable``; ``registry`` lists them) holding its config checks,
the cells it reads and its evaluation; ``core`` holds what they share, ``table``
the claims table and its guards, ``compare`` two runs' tables side by side.

A claim (config ``claims:``) compares a ``method`` with a ``baseline`` on a system's
primary metric (an error: lower is better), over the seeds both ran stably:

- ``kind: better``: the difference method - baseline at one (n_train, dt) cell
  (``n_train``, ``dt``: ``min``, ``max`` or a value). Negative: the method is better.
- for a system at several temperatures, ``temperature`` (``min``, ``max`` or a
  value) picks the one compared.
- ``kind: degrades_less``: how much more the method's error grows than the
  baseline's along an axis: along ``dt`` from its smallest to its largest value
  (at ``n_train``), along ``n_train`` from its largest to its smallest (at ``dt``):
  [m(worse end) - m(better end)] - [b(worse end) - b(better end)]. Negative: the
  method degrades less.

The CI is a statement about the method, not one trained model: a Student-t
interval over the seeds' paired effects (``stats.seed_mean_ci``), which holds the
spread between independent trainings and each seed's sampling noise, plus the
sampling noise of the test reference that all seeds share (from the runs' bootstrap
draws, paired on the reference side, see ``cgflow.analysis.stats``).

Two more kinds test a method on its own:

- ``kind: within``: the method's error exceeds the baseline's by less than
  ``margin`` (non-inferiority; e.g. a data-free generator against ``reference``,
  the training reference's own score, i.e. the noise floor, or against FM trained
  on data). ``holds`` when the CI of method - baseline lies below the margin,
  ``does not hold`` when it lies above it.
- ``kind: at_least``: the method's ``metric`` (default the primary one; e.g.
  ``latent_corr_x1``, how well a generator's latent variable tracks the CV) is at
  least ``threshold``: ``holds`` when its CI lies above it, ``does not hold`` when
  below.

And one compares how often two methods' CG runs blow up:

- ``kind: more_stable``: the share of the method's runs (seeds) in the claim's
  (n_train, dt) cell that blew up, minus the baseline's, with Newcombe's score
  interval for a difference of proportions (``stats.proportion_difference_ci``).
  Negative: the method blows up less often. It is read at the claim's ``dt``; a
  time-step claim sets ``dt: max``, the system's largest. The seeds are the unit: a
  run blows up as a whole (``cgflow.simulate.langevin``), so ``n_seeds`` is the
  smaller side's number of runs, and neither the reference's convergence nor the
  replicas' crossing bears on it.

A method (or ``reference``) run in only one (n_train, dt) cell, as a data-free
generator (n_train 0, dt 0) or the reference, is compared in that cell whatever
the claim's ``n_train`` and ``dt``, which then pick the other side's cell; a
single-seed ``reference`` is paired with every seed of the other side.

Verdicts: ``holds`` when the CI lies below zero; ``does not hold`` when it lies
above zero, or inside (-margin, margin) for a claim with a ``margin`` (no effect as
large as the margin); otherwise ``undecided``. A ``degrades_less`` claim also
reports the plain difference at the worse end (``far_*``): a method that degrades
less but is still no better than the baseline where the axis is hardest has not
shown that it tolerates it, so ``holds`` needs that CI below zero as well, and a CI
above zero there makes it ``does not hold``.

A claim read on fewer seeds than ``min_seeds`` (config ``claims_min_seeds``) is
``undecided (n seeds)`` whatever its CI: the spread between trainings is not
measured well enough to say anything about the method. A claim read on a reference
that is not converged (``cgflow.analysis.convergence``) is ``undecided (reference
not converged)``, and one that reads a CG run whose replicas mostly stayed in their
start basins (``replicas_crossing`` below ``min_crossing``, config
``min_replicas_crossing``) is ``undecided (replicas did not cross)``: such a run's
basin populations are its start frames', not the model's.
"""

import importlib

_SOURCES = {
    "compare": ("compare_verdicts", "comparison_markdown"),
    "core": ("COLUMNS", "GROUP", "MIN_CROSSING", "MIN_SEEDS", "REFERENCE", "VERDICTS",
             "paired_effect", "replicas_crossing", "run_key", "seed_draws", "verdict",
             "verdict_kind"),
    "more_stable": ("UNSTABLE",),
    "registry": ("KINDS",),
    "table": ("claimed_cells", "claims_markdown", "claims_table", "evaluate_claim"),
}  # fmt: skip
_WHERE = {name: module for module, names in _SOURCES.items() for name in names}

__all__ = sorted([*_WHERE, "CLAIM_KINDS"])


def __getattr__(name: str):
    """The package's names, each imported from its module on first use (PEP 562): the
    config check needs the claim kinds, not the tables' pandas, and every step runs
    the config check."""
    if name == "CLAIM_KINDS":
        return tuple(__getattr__("KINDS"))
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value
