"""The virial pressure of a periodic CG model along its trajectory."""

from __future__ import annotations

import jax
import numpy as np

from cgflow.models import ModelDescription, box_scaling_derivative
from cgflow.models.description import as_model
from cgflow.units import pressure_bar


def model_pressure(
    desc: ModelDescription | dict, params, positions: np.ndarray, chunk: int = 16
) -> np.ndarray:
    """Per-frame pressure (bar) of a periodic model's frames, (frames,).

    P = (N kT - (1/3) dU/ds) / V, dU/ds the derivative of the model's energy when
    the box and the beads are scaled together (all pairs, minimum image). A CG
    energy learned at one density holds no volume dependence of the free energy it
    approximates, so its pressure need not be the reference's: this measures how
    far it is.
    """
    desc = as_model(desc)
    du_ds = jax.jit(jax.vmap(box_scaling_derivative(desc), in_axes=(None, 0)))
    x = np.asarray(positions, np.float32)
    out = np.empty(len(x))
    for start in range(0, len(x), chunk):
        part = x[start : start + chunk]
        pad = chunk - len(part)  # one compiled shape for every chunk
        if pad:
            part = np.concatenate([part, np.repeat(part[-1:], pad, 0)])
        out[start : start + chunk] = np.asarray(du_ds(params, part))[: chunk - pad]
    volume = float(np.prod(desc.box))
    return pressure_bar(out, int(desc.n_beads), float(desc.kT), volume)
