"""Checkpoints of long steps: any pytree of arrays (training state, replica states)
plus JSON-ready metadata, in one file written atomically.

The bytes are Flax's msgpack serialisation of the tree's leaves. A checkpoint carries
a fingerprint of the settings that made it; one from other settings, of another
shape, or unreadable is ignored (the step starts afresh and says so), never loaded.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from cgflow.io import atomic_write


def fingerprint(*parts) -> str:
    """A short hash of JSON-ready ``parts`` (settings, shapes, seeds)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def array_digest(*arrays) -> str:
    """A short hash of array contents (start frames, parameters)."""
    h = hashlib.sha256()
    for a in arrays:
        for leaf in jax.tree_util.tree_leaves(a):
            h.update(np.ascontiguousarray(np.asarray(leaf)).tobytes())
    return h.hexdigest()[:16]


def discard(path: str | Path | None, root: str = "checkpoints") -> None:
    """Remove a spent checkpoint and, when it lives under a ``root`` folder (a
    study's ``checkpoints/``), the folders it leaves empty up to and including that
    one."""
    if not path:
        return
    path = Path(path)
    path.unlink(missing_ok=True)
    if root not in [p.name for p in path.parents]:
        return
    for folder in path.parents:
        try:
            folder.rmdir()  # only when empty
        except OSError:
            return
        if folder.name == root:
            return


def save(path: str | Path, tree, meta: dict, arrays: dict | None = None) -> None:
    """Write ``tree`` (its leaves), ``meta`` (must hold ``fingerprint``) and named
    ``arrays`` of any shape (e.g. frames so far) to ``path``."""
    leaves = jax.tree_util.tree_leaves(tree)
    payload = {
        "leaves": {str(i): np.asarray(x) for i, x in enumerate(leaves)},
        "arrays": {k: np.asarray(v) for k, v in (arrays or {}).items()},
        "meta": json.dumps(meta),
    }
    data = serialization.msgpack_serialize(payload)
    atomic_write(Path(path), lambda fh: fh.write(data))


def load(path: str | Path | None, template, fp: str, log, who: str):
    """``(tree, meta, arrays)`` from ``path``, the tree shaped like ``template``, or
    None when there is no checkpoint or it cannot be used (the reason goes to ``log``)."""
    if path is None or not Path(path).exists():
        return None
    try:
        payload = serialization.msgpack_restore(Path(path).read_bytes())
        meta = json.loads(payload["meta"])
        leaves = [payload["leaves"][str(i)] for i in range(len(payload["leaves"]))]
        arrays = dict(payload.get("arrays") or {})
    except Exception as err:  # a torn or foreign file: start over, say so
        print(f"{who}: ignoring unreadable checkpoint {path}: {err}", file=log, flush=True)
        return None
    if meta.get("fingerprint") != fp:
        print(f"{who}: checkpoint {path} is from other settings; starting afresh", file=log)
        return None
    t_leaves, treedef = jax.tree_util.tree_flatten(template)
    if len(leaves) != len(t_leaves) or any(
        np.shape(a) != np.shape(b) for a, b in zip(leaves, t_leaves, strict=True)
    ):
        print(f"{who}: checkpoint {path} has other shapes; starting afresh", file=log)
        return None
    restored = [_like(a, b) for a, b in zip(leaves, t_leaves, strict=True)]
    return jax.tree_util.tree_unflatten(treedef, restored), meta, arrays


def _like(value, template):
    """``value`` as the same kind of object as ``template`` (JAX array, NumPy, scalar)."""
    if isinstance(template, jax.Array):
        return jnp.asarray(value, template.dtype)
    if isinstance(template, np.ndarray | np.generic):
        return np.asarray(value, template.dtype)
    return type(template)(np.asarray(value).item())
