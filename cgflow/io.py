"""Arrays on disk: ``.npz`` without pickles, metadata as JSON beside them.

Every write goes to a temporary file in the same folder and is renamed into
place, so an interrupted step never leaves a half-written file that a later
step would take as complete. A data set's npz and JSON carry one write id, so a
reader never takes the two halves of different writes for one data set (as a
full disk between the two renames would leave); a step whose outputs belong
together (samples.npz and status.json) records the id in each.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
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


def _check_file(path: Path, what: str) -> None:
    """FileNotFoundError, or IsADirectoryError for a folder, unless ``path`` is a file."""
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder; a {what} file is needed here")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: {what} not found")


def read_json(path: str | Path) -> Any:
    path = Path(path)
    _check_file(path, "file")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None


WRITE_ID = "write_id"
"""Key of a data set's write id: in its JSON, and (as ``_write_id``) in its npz."""


def check_output_folder(folder: str | Path, expected_bytes: int, what: str) -> None:
    """Before long work: the folder can be written and has room for the outputs.

    Args:
      folder: where the outputs go (created if missing).
      expected_bytes: their expected size; twice that must be free (a new file is
        written beside the old one before it replaces it).
      what: the step, for the message.

    Raises:
      OSError: naming the folder and what is wrong, before any work is done.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".cgflow-write-test.")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise OSError(f"{what}: cannot write to {folder} ({err.strerror or err})") from None
    free = shutil.disk_usage(folder).free
    if free < 2 * expected_bytes:
        raise OSError(
            f"{what}: {folder} has {free / 1e6:.1f} MB free, and its outputs need about "
            f"{expected_bytes / 1e6:.1f} MB (twice that while they replace older ones)"
        )


def save_dataset(path: str | Path, arrays: dict[str, np.ndarray], meta: dict) -> str:
    """Write ``arrays`` to ``path`` (.npz) and ``meta`` to the JSON beside it.

    The JSON is written first and the npz last, so the npz (the file rules
    declare as output) exists only once both are complete; both carry a fresh
    write id, which ``load_dataset`` checks.

    Returns:
      the write id.
    """
    path = Path(path)
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    for k, v in arrays.items():
        if v.dtype == object:
            raise TypeError(f"array {k!r} has dtype object; cgflow stores no pickles")
    write_id = uuid.uuid4().hex
    arrays["_" + WRITE_ID] = np.asarray(write_id)
    write_json(meta_path(path), {**meta, WRITE_ID: write_id})
    atomic_write(path, lambda fh: np.savez(fh, **arrays))
    return write_id


def check_arrays(path, arrays: dict) -> None:
    """The arrays every step reads, checked for what they must be (ValueError naming
    the file): ``positions`` and ``forces`` (frames, beads >= 1, dim >= 1) of real
    numbers, alike in shape, finite; energies one finite number per frame; ``run``
    (a pooled reference's run of each frame) integers from 0, in order."""
    frames = None
    for key in ("positions", "forces"):
        if key not in arrays:
            continue
        a = arrays[key]
        if a.ndim != 3 or a.shape[1] < 1 or a.shape[2] < 1:
            raise ValueError(f"{path}: {key} has shape {a.shape}; needs (frames, beads, dim) "
                             "with at least one bead and one dimension")  # fmt: skip
        if not np.issubdtype(a.dtype, np.floating):
            raise ValueError(f"{path}: {key} has dtype {a.dtype}; needs floating point")
        if not np.all(np.isfinite(a)):
            bad = int(np.sum(~np.all(np.isfinite(a), axis=(1, 2))))
            raise ValueError(f"{path}: {key} holds NaN or infinity in {bad} frame(s)")
        if frames is not None and a.shape != arrays["positions"].shape:
            raise ValueError(f"{path}: forces {a.shape} and positions "
                             f"{arrays['positions'].shape} differ in shape")  # fmt: skip
        frames = a.shape[0]
    if "run" in arrays and frames is not None:
        run = arrays["run"]
        steps = np.diff(run) if run.ndim == 1 else None
        if (run.shape != (frames,) or not np.issubdtype(run.dtype, np.integer)
                or (frames and (run[0] != 0 or not np.isin(steps, (0, 1)).all()))):  # fmt: skip
            raise ValueError(f"{path}: run must be {frames} integers, one per frame, "
                             "counting the pooled runs up from 0 in order")  # fmt: skip
    for key in ("energies", "aa_energies"):
        if key in arrays and frames is not None:
            e = arrays[key]
            if e.shape != (frames,) or not np.all(np.isfinite(e)):
                raise ValueError(f"{path}: {key} must be {frames} finite numbers, one per "
                                 f"frame (shape {e.shape})")  # fmt: skip


def load_dataset(path: str | Path, required: tuple[str, ...] = ()) -> tuple[dict, dict]:
    """Read an npz (no pickles) and its JSON metadata; check ``required`` keys exist
    and the standard arrays' shapes, types and finiteness (``check_arrays``)."""
    path = Path(path)
    _check_file(path, "data set")
    with path.open("rb") as fh:
        if fh.read(4) != b"PK\x03\x04":  # every .npz is a zip archive
            raise ValueError(f"{path}: not an .npz file (no zip archive at its start)")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception as err:  # zipfile / format errors
        raise ValueError(f"{path}: not a readable .npz file ({err})") from None
    stamp = arrays.pop("_" + WRITE_ID, None)
    missing = [k for k in required if k not in arrays]
    if missing:
        raise ValueError(f"{path}: missing arrays {missing}; found {sorted(arrays)}")
    check_arrays(path, arrays)
    meta = read_json(meta_path(path))
    if stamp is not None and meta.get(WRITE_ID) != str(stamp):
        raise ValueError(
            f"{meta_path(path)} does not belong to {path} (another write left it: "
            "was a run interrupted, or the disk full?); rerun the step that makes them"
        )
    return arrays, meta


def write_trajectory(path: str | Path, positions: np.ndarray, topology, time=None,
                     box=None) -> None:  # fmt: skip
    """An MDTraj HDF5 trajectory (frames, atoms, 3) in nm with its topology (and frame
    ``time`` in ps, and the periodic ``box`` of each frame (frames, 3, 3) in nm),
    written to a temporary file and renamed into place (MDTraj writes by file name)."""
    import mdtraj

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.h5")
    cell = None if box is None else np.asarray(box, np.float32)
    traj = mdtraj.Trajectory(np.asarray(positions, np.float32), topology, time=time)
    if cell is not None:
        traj.unitcell_vectors = cell
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
