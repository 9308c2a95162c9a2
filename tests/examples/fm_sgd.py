"""An example method, as a user would add one: force matching with plain SGD.

Everything the platform needs is here: the settings dataclass (defaults, bounds, and
so the config schema), and ``train``. tests/test_registry.py registers it with one
line, as one would in cgflow/methods/__init__.py:

    Method("fm_sgd", "cgflow.methods.fm_sgd", "force matching with plain SGD")
"""

from __future__ import annotations

from dataclasses import dataclass

import optax

from cgflow.checkpoint import fingerprint
from cgflow.methods.base import Problem, Trained
from cgflow.methods.driver import Schedule, fit
from cgflow.methods.fm import fm_trainer
from cgflow.methods.options import MethodSettings
from cgflow.settings import setting


@dataclass(frozen=True)
class FMSGDSettings(MethodSettings):
    block = "methods.fm_sgd"

    learning_rate: float = setting(1e-3, gt=0, doc="SGD step size")
    steps: int = setting(1000, ge=1, doc="SGD steps")
    batch_size: int = setting(64, ge=1, doc="frames per step")


SETTINGS = FMSGDSettings


def train(problem: Problem, settings: FMSGDSettings, key) -> Trained:
    p, s = problem, settings
    trainer = fm_trainer(p, s, optax.sgd(s.learning_rate))
    schedule = Schedule("fm_sgd", n_checks=10, steps_per_check=max(1, s.steps // 10), keep="best")
    fp = fingerprint(s.to_dict(), list(p.R_train.shape))
    params, history = fit(trainer, p.params, key, schedule, p.checkpoint, fp, p.log)
    return Trained(params, history, {"settings": s.to_dict(), "checks": len(history)})
