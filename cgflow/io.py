"""Arrays on disk: ``.npz`` without pickles, metadata as JSON beside them.

Every write goes to a temporary file in the same folder and is renamed into
place, so an interrupted step never leaves a half-written file that a later
step would take as complete.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def atomic_write(path: Path, write) -> None:
    """Write ``path`` through ``write(fh)`` into a temporary file, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; results follow the umask
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def meta_path(npz_path: str | Path) -> Path:
    """The JSON metadata file that sits beside ``npz_path`` (``x.npz`` -> ``x.json``)."""
    return Path(npz_path).with_suffix(".json")


def write_json(path: str | Path, obj: Any) -> None:
    text = json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n"
    atomic_write(Path(path), lambda fh: fh.write(text.encode()))


def read_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None


def save_dataset(path: str | Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Write ``arrays`` to ``path`` (.npz) and ``meta`` to the JSON beside it.

    The JSON is written first and the npz last, so the npz (the file rules
    declare as output) exists only once both are complete.
    """
    path = Path(path)
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    for k, v in arrays.items():
        if v.dtype == object:
            raise TypeError(f"array {k!r} has dtype object; cgflow stores no pickles")
    write_json(meta_path(path), meta)
    atomic_write(path, lambda fh: np.savez(fh, **arrays))


def load_dataset(path: str | Path, required: tuple[str, ...] = ()) -> tuple[dict, dict]:
    """Read an npz (no pickles) and its JSON metadata; check ``required`` keys exist."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: data set not found")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception as err:  # zipfile / format errors
        raise ValueError(f"{path}: not a readable .npz file ({err})") from None
    missing = [k for k in required if k not in arrays]
    if missing:
        raise ValueError(f"{path}: missing arrays {missing}; found {sorted(arrays)}")
    meta = read_json(meta_path(path))
    return arrays, meta


def write_trajectory(path: str | Path, positions: np.ndarray, topology, time=None) -> None:
    """An MDTraj HDF5 trajectory (frames, atoms, 3) in nm with its topology (and frame
    ``time`` in ps), written to a temporary file and renamed into place (MDTraj
    writes by file name)."""
    import mdtraj

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.h5")
    traj = mdtraj.Trajectory(np.asarray(positions, np.float32), topology, time=time)
    traj.save_hdf5(str(tmp), force_overwrite=True)
    tmp.replace(path)


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
