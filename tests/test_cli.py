"""The command line: each step by hand, and clear errors for bad arguments and files."""

import json
import math
import shlex

import numpy as np
import pytest

from cgflow.cli import main
from cgflow.io import load_dataset, read_json, save_dataset


def cli(command: str) -> int:
    return main(shlex.split(command))


def prepare_run(study: str, t, run: str) -> None:
    """sample -> map -> fit-prior for one run of ``study``, into folder ``t``."""
    assert cli(f"sample {study} --temperature 3 --out {t}/aa.npz") == 0
    assert cli(f"map {study} --mapping x1 --input {t}/aa.npz --out {t}/cg.npz") == 0
    assert cli(f"fit-prior {study} --data {t}/cg.npz {run} --out {t}/prior.json") == 0


@pytest.fixture
def smoke(repo):
    return f"--config {repo / 'config' / 'smoke.yaml'} --system double_well"


def test_check_config(repo, capsys):
    assert cli(f"check-config {repo / 'config' / 'smoke.yaml'}") == 0
    assert "valid" in capsys.readouterr().out


def test_bad_config_gives_exit_2_with_field(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "systems: {double_well: {temperatures: [3], mappings: [x1], n_train: [0],"
        " simulation: {dt: [0.01], n_steps: 10}}}\nmethods: {fm: {}}\n"
    )
    assert cli(f"check-config {cfg}") == 2
    assert "config.systems.double_well.n_train[0]" in capsys.readouterr().err


def test_negative_time_step_rejected_by_parser(smoke, capsys):
    with pytest.raises(SystemExit) as err:
        cli(f"simulate {smoke} --model m --data d.npz --dt -0.1 --out-dir x")
    assert err.value.code == 2
    assert "--dt" in capsys.readouterr().err


def test_missing_input_file(smoke, tmp_path, capsys):
    assert (
        cli(f"map {smoke} --mapping x1 --input {tmp_path}/missing.npz --out {tmp_path}/cg.npz") == 2
    )
    assert "missing.npz" in capsys.readouterr().err
    assert not (tmp_path / "cg.npz").exists()


def test_a_folder_is_not_reported_as_a_missing_file(smoke, tmp_path, capsys):
    assert cli(f"map {smoke} --mapping x1 --input {tmp_path} --out {tmp_path}/cg.npz") == 2
    assert f"{tmp_path}: is a folder; a data set file is needed here" in capsys.readouterr().err


def test_a_step_without_arguments_names_the_study_settings_too(repo, capsys):
    """The missing required options and the study's settings in one error; with the
    options but no settings, or half of them, one line saying which."""
    with pytest.raises(SystemExit) as err:
        cli("train")
    text = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.value.code == 2 and "--method, --data" in text
    assert text.endswith(
        "and the study's settings: --config FILE --system NAME, or --settings JSON"
    )
    base = "train --method fm --data d.npz --prior p.json --n-train 5 --seed 0 --out-dir x"
    assert cli(base) == 2
    assert "the study's settings are required" in capsys.readouterr().err
    assert cli(f"{base} --config {repo / 'config' / 'smoke.yaml'}") == 2
    assert "(got only --config)" in capsys.readouterr().err


def test_model_is_its_folder_or_its_model_json(smoke, tmp_path, capsys):
    missing = tmp_path / "m" / "model.json"
    assert cli(f"generate {smoke} --model {missing} --out-dir {tmp_path}/o") == 2
    err = capsys.readouterr().err
    assert f"{missing}: file not found" in err and "model.json/model.json" not in err


def test_unknown_system_and_mapping(repo, smoke, tmp_path, capsys):
    config = repo / "config" / "smoke.yaml"
    assert (
        cli(f"sample --config {config} --system argon --temperature 3 --out {tmp_path}/a.npz") == 2
    )
    assert "argon" in capsys.readouterr().err
    assert cli(f"sample {smoke} --temperature 3 --out {tmp_path}/aa.npz") == 0
    assert cli(f"map {smoke} --mapping x7 --input {tmp_path}/aa.npz --out {tmp_path}/cg.npz") == 2
    assert "unknown mapping 'x7'" in capsys.readouterr().err


@pytest.mark.slow
def test_steps_by_hand_end_to_end(smoke, tmp_path):
    """sample -> map -> fit-prior -> train -> simulate -> evaluate -> aggregate, no Snakemake."""
    t = tmp_path
    run = "--n-train 200 --seed 0"
    assert cli(f"sample {smoke} --temperature 3 --out {t}/aa.npz") == 0
    assert cli(f"map {smoke} --mapping x1 --input {t}/aa.npz --out {t}/cg.npz") == 0
    cg, meta = load_dataset(t / "cg.npz")
    x = cg["positions"][:, 0, 0]
    assert cg["positions"].shape == (2000, 1, 1) and meta["kT"] == 3.0
    np.testing.assert_allclose(cg["forces"][:, 0, 0], -(x**3 - 6 * x + 1), rtol=1e-10)
    assert cli(f"fit-prior {smoke} --data {t}/cg.npz {run} --out {t}/prior.json") == 0
    assert read_json(t / "prior.json")["fitted_on"]["n_frames"] == 180
    assert (
        cli(
            f"train {smoke} --method fm --data {t}/cg.npz --prior {t}/prior.json {run} "
            f"--out-dir {t}/model"
        )
        == 0
    )
    # the prior-only baseline: no network, its force error recorded; FM improves on it
    prior_cmd = f"train {smoke} --method prior --data {t}/cg.npz --prior {t}/prior.json {run}"
    assert cli(f"{prior_cmd} --out-dir {t}/prior_model") == 0
    prior_log = (t / "prior_model" / "train_log.csv").read_text().splitlines()
    fm_log = (t / "model" / "train_log.csv").read_text().splitlines()
    prior_val = float(prior_log[1].split(",")[2])
    assert min(float(r.split(",")[2]) for r in fm_log[1:]) < prior_val
    assert (
        cli(f"simulate {smoke} --model {t}/model --data {t}/cg.npz --dt 0.05 --out-dir {t}/sim")
        == 0
    )
    samples, _ = load_dataset(t / "sim" / "samples.npz")
    status = read_json(t / "sim" / "status.json")
    assert samples["positions"].shape == (16 * 200, 1, 1)
    assert status["stable"] and status["steps_done"] == 5500
    assert (
        cli(
            f"evaluate {smoke} --samples {t}/sim/samples.npz --status {t}/sim/status.json "
            f"--mapping x1 --method fm {run} --dt 0.05 --temperature 3 "
            f"--out {t}/sim/metrics.json"
        )
        == 0
    )
    metrics = read_json(t / "sim" / "metrics.json")["metrics"]
    assert metrics["stable"] == 1.0 and 0 <= metrics["pmf_rmse_kT"] < 5
    assert cli(f"aggregate --out {t}/summary.csv --figures {t}/fig {t}/sim/metrics.json") == 0
    assert (t / "fig" / "free_energy_double_well_x1_T3.png").is_file()


def test_unstable_run_is_scored_as_unstable(smoke, tmp_path):
    save_dataset(tmp_path / "samples.npz", {"positions": np.zeros((0, 1, 1))}, {"kT": 3.0})
    (tmp_path / "status.json").write_text(json.dumps({"stable": False}))
    assert (
        cli(
            f"evaluate {smoke} --samples {tmp_path}/samples.npz "
            f"--status {tmp_path}/status.json --mapping x1 --method fm --n-train 10 "
            f"--seed 0 --dt 0.5 --temperature 3 --out {tmp_path}/metrics.json"
        )
        == 0
    )
    m = read_json(tmp_path / "metrics.json")["metrics"]
    assert m["stable"] == 0.0 and math.isnan(m["pmf_rmse_kT"]) and math.isnan(m["js_divergence"])


def test_failed_write_keeps_existing_result(tmp_path):
    path = tmp_path / "d.npz"
    save_dataset(path, {"x": np.arange(3)}, {"v": 1})
    with pytest.raises(TypeError, match="no pickles"):
        save_dataset(path, {"x": np.array([object()], dtype=object)}, {"v": 2})
    arrays, meta = load_dataset(path)
    assert arrays["x"].tolist() == [0, 1, 2] and meta["v"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.json", "d.npz"]


def test_the_halves_of_two_writes_are_not_read_as_one_data_set(tmp_path):
    """A full disk between the JSON and the npz of a write leaves a new JSON beside an
    old npz: the write ids differ and the reader says so."""
    path = tmp_path / "d.npz"
    save_dataset(path, {"x": np.arange(3)}, {"v": 1})
    old_json = (tmp_path / "d.json").read_text()
    save_dataset(path, {"x": np.arange(4)}, {"v": 2})
    assert "_write_id" not in load_dataset(path)[0]
    (tmp_path / "d.json").write_text(old_json)
    with pytest.raises(ValueError, match="does not belong to"):
        load_dataset(path)


@pytest.mark.slow
def test_outputs_that_cannot_be_written_stop_a_step_before_its_work(
    smoke, tmp_path, capsys, monkeypatch
):
    """An output folder that cannot be made, or a disk without room for the outputs,
    ends the step at once with one line naming the folder; a status.json of another
    simulate run than its samples is refused by evaluate."""
    t = tmp_path
    run = "--n-train 200 --seed 0"
    prepare_run(smoke, t, run)
    (t / "a_file").write_text("")
    train = f"train {smoke} --method fm --data {t}/cg.npz --prior {t}/prior.json {run}"
    assert cli(f"{train} --out-dir {t}/a_file/model") == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("cgflow train: error: train: cannot write to") and "a_file" in line
    assert cli(f"{train} --out-dir {t}/fm") == 0
    sim = f"simulate {smoke} --model {t}/fm --data {t}/cg.npz --dt 0.05"
    assert cli(f"{sim} --out-dir {t}/sim") == 0
    first = read_json(t / "sim" / "status.json")
    assert cli(f"{sim} --out-dir {t}/sim2") == 0
    (t / "sim" / "status.json").write_text((t / "sim2" / "status.json").read_text())
    capsys.readouterr()
    evaluate = (
        f"evaluate {smoke} --samples {t}/sim/samples.npz --status {t}/sim/status.json "
        f"--mapping x1 --method fm {run} --dt 0.05 --temperature 3 --out {t}/m.json"
    )
    assert cli(evaluate) == 2
    assert "come from different simulate runs" in capsys.readouterr().err
    assert first["samples_write_id"] != read_json(t / "sim2" / "status.json")["samples_write_id"]

    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 1000, 1000))
    capsys.readouterr()
    assert cli(f"{sim} --out-dir {t}/sim3") == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "MB free" in line and "sim3" in line and not (t / "sim3" / "samples.npz").exists()


@pytest.mark.slow
def test_re_training_by_hand_needs_dt_and_start_model(repo, tmp_path, capsys):
    """RE steps name what is missing; fm_re from an FM model writes a dt-specific model,
    its log (CSV and figure) and removes its spent checkpoint."""
    t = tmp_path
    coupled = f"--config {repo / 'config' / 'smoke.yaml'} --system double_well_coupled"
    run = "--n-train 1000 --seed 0"
    prepare_run(coupled, t, run)
    base = f"train {coupled} --data {t}/cg.npz --prior {t}/prior.json {run}"
    assert cli(f"{base} --method re --out-dir {t}/re") == 2
    assert "give --dt" in capsys.readouterr().err
    assert cli(f"{base} --method fm_re --dt 0.05 --out-dir {t}/fm_re") == 2
    assert "--init-model" in capsys.readouterr().err
    assert cli(f"{base} --method fm --out-dir {t}/fm") == 0
    ckpt = t / "ckpt" / "re.ckpt.npz"
    cmd = (
        f"{base} --method fm_re --dt 0.05 --init-model {t}/fm --checkpoint {ckpt} --out-dir {t}/fr"
    )
    assert cli(cmd) == 0
    model = read_json(t / "fr" / "model.json")
    assert model["method"] == "fm_re" and model["training"]["dt"] == 0.05
    assert model["training"]["started_from"] == f"{t}/fm"
    assert (t / "fr" / "train_log.png").stat().st_size > 0
    header = (t / "fr" / "train_log.csv").read_text().splitlines()[0].split(",")
    assert {"loss", "n_eff", "resimulated", "grad_norm", "wall_time_s"} <= set(header)
    assert not ckpt.exists()
    timing = model["training"]["timing"]
    assert timing["updates_timed"] == model["training"]["updates"] - 1
    assert 0 < timing["simulating_share"] < 1 and timing["wall_per_update_s"] > 0


def test_scoped_settings_hold_only_what_a_step_reads(repo, tmp_path, capsys):
    """The workflow passes each step a cut-down --settings: it validates, it keeps
    out the blocks the step does not read (no silent schema defaults), and a bad
    value in it is still rejected with the field named."""
    from cgflow.config import load_config, validate_config
    from cgflow.study import SYSTEM_KEYS, StudySettings, resolve

    config = validate_config(load_config(repo / "config" / "smoke.yaml"))
    full = StudySettings.from_config(config, "double_well_coupled")
    scoped = full.scoped(["network"], ["re"])
    study = resolve(None, None, scoped.to_json())
    assert set(study.entry) == set(SYSTEM_KEYS) & set(full.entry) | {"network"}
    assert study.methods == {"re": full.methods["re"]} and study.scope == ("network",)
    with pytest.raises(KeyError):
        study.entry["simulation"]  # noqa: B018
    with pytest.raises(ValueError, match="does not run"):
        full.scoped([], ["em"])
    bad = json.loads(scoped.to_json())
    bad["methods"]["re"]["n_replicas"] = 0
    t = tmp_path
    assert (
        cli(f"sample --settings {shlex.quote(json.dumps(bad))} --temperature 3 --out {t}/a.npz")
        == 2
    )
    assert "config.methods.re.n_replicas" in capsys.readouterr().err
    assert not (t / "a.npz").exists()


def test_a_periodic_data_set_gives_a_periodic_model(tmp_path):
    """The box of a periodic CG data set goes into the model description, and the
    simulator runs that model in the box (positions wrapped into it)."""
    from cgflow.steps.simulate import SimulateRequest, simulate_step
    from cgflow.steps.train import TrainRequest, train
    from cgflow.study import StudySettings
    from cgflow.units import MOLECULAR

    L, n = 1.5, 40
    rng = np.random.default_rng(0)
    mapping = {"name": "com", "bead_masses": [18.0] * 8, "species_names": ["W"],
               "species_index": [0] * 8}  # fmt: skip
    meta = {"mapping": mapping, "kT": 2.49, "units": MOLECULAR, "periodic": True}
    box = np.tile(np.eye(3) * L, (n, 1, 1))
    data = {"positions": rng.uniform(0, L, (n, 8, 3)), "forces": np.zeros((n, 8, 3)), "box": box}
    save_dataset(tmp_path / "cg.npz", data, meta)
    (tmp_path / "prior.json").write_text(json.dumps({"type": "none"}))
    entry = {"type": "double_well", "temperatures": [3.0], "mappings": ["x1"],
             "network": {"type": "schnet"},
             "simulation": {"n_steps": 500, "save_every": 50, "n_replicas": 2}}  # fmt: skip
    study = StudySettings("box", entry, {"prior": {}}, 0.1)
    desc = train(study, TrainRequest("prior", tmp_path / "cg.npz", tmp_path / "prior.json", 20, 0,
                                     tmp_path / "model"))  # fmt: skip
    assert desc.box == (L, L, L)
    request = SimulateRequest(tmp_path / "model", tmp_path / "cg.npz", 0.01, tmp_path / "sim")
    status = simulate_step(study, request)
    samples, _ = load_dataset(tmp_path / "sim" / "samples.npz")
    assert status.stable and samples["positions"].shape == (2 * 10, 8, 3)
    assert np.all((samples["positions"] >= 0) & (samples["positions"] < L))


@pytest.mark.slow
def test_replicas_are_added_in_rounds_until_the_ci_is_narrow_enough(repo, smoke, tmp_path):
    """simulation.target_halfwidth: rounds of n_replicas replicas (fresh starts and
    noise) until the CG side of the primary metric's CI half-width is at most the
    target, or max_replicas have run. A loose target stops after one round, with the
    frames of a run without one; a reachable one stops at the first round within it;
    an unreachable one runs max_replicas. status.json lists the rounds."""
    from cgflow.config import load_config
    from cgflow.steps.simulate import SimulateRequest, simulate_step
    from cgflow.steps.train import TrainRequest, train
    from cgflow.study import StudySettings

    t = tmp_path
    prepare_run(smoke, t, "--n-train 200 --seed 0")
    config = load_config(repo / "config" / "smoke.yaml")

    def simulate(out, **sim):
        study = StudySettings.from_config(config, "double_well")
        entry = {**study.entry, "simulation": {**study.entry["simulation"], "n_replicas": 8,
                                               "n_steps": 2000, **sim}}  # fmt: skip
        study = StudySettings(study.system, entry, study.methods, study.val_fraction)
        if not (t / "model").exists():
            train(study, TrainRequest("prior", t / "cg.npz", t / "prior.json", 200, 0, t / "model"))
        status = simulate_step(study, SimulateRequest(t / "model", t / "cg.npz", 0.05, t / out))
        samples, meta = load_dataset(t / out / "samples.npz")
        return status, samples, meta

    plain, plain_samples, _ = simulate("plain")
    assert plain.rounds is None
    loose, loose_samples, _ = simulate("loose", target_halfwidth=10.0, max_replicas=32)
    assert [r.replicas for r in loose.rounds] == [8]
    np.testing.assert_array_equal(loose_samples["positions"], plain_samples["positions"])
    first = loose.rounds[0].ci_halfwidth
    assert 0 < first < 10.0
    target = 0.8 * first  # about two rounds' worth (1 / sqrt(2) = 0.71)
    mid, mid_samples, meta = simulate("mid", target_halfwidth=target, max_replicas=64)
    widths = [r.ci_halfwidth for r in mid.rounds]
    assert widths[-1] <= target < min(widths[:-1]) and 2 <= len(widths) < 8
    assert widths[0] == pytest.approx(first)  # round 1 is the same in every run
    n = 8 * len(widths)
    assert meta["n_replicas"] == n and len(np.unique(mid_samples["replica"])) == n
    assert mid_samples["positions"].shape[0] == n * meta["n_saved_per_replica"]
    tight, _, meta = simulate("tight", target_halfwidth=1e-6, max_replicas=24)
    assert [r.replicas for r in tight.rounds] == [8, 16, 24] and meta["n_replicas"] == 24
    assert tight.stable and tight.n_frames_saved == plain.n_frames_saved
    assert not list(t.rglob("*.ckpt*"))


def test_a_target_halfwidth_needs_a_replica_cap_in_whole_rounds():
    from cgflow.simulate.settings import RunSettings

    assert RunSettings(n_steps=10, n_replicas=8).n_rounds == 1
    assert (
        RunSettings(n_steps=10, n_replicas=8, target_halfwidth=0.1, max_replicas=24).n_rounds == 3
    )
    with pytest.raises(ValueError, match="target_halfwidth and simulation.max_replicas go"):
        RunSettings(n_steps=10, n_replicas=8, target_halfwidth=0.1)
    with pytest.raises(ValueError, match="max_replicas: 20 is not a multiple of n_replicas"):
        RunSettings(n_steps=10, n_replicas=8, target_halfwidth=0.1, max_replicas=20)


def test_schema_prints_the_generated_blocks(capsys):
    assert cli("schema") == 0
    schema = json.loads(capsys.readouterr().out)
    fm = schema["properties"]["methods"]["properties"]["fm"]["properties"]
    assert fm["patience"]["default"] == 20 and fm["patience"]["minimum"] == 1


def test_a_diverged_training_is_a_result(repo, tmp_path):
    """RE at a time step where BAOAB is unstable (omega dt near 3) blows up while
    sampling: the train step still succeeds, writing a model marked unusable with the
    reason; fm_re started from it is unusable too; the simulate step writes no frames
    and an unstable status; evaluate records NaN metrics and the reason."""
    t = tmp_path
    coupled = f"--config {repo / 'config' / 'smoke.yaml'} --system double_well_coupled"
    run = "--n-train 1000 --seed 0"
    prepare_run(coupled, t, run)
    base = f"train {coupled} --data {t}/cg.npz --prior {t}/prior.json {run} --dt 3.0"
    ckpt = t / "ckpt" / "re.ckpt.npz"
    assert cli(f"{base} --method re --checkpoint {ckpt} --out-dir {t}/re") == 0
    model = read_json(t / "re" / "model.json")
    assert model["usable"] is False and "blew up" in model["unusable_reason"]
    assert not ckpt.exists() and "blew up" in (t / "re" / "train_log.csv").read_text()
    assert cli(f"{base} --method fm_re --init-model {t}/re --out-dir {t}/fm_re") == 0
    assert "start model" in read_json(t / "fm_re" / "model.json")["unusable_reason"]
    sim = f"simulate {coupled} --model {t}/re --data {t}/cg.npz --dt 3.0 --out-dir {t}/sim"
    assert cli(sim) == 0
    status = read_json(t / "sim" / "status.json")
    assert status["stable"] is False and "unusable" in status["reason"]
    assert load_dataset(t / "sim" / "samples.npz")[0]["positions"].shape == (0, 1, 1)
    assert cli(
        f"evaluate {coupled} --samples {t}/sim/samples.npz --status {t}/sim/status.json "
        f"--mapping x1 --method re {run} --dt 3.0 --temperature 3 --model {t}/re "
        f"--out {t}/sim/metrics.json"
    ) == 0  # fmt: skip
    record = read_json(t / "sim" / "metrics.json")
    assert record["metrics"]["stable"] == 0.0 and math.isnan(record["metrics"]["pmf_wrmse_kT"])
    assert "unusable" in record["unstable_reason"]


def test_training_checkpoints_are_bound_to_their_inputs(repo, tmp_path):
    """The train step's input digest changes with the data, the prior, the seed and
    the time step, so a checkpoint left by a run on other inputs is never resumed."""
    import jax

    from cgflow.steps.train import run_inputs

    rng = np.random.default_rng(0)
    R, F = rng.normal(size=(50, 1, 1)), rng.normal(size=(50, 1, 1))
    U = rng.normal(size=50)

    def split(R, F, U=None):
        tr, va = slice(0, 45), slice(45, 50)
        return (R[tr], F[tr], R[va], F[va]) + (() if U is None else (U[tr], U[va]))

    from cgflow.models import ModelDescription

    desc = ModelDescription(kT=1.0, prior={"type": "harmonic_position", "k": [[1.0]]}, seed=0,
                            n_train=50)  # fmt: skip
    base = run_inputs(desc, split(R, F), None, 0.05)
    other_prior = desc.replace(prior={"type": "harmonic_position", "k": [[1.1]]})
    changed = [
        run_inputs(desc, split(R + 1e-6, F), None, 0.05),
        run_inputs(other_prior, split(R, F), None, 0.05),
        run_inputs(desc.replace(seed=1), split(R, F), None, 0.05),
        run_inputs(desc, split(R, F), None, 0.1),
        run_inputs(desc, split(R, F), {"w": jax.numpy.ones(2)}, 0.05),
        # the all-atom energies of a method that trains on them (em)
        run_inputs(desc, split(R, F, U), None, 0.05),
        run_inputs(desc, split(R, F, U + 1e-6), None, 0.05),
    ]
    assert base == run_inputs(desc, split(R, F), None, 0.05)
    assert len({base, *changed}) == 8


@pytest.mark.slow
def test_bad_input_files_end_in_one_line_naming_the_file(smoke, tmp_path, capsys):
    """Files of the wrong kind or with keys missing give a non-zero exit and a last
    line that names the file, not a bare traceback."""
    t = tmp_path
    run = "--n-train 200 --seed 0"
    prepare_run(smoke, t, run)
    assert cli(f"train {smoke} --method fm --data {t}/cg.npz --prior {t}/prior.json {run} "
               f"--out-dir {t}/fm") == 0  # fmt: skip
    capsys.readouterr()

    def last_line(command):
        code = cli(command)
        return code, capsys.readouterr().err.strip().splitlines()[-1]

    # an all-atom file given to train
    code, line = last_line(f"train {smoke} --method fm --data {t}/aa.npz --prior {t}/prior.json "
                           f"{run} --out-dir {t}/x")  # fmt: skip
    assert code != 0 and f"{t}/aa.npz" in line and "not a CG data set" in line
    # a status.json without 'stable'
    (t / "status.json").write_text("{}")
    sim = f"simulate {smoke} --model {t}/fm --data {t}/cg.npz --dt 0.05 --out-dir {t}/sim"
    assert cli(sim) == 0
    capsys.readouterr()
    code, line = last_line(f"evaluate {smoke} --samples {t}/sim/samples.npz "
                           f"--status {t}/status.json --mapping x1 --method fm {run} "
                           f"--dt 0.05 --temperature 3 --out {t}/m.json")  # fmt: skip
    assert code != 0 and f"{t}/status.json" in line
    # a model.json without its prior, and garbage parameters
    broken = t / "broken"
    broken.mkdir()
    desc = read_json(t / "fm" / "model.json")
    desc.pop("prior")
    (broken / "model.json").write_text(json.dumps(desc))
    (broken / "params.msgpack").write_bytes((t / "fm" / "params.msgpack").read_bytes())
    code, line = last_line(sim.replace(f"{t}/fm", str(broken)))
    assert code != 0 and "model.json" in line and "prior" in line
    (broken / "model.json").write_text((t / "fm" / "model.json").read_text())
    (broken / "params.msgpack").write_bytes(b"\x93garbage bytes")
    code, line = last_line(sim.replace(f"{t}/fm", str(broken)))
    assert code != 0 and "params.msgpack" in line


def test_spent_checkpoints_leave_no_empty_folders(tmp_path):
    from cgflow.checkpoint import discard

    study = tmp_path / "study"
    a = study / "checkpoints" / "dw" / "x1" / "fm" / "n1_s0" / "train.ckpt"
    b = study / "checkpoints" / "dw" / "x1" / "re" / "n1_s0" / "train.ckpt"
    for p in (a, b):
        p.parent.mkdir(parents=True)
        p.write_bytes(b"x")
    discard(a)
    assert not a.parent.exists() and b.exists()  # the shared folders stay for b
    discard(b)
    assert not (study / "checkpoints").exists() and study.is_dir()
    loose = tmp_path / "elsewhere" / "x.ckpt"
    loose.parent.mkdir()
    loose.write_bytes(b"x")
    discard(loose)  # not under checkpoints/: only the file goes
    assert not loose.exists() and loose.parent.is_dir()


def test_run_settings_refuse_what_would_silently_change_a_run(repo):
    """save_every must divide n_steps (else the run is cut short), and two time steps
    must not name the same job."""
    from cgflow.config import ConfigError, load_config, validate_config

    config = load_config(repo / "config" / "smoke.yaml")
    config["systems"]["double_well"]["simulation"]["n_steps"] = 5010
    with pytest.raises(ConfigError, match="n_steps: 5010 is not a multiple of save_every"):
        validate_config(config)
    config = load_config(repo / "config" / "smoke.yaml")
    config["systems"]["double_well"]["simulation"]["dt"] = [0.05, 0.0500000001]
    with pytest.raises(ConfigError, match="simulation.dt: .* values that name the same job"):
        validate_config(config)


@pytest.mark.slow
def test_a_run_too_big_for_memory_is_refused_before_it_allocates(repo, tmp_path, capsys):
    """n_replicas: 10^9 once ended in a SIGABRT from XLA: simulate and RE training
    estimate their memory from the settings and refuse with the estimate and what
    the machine has (here, where check-config was told a job may use more)."""
    import yaml

    from cgflow.simulate.settings import sampling_memory

    config = yaml.safe_load((repo / "config" / "smoke.yaml").read_text())
    # a job may use a petabyte (check-config passes it), the machine has less
    config["max_job_memory_gb"] = 1e6
    simulation = config["systems"]["double_well"]["simulation"]
    simulation.update(n_replicas=10**8, n_steps=simulation["save_every"])  # one frame
    config["methods"]["re"]["n_replicas"] = 10**8
    config["systems"]["double_well"]["methods"]["re"] = {}
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump(config))
    study = f"--config {path} --system double_well"
    run = "--n-train 200 --seed 0"
    t = tmp_path
    prepare_run(study, t, run)
    train = f"train {study} --data {t}/cg.npz --prior {t}/prior.json {run}"
    assert cli(f"{train} --method fm --out-dir {t}/fm") == 0
    capsys.readouterr()
    assert cli(f"simulate {study} --model {t}/fm --data {t}/cg.npz --dt 0.05 --out-dir {t}/s") == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "simulate would need about" in line and "GB available" in line
    assert "100000000 replicas" in line and not (t / "s" / "samples.npz").exists()
    assert cli(f"{train} --method re --dt 0.05 --out-dir {t}/re") == 2
    assert "train re would need about" in capsys.readouterr().err
    # the estimate counts the frames and a force evaluation per replica
    assert sampling_memory(10, 100, 5, 3, 32) == 5 * 4 * 10 * 100 * 5 * 3 + 4 * 10 * 25 * 32 * 16


def test_data_sets_and_models_are_checked_for_what_they_must_hold(tmp_path):
    """Zero-width positions, NaN frames, random bytes as .npz and a prior term of the
    wrong shape each end in an error naming the file (they were accepted, or gave an
    unrelated message)."""
    import jax

    from cgflow.io import load_dataset, save_dataset
    from cgflow.models import init_params, load_model, save_model

    def refused(arrays, match):
        save_dataset(tmp_path / "d.npz", arrays, {"kT": 3.0})
        with pytest.raises(ValueError, match=match):
            load_dataset(tmp_path / "d.npz")

    x = np.zeros((5, 1, 1))
    refused({"positions": np.zeros((5, 0, 1))}, r"d.npz: positions has shape \(5, 0, 1\)")
    refused({"positions": x, "forces": np.zeros((5, 2, 1))}, "differ in shape")
    refused({"positions": np.where(np.arange(5)[:, None, None] == 2, np.nan, x)},
            r"d.npz: positions holds NaN or infinity in 1 frame")  # fmt: skip
    refused({"positions": x, "aa_energies": np.zeros(4)}, "aa_energies must be 5 finite")
    refused({"positions": x.astype(int)}, "needs floating point")
    save_dataset(tmp_path / "ok.npz", {"positions": np.zeros((0, 1, 1))}, {"kT": 3.0})
    assert load_dataset(tmp_path / "ok.npz")[0]["positions"].shape == (0, 1, 1)  # no frames
    (tmp_path / "r.npz").write_bytes(np.random.default_rng(0).bytes(300))
    (tmp_path / "r.json").write_text("{}")
    with pytest.raises(ValueError, match=r"r.npz: not an .npz file"):
        load_dataset(tmp_path / "r.npz")
    prior = {"type": "harmonic_position", "k": [[1.0, 2.0, 3.0]], "x0": [[0.0]]}
    desc = {"kT": 3.0, "n_beads": 1, "dim": 1, "network": {"type": "none"}, "prior": prior}
    save_model(tmp_path / "m", desc, init_params(desc, jax.random.PRNGKey(0)))
    with pytest.raises(ValueError, match=r"model.json: prior k has shape \(1, 3\)"):
        load_model(tmp_path / "m")
    desc["prior"]["k"] = [[1.0]]
    save_model(tmp_path / "m", desc, init_params(desc, jax.random.PRNGKey(0)))
    assert load_model(tmp_path / "m")[2].prior["k"] == [[1.0]]
