"""The command line: each step by hand, and clear errors for bad arguments and files."""

import json
import math

import numpy as np
import pytest

from cgflow.cli import main
from cgflow.io import load_dataset, read_json, save_dataset


@pytest.fixture
def smoke(repo):
    return str(repo / "config" / "smoke.yaml")


def test_check_config(smoke, capsys):
    assert main(["check-config", smoke]) == 0
    assert "valid" in capsys.readouterr().out


def test_bad_config_gives_exit_2_with_field(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "systems: {double_well: {temperatures: [3], mappings: [x1], n_train: [0],"
        " simulation: {dt: [0.01], n_steps: 10}}}\nmethods: {fm: {}}\n"
    )
    assert main(["check-config", str(cfg)]) == 2
    assert "config.systems.double_well.n_train[0]" in capsys.readouterr().err


def test_negative_time_step_rejected_by_parser(smoke, capsys):
    with pytest.raises(SystemExit) as err:
        main(
            [
                "simulate",
                "--config",
                smoke,
                "--system",
                "double_well",
                "--model",
                "m",
                "--data",
                "d.npz",
                "--dt",
                "-0.1",
                "--out-dir",
                "x",
            ]
        )
    assert err.value.code == 2
    assert "--dt" in capsys.readouterr().err


def test_missing_input_file(smoke, tmp_path, capsys):
    code = main(
        [
            "map",
            "--config",
            smoke,
            "--system",
            "double_well",
            "--mapping",
            "x1",
            "--input",
            str(tmp_path / "missing.npz"),
            "--out",
            str(tmp_path / "cg.npz"),
        ]
    )
    assert code == 2
    assert "missing.npz" in capsys.readouterr().err
    assert not (tmp_path / "cg.npz").exists()


def test_unknown_system_and_mapping(smoke, tmp_path, capsys):
    assert (
        main(
            [
                "sample",
                "--config",
                smoke,
                "--system",
                "argon",
                "--temperature",
                "3",
                "--out",
                str(tmp_path / "a.npz"),
            ]
        )
        == 2
    )
    assert "argon" in capsys.readouterr().err
    assert (
        main(
            [
                "sample",
                "--config",
                smoke,
                "--system",
                "double_well",
                "--temperature",
                "3",
                "--out",
                str(tmp_path / "aa.npz"),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "map",
                "--config",
                smoke,
                "--system",
                "double_well",
                "--mapping",
                "x7",
                "--input",
                str(tmp_path / "aa.npz"),
                "--out",
                str(tmp_path / "cg.npz"),
            ]
        )
        == 2
    )
    assert "unknown mapping 'x7'" in capsys.readouterr().err


def test_steps_by_hand_end_to_end(smoke, tmp_path):
    """sample -> map -> fit-prior -> train -> simulate -> evaluate -> aggregate, no Snakemake."""
    t = tmp_path
    common = ["--config", smoke, "--system", "double_well"]
    assert main(["sample", *common, "--temperature", "3", "--out", f"{t}/aa.npz"]) == 0
    assert (
        main(["map", *common, "--mapping", "x1", "--input", f"{t}/aa.npz", "--out", f"{t}/cg.npz"])
        == 0
    )
    cg, meta = load_dataset(t / "cg.npz")
    assert cg["positions"].shape == (2000, 1, 1) and meta["kT"] == 3.0
    np.testing.assert_allclose(
        cg["forces"][:, 0, 0],
        -(cg["positions"][:, 0, 0] ** 3 - 6 * cg["positions"][:, 0, 0] + 1),
        rtol=1e-10,
    )
    run = ["--n-train", "200", "--seed", "0"]
    assert (
        main(["fit-prior", *common, "--data", f"{t}/cg.npz", *run, "--out", f"{t}/prior.json"]) == 0
    )
    assert read_json(t / "prior.json")["fitted_on"]["n_frames"] == 180
    assert (
        main(
            [
                "train",
                *common,
                "--method",
                "fm",
                "--data",
                f"{t}/cg.npz",
                "--prior",
                f"{t}/prior.json",
                *run,
                "--out-dir",
                f"{t}/model",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "simulate",
                *common,
                "--model",
                f"{t}/model",
                "--data",
                f"{t}/cg.npz",
                "--dt",
                "0.05",
                "--out-dir",
                f"{t}/sim",
            ]
        )
        == 0
    )
    samples, _ = load_dataset(t / "sim" / "samples.npz")
    status = read_json(t / "sim" / "status.json")
    assert samples["positions"].shape == (16 * 200, 1, 1)
    assert status["stable"] and status["steps_done"] == 5500
    assert (
        main(
            [
                "evaluate",
                *common,
                "--samples",
                f"{t}/sim/samples.npz",
                "--status",
                f"{t}/sim/status.json",
                "--mapping",
                "x1",
                "--method",
                "fm",
                *run,
                "--dt",
                "0.05",
                "--temperature",
                "3",
                "--out",
                f"{t}/sim/metrics.json",
            ]
        )
        == 0
    )
    metrics = read_json(t / "sim" / "metrics.json")["metrics"]
    assert metrics["stable"] == 1.0 and 0 <= metrics["pmf_rmse_kT"] < 5
    assert (
        main(
            [
                "aggregate",
                "--out",
                f"{t}/summary.csv",
                "--figures",
                f"{t}/fig",
                f"{t}/sim/metrics.json",
            ]
        )
        == 0
    )
    assert (t / "fig" / "pmf_double_well_x1_T3.png").is_file()


def test_unstable_run_is_scored_as_unstable(smoke, tmp_path):
    save_dataset(tmp_path / "samples.npz", {"positions": np.zeros((0, 1, 1))}, {"kT": 3.0})
    (tmp_path / "status.json").write_text(json.dumps({"stable": False}))
    assert (
        main(
            [
                "evaluate",
                "--config",
                smoke,
                "--system",
                "double_well",
                "--samples",
                str(tmp_path / "samples.npz"),
                "--status",
                str(tmp_path / "status.json"),
                "--mapping",
                "x1",
                "--method",
                "fm",
                "--n-train",
                "10",
                "--seed",
                "0",
                "--dt",
                "0.5",
                "--temperature",
                "3",
                "--out",
                str(tmp_path / "metrics.json"),
            ]
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
    assert arrays["x"].tolist() == [0, 1, 2] and meta == {"v": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.json", "d.npz"]
