"""A run's data split and random streams, which depend only on (n_frames, n_train, seed).

The split comes from NumPy seeded with the run's seed, so steps without JAX agree on
it; JAX keys are folded from ``PRNGKey(seed)`` with one tag per use.
``training_frames`` loads and splits a run's data sets (one, or one per temperature)
the same way for the fit-prior and train steps.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from cgflow.io import load_dataset
from cgflow.provenance import check_same

# fold_in tags so each use of a run's seed draws independent numbers
KEY_INIT, KEY_TRAIN, KEY_SIMULATE = 1, 2, 3


def split_indices(n_frames: int, n_train: int, val_fraction: float, seed: int):
    """Pick ``n_train`` frames of a data set for a run and split them train/validation.

    ``n_train`` is the data budget of a run: frames used for fitting plus those
    held out for early stopping. The same arguments always give the same split,
    so the prior fit and the training of one run see the same frames.

    Returns:
      (train_idx, val_idx): integer arrays, disjoint; val_idx may be empty when
      ``val_fraction`` is 0.
    """
    if not 0 < n_train <= n_frames:
        raise ValueError(
            f"n_train must be in 1..{n_frames} (frames in the data set), got {n_train}"
        )
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    rng = np.random.default_rng([seed, 20_221_212])
    chosen = rng.permutation(n_frames)[:n_train]
    n_val = math.ceil(val_fraction * n_train) if val_fraction > 0 else 0
    n_val = min(n_val, n_train - 1)
    return np.sort(chosen[n_val:]), np.sort(chosen[:n_val])


def budget_shares(n_train: int, n_sets: int) -> list[int]:
    """``n_train`` frames shared over ``n_sets`` data sets (one per temperature) as
    evenly as they go, the remainder to the first: a model trained across
    temperatures gets the same data budget in total as one trained at one."""
    if n_sets < 1:
        raise ValueError("need at least one data set")
    return [n_train // n_sets + (1 if k < n_train % n_sets else 0) for k in range(n_sets)]


def periodic_box(data: dict, meta: dict):
    """The box lengths a periodic data set was sampled in (constant volume), or None."""
    if not meta.get("periodic"):
        return None
    if "box" not in data:
        raise ValueError("the data set is periodic but holds no box")
    lengths = np.diagonal(np.asarray(data["box"]), axis1=-2, axis2=-1)
    return np.asarray(lengths, float).mean(axis=0).tolist()


class TrainingFrames(NamedTuple):
    """A run's training and validation frames, of one temperature or several.

    Attributes:
      R_train, F_train, R_val, F_val: positions and mapped forces (n, beads, dim).
      U_train, U_val: all-atom energies (n,), or None when not asked for.
      kT_train, kT_val: each frame's thermal energy (n,).
      kTs: the data sets' kT, in order.
      sets: per data set its file, kT and budget share (n_train).
      meta, first: the first data set's metadata and arrays.
    """

    R_train: np.ndarray
    F_train: np.ndarray
    R_val: np.ndarray
    F_val: np.ndarray
    U_train: np.ndarray | None
    U_val: np.ndarray | None
    kT_train: np.ndarray
    kT_val: np.ndarray
    kTs: list
    sets: list
    meta: dict
    first: dict

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays())

    def arrays(self) -> tuple:
        return tuple(a for a in self[:8] if a is not None)


def training_frames(
    paths, n_train: int, val_fraction: float, seed: int, energies: bool = False,
    system: str | None = None,
) -> TrainingFrames:  # fmt: skip
    """Load the CG data sets, split each as a one-temperature run would be (the
    budget ``n_train`` shared over several, ``budget_shares``) and concatenate their
    training and validation frames; ``energies``: their all-atom energies too.
    ``system``: the config's system the step runs for; a data set of another is
    refused."""
    parts, sets, first = [], [], None
    shares = budget_shares(n_train, len(paths)) if len(paths) > 1 else [n_train]
    required = ("positions", "forces") + (("aa_energies",) if energies else ())
    maps = set()
    for path, n in zip(paths, shares, strict=True):
        data, meta = load_dataset(path, required=required)
        if "mapping" not in meta or "kT" not in meta:
            raise ValueError(f"{path}: not a CG data set (give the output of cgflow map)")
        if system is not None:
            check_same(str(path), meta, f"the study's system ({system})", {"system": system})
        maps.add(meta["mapping"]["name"])
        if first is None:
            first = (data, meta)
        train_idx, val_idx = split_indices(data["positions"].shape[0], n, val_fraction, seed)
        kT = float(meta["kT"])
        if any(np.isclose(kT, s["kT"]) for s in sets):
            raise ValueError(f"{path}: a second data set at kT {kT}")
        sets.append({"data": str(path), "kT": kT, "n_train": n})
        parts.append((data, train_idx, val_idx, kT))
    if len(maps) > 1:
        raise ValueError(f"{[str(p) for p in paths]}: data sets of different maps {sorted(maps)}")

    def cat(key, which):
        return np.concatenate([d[key][idx[which]] for d, *idx, _ in parts])

    def kTs(which):
        return np.concatenate([np.full(len(idx[which]), kT) for _, *idx, kT in parts])

    return TrainingFrames(
        cat("positions", 0), cat("forces", 0), cat("positions", 1), cat("forces", 1),
        cat("aa_energies", 0) if energies else None, cat("aa_energies", 1) if energies else None,
        kTs(0), kTs(1), [s["kT"] for s in sets], sets, first[1], first[0],
    )  # fmt: skip
