"""Every CLI subcommand, given each of its input files truncated, empty, of the wrong
kind or with a key missing, exits non-zero with a last line that names the file."""

import json
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest

from cgflow.cli import main

REPO = Path(__file__).resolve().parents[1]
STUDY = f"--config {REPO / 'config' / 'smoke.yaml'} --system double_well"
RUN = "--n-train 200 --seed 0"


def cli(command: str) -> int:
    return main(shlex.split(command))


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """Good inputs of every step: sample -> map -> fit-prior -> train -> simulate ->
    evaluate, for one double-well run."""
    t = tmp_path_factory.mktemp("chain")
    steps = [
        f"sample {STUDY} --temperature 3 --out {t}/aa.npz",
        f"map {STUDY} --mapping x1 --input {t}/aa.npz --out {t}/cg.npz",
        f"fit-prior {STUDY} --data {t}/cg.npz {RUN} --out {t}/prior.json",
        f"train {STUDY} --method fm --data {t}/cg.npz --prior {t}/prior.json {RUN} "
        f"--out-dir {t}/model",
        f"simulate {STUDY} --model {t}/model --data {t}/cg.npz --dt 0.05 --out-dir {t}/sim",
        f"evaluate {STUDY} --samples {t}/sim/samples.npz --status {t}/sim/status.json "
        f"--mapping x1 --method fm {RUN} --dt 0.05 --temperature 3 --out {t}/sim/metrics.json",
    ]
    for step in steps:
        assert cli(step) == 0, step
    return t


# (subcommand line with {d} for the case's folder, the input file it reads, a key
# that file must hold and a file of another kind to put in its place)
COMMANDS = {
    "map": (
        f"map {STUDY} --mapping x1 --input {{d}}/aa.npz --out {{d}}/out.npz",
        {"aa.npz": ("positions", "cg.npz")},
    ),
    "fit-prior": (
        f"fit-prior {STUDY} --data {{d}}/cg.npz {RUN} --out {{d}}/out.json",
        {"cg.npz": ("positions", "aa.npz")},
    ),
    "train": (
        f"train {STUDY} --method fm --data {{d}}/cg.npz --prior {{d}}/prior.json {RUN} "
        "--out-dir {d}/out",
        {"cg.npz": ("forces", "aa.npz"), "prior.json": ("type", "sim/status.json")},
    ),
    "simulate": (
        f"simulate {STUDY} --model {{d}}/model --data {{d}}/cg.npz --dt 0.05 --out-dir {{d}}/out",
        {
            "cg.npz": ("positions", "sim/samples.npz"),
            "model/model.json": ("prior", "prior.json"),
            "model/params.msgpack": (None, "prior.json"),
        },
    ),
    "evaluate": (
        f"evaluate {STUDY} --samples {{d}}/sim/samples.npz --status {{d}}/sim/status.json "
        f"--mapping x1 --method fm {RUN} --dt 0.05 --temperature 3 --out {{d}}/out.json",
        {
            "sim/samples.npz": ("positions", "prior.json"),
            "sim/status.json": ("stable", "prior.json"),
        },
    ),
    "aggregate": (
        "aggregate --out {d}/summary.csv --figures {d}/fig {d}/sim/metrics.json",
        {"sim/metrics.json": ("metrics", "prior.json")},
    ),
}
DAMAGE = ("truncated", "empty", "wrong_kind", "key_missing", "meta_truncated")
CASES = [
    (cmd, name, damage)
    for cmd, (_, files) in COMMANDS.items()
    for name in files
    for damage in DAMAGE
    if not (damage == "meta_truncated" and not name.endswith(".npz"))
    and not (damage == "key_missing" and files[name][0] is None)
]


def damage_file(path: Path, damage: str, key, other: Path) -> None:
    if damage == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "wrong_kind":
        path.write_bytes(other.read_bytes())
        if path.suffix == ".npz" and other.suffix == ".npz":  # its metadata travels with it
            shutil.copy(other.with_suffix(".json"), path.with_suffix(".json"))
    elif damage == "key_missing":
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files if k not in (key, "_write_id")}
            with path.open("wb") as fh:
                np.savez(fh, **arrays)
        else:
            obj = json.loads(path.read_text())
            obj.pop(key)
            path.write_text(json.dumps(obj))
    elif damage == "meta_truncated":
        meta = path.with_suffix(".json")
        meta.write_text(meta.read_text()[: len(meta.read_text()) // 2])


@pytest.mark.slow
@pytest.mark.parametrize(("command", "name", "damage"), CASES)
def test_a_damaged_input_ends_in_one_line_naming_it(chain, tmp_path, capsys, command, name, damage):
    d = tmp_path / "case"
    shutil.copytree(chain, d)
    line, files = COMMANDS[command]
    key, other = files[name]
    damage_file(d / name, damage, key, d / other)
    capsys.readouterr()
    code = cli(line.format(d=d))
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0, f"{command} accepted a {damage} {name}"
    last = err[-1] if err else ""
    named = str(d / name) if damage != "meta_truncated" else str((d / name).with_suffix(".json"))
    if name.startswith("model/"):  # the step takes the folder; the file or the folder
        named_ok = str(d / name) in last or str(d / "model") in last
    else:
        named_ok = named in last
    assert last.startswith(f"cgflow {command}: error:") and named_ok, err[-3:]
