"""Every step checks what its input files record (system, CG map, kT) against its
arguments and its other inputs, and refuses a mismatch naming both (issue 42)."""

import shlex

import pytest

from cgflow.cli import main
from cgflow.provenance import check_same, recorded


def cli(command: str) -> int:
    return main(shlex.split(command))


def test_each_recorded_field_is_compared_and_a_missing_one_is_not():
    data = {"system": "double_well", "mapping": {"name": "x1", "n_beads": 1}, "kT": 3.0}
    assert recorded(data) == {"system": "double_well", "mapping": "x1", "kT": 3.0}
    check_same("a.npz", data, "b.npz", {"system": "double_well", "mapping": "x1",
                                        "kT": 3.0 * (1 + 1e-9)})  # fmt: skip
    check_same("a.npz", data, "old.npz", {})  # an old file records none of them
    for field, other in (("system", "double_well_coupled"), ("mapping", "x2"), ("kT", 2.0)):
        with pytest.raises(ValueError, match=rf"a.npz is of {field} .* but b.npz of {field} "):
            check_same("a.npz", data, "b.npz", {**data, field: other})
    check_same("a.npz", data, "b.npz", {**data, "kT": 2.0}, fields=("system", "mapping"))


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """double_well's data set at kT 3, its prior and a prior-only model, by hand."""
    from conftest import REPO as repo

    t = tmp_path_factory.mktemp("provenance")
    study = f"--config {repo / 'config' / 'smoke.yaml'} --system double_well"
    run = "--n-train 200 --seed 0"
    assert cli(f"sample {study} --temperature 3 --out {t}/aa.npz") == 0
    assert cli(f"map {study} --mapping x1 --input {t}/aa.npz --out {t}/cg.npz") == 0
    assert cli(f"fit-prior {study} --data {t}/cg.npz {run} --out {t}/prior.json") == 0
    train = f"train {study} --method prior --data {t}/cg.npz --prior {t}/prior.json {run}"
    assert cli(f"{train} --out-dir {t}/model") == 0
    sim = f"simulate {study} --model {t}/model --data {t}/cg.npz --dt 0.05 --out-dir {t}/sim"
    assert cli(sim) == 0
    return t, repo / "config" / "smoke.yaml"


@pytest.mark.parametrize("step", ["fit-prior", "train", "simulate"])
def test_a_data_set_of_another_system_is_refused(made, step, capsys):
    """double_well's data set given to a step run for double_well_coupled."""
    t, config = made
    other = f"--config {config} --system double_well_coupled"
    run = "--n-train 200 --seed 0"
    command = {
        "fit-prior": f"fit-prior {other} --data {t}/cg.npz {run} --out {t}/p2.json",
        "train": f"train {other} --method prior --data {t}/cg.npz --prior {t}/prior.json {run} "
                 f"--out-dir {t}/m2",
        "simulate": f"simulate {other} --model {t}/model --data {t}/cg.npz --dt 0.05 "
                    f"--out-dir {t}/s2",
    }[step]  # fmt: skip
    if step == "simulate":  # the model is double_well's; its data set claims to be another's
        from cgflow.io import meta_path, read_json, write_json

        meta = read_json(meta_path(t / "cg.npz"))
        (t / "other").mkdir(exist_ok=True)
        for name in ("cg.npz",):
            (t / "other" / name).write_bytes((t / name).read_bytes())
        write_json(meta_path(t / "other" / "cg.npz"), {**meta, "system": "double_well_coupled"})
        command = f"simulate --config {config} --system double_well --model {t}/model " \
                  f"--data {t}/other/cg.npz --dt 0.05 --out-dir {t}/s2"  # fmt: skip
    assert cli(command) == 2
    err = capsys.readouterr().err
    assert "of system 'double_well'" in err or "of system 'double_well_coupled'" in err, err
    assert "cg.npz" in err


@pytest.mark.parametrize(
    "args, field",
    [("--system double_well --mapping x1 --temperature 4", "kT"),
     ("--system double_well_coupled --mapping x1 --temperature 3", "system")],
)  # fmt: skip
def test_evaluate_refuses_samples_of_another_run(made, args, field, capsys):
    """Samples simulated at kT 3 for double_well, scored as if at kT 4, or for
    another system."""
    t, config = made
    command = (f"evaluate --config {config} {args} --samples {t}/sim/samples.npz "
               f"--status {t}/sim/status.json --method prior --n-train 200 --seed 0 --dt 0.05 "
               f"--out {t}/sim/metrics_{field}.json")  # fmt: skip
    assert cli(command) == 2
    err = capsys.readouterr().err
    assert f"samples.npz is of {field}" in err and "the run asked for" in err, err
    assert not (t / "sim" / f"metrics_{field}.json").exists()


def test_map_refuses_a_reference_of_another_system(made, capsys):
    """double_well's all-atom reference mapped as if it were double_well_coupled's."""
    t, config = made
    command = (f"map --config {config} --system double_well_coupled --mapping x1 "
               f"--input {t}/aa.npz --out {t}/cg_other.npz")  # fmt: skip
    assert cli(command) == 2
    err = capsys.readouterr().err
    assert "aa.npz is a reference of another system than --system double_well_coupled" in err
    assert "(c 0.0 vs 1.0)" in err, err  # the coupled well's coupling
    assert not (t / "cg_other.npz").exists()


@pytest.mark.parametrize(
    "change, said",
    [({"kT": 2.0}, "prior_other.json is of kT 2.0"),
     ({"mapping": "x2"}, "prior_other.json is of mapping 'x2'"),
     ({"fitted_on": {"n_train": 200, "seed": 1}}, "fitted on the training split of (n_train "
                                                   "200, seed 1)")],
)  # fmt: skip
def test_train_refuses_a_prior_of_another_run(made, change, said, capsys):
    """A prior fitted at another kT, on another map, or on another seed's split."""
    from cgflow.io import read_json, write_json

    t, config = made
    prior = read_json(t / "prior.json")
    assert prior["system"] == "double_well" and prior["mapping"] == "x1"
    write_json(t / "prior_other.json", {**prior, **change})
    command = (f"train --config {config} --system double_well --method prior --data "
               f"{t}/cg.npz --prior {t}/prior_other.json --n-train 200 --seed 0 "
               f"--out-dir {t}/m_other")  # fmt: skip
    assert cli(command) == 2
    assert said in capsys.readouterr().err
    assert not (t / "m_other" / "model.json").exists()


def test_evaluate_refuses_samples_of_another_map(made, capsys):
    """Samples whose metadata names another CG map than --mapping (double_well has
    one map, so the samples' record is altered)."""
    from cgflow.io import meta_path, read_json, write_json

    t, config = made
    other = t / "sim_x2"
    other.mkdir(exist_ok=True)
    for name in ("samples.npz", "status.json"):
        (other / name).write_bytes((t / "sim" / name).read_bytes())
    meta = read_json(meta_path(t / "sim" / "samples.npz"))
    mapping = meta["mapping"] if isinstance(meta["mapping"], str) else meta["mapping"]["name"]
    assert mapping == "x1"
    write_json(meta_path(other / "samples.npz"), {**meta, "mapping": "x2"})
    command = (f"evaluate --config {config} --system double_well --mapping x1 --temperature 3 "
               f"--samples {other}/samples.npz --status {other}/status.json --method prior "
               f"--n-train 200 --seed 0 --dt 0.05 --out {other}/metrics.json")  # fmt: skip
    assert cli(command) == 2
    err = capsys.readouterr().err
    assert "samples.npz is of mapping 'x2'" in err and "the run asked for" in err, err


def test_evaluate_refuses_a_model_of_another_system_than_its_samples(made, capsys):
    """The model whose PMF evaluate scores by quadrature must be the samples' own."""
    import shutil

    from cgflow.io import read_json, write_json

    t, config = made
    other = t / "model_other"
    shutil.copytree(t / "model", other, dirs_exist_ok=True)
    desc = read_json(other / "model.json")
    write_json(other / "model.json", {**desc, "system": "double_well_coupled"})
    command = (f"evaluate --config {config} --system double_well --mapping x1 --temperature 3 "
               f"--samples {t}/sim/samples.npz --status {t}/sim/status.json --method prior "
               f"--n-train 200 --seed 0 --dt 0.05 --model {other} "
               f"--out {t}/sim/metrics_model.json")  # fmt: skip
    assert cli(command) == 2
    err = capsys.readouterr().err
    assert "model.json is of system 'double_well_coupled'" in err and "samples.npz" in err, err
    assert not (t / "sim" / "metrics_model.json").exists()
