"""Integrity checks of result files (cgflow.integrity): what the workflow's input
functions use to set a damaged file aside and make it again."""

import json

import numpy as np
import pytest

from cgflow.integrity import PARAMS_SHA256, damaged_results, problem, set_aside
from cgflow.io import save_dataset
from cgflow.models.energy import init_params, load_model, save_model


def test_a_data_set_cut_short_or_paired_with_another_writes_metadata_is_damaged(tmp_path):
    path = tmp_path / "cg.npz"
    save_dataset(path, {"R": np.zeros((50, 2, 3))}, {"system": "dw"})
    assert problem(path) is None
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert "not a readable .npz" in problem(path)
    save_dataset(path, {"R": np.zeros((50, 2, 3))}, {"system": "dw"})
    save_dataset(tmp_path / "other.npz", {"R": np.ones((50, 2, 3))}, {"system": "dw"})
    (tmp_path / "other.json").replace(tmp_path / "cg.json")  # same size, another write
    assert "different writes" in problem(path)
    (tmp_path / "cg.json").write_text('{"system": ')
    assert "not valid JSON" in problem(path)
    assert problem(tmp_path / "missing.npz") is None  # missing: the workflow makes it


@pytest.fixture
def model(tmp_path):
    net = {"type": "mlp", "hidden": [4], "activation": "softplus",
           "input_shift": [0.0] * 6, "input_scale": [1.0] * 6}  # fmt: skip
    desc = {"kT": 1.0, "n_beads": 2, "dim": 3, "network": net,
            "prior": {"type": "harmonic_position", "k": [[1.0] * 3] * 2,
                      "x0": [[0.0] * 3] * 2}}  # fmt: skip
    import jax

    from cgflow.models.description import as_model

    save_model(tmp_path, desc, init_params(as_model(desc), jax.random.PRNGKey(0)))
    return tmp_path


def test_params_altered_in_place_fail_the_recorded_checksum(model):
    params = model / "params.msgpack"
    assert json.loads((model / "model.json").read_text())[PARAMS_SHA256]
    assert problem(params) is None and problem(model / "model.json") is None
    load_model(model)
    data = bytearray(params.read_bytes())
    data[-1] ^= 0xFF  # same length: a change only the checksum is sure to see
    params.write_bytes(bytes(data))
    assert "SHA-256" in problem(params)
    with pytest.raises(ValueError, match=f"{params}: its SHA-256"):
        load_model(model)
    # a model written before the record existed is not checked
    desc = json.loads((model / "model.json").read_text())
    del desc[PARAMS_SHA256]
    (model / "model.json").write_text(json.dumps(desc))
    assert problem(params) is None


def test_damaged_results_finds_data_sets_and_models_but_not_scores(model, tmp_path):
    save_dataset(tmp_path / "run" / "samples.npz", {"R": np.zeros((5, 2, 3))}, {})
    (tmp_path / "run" / "metrics.json").write_text("{")  # the aggregate's to report
    (tmp_path / "claims.json").write_text("{")  # not a result a job reads back
    assert damaged_results(tmp_path) == []
    (tmp_path / "prior").mkdir()
    (tmp_path / "prior" / "n100_s0.json").write_text('{"bonds": ')
    (tmp_path / "run" / "status.json").write_text("")
    found = dict(damaged_results(tmp_path))
    assert set(found) == {tmp_path / "prior" / "n100_s0.json", tmp_path / "run" / "status.json"}
    (tmp_path / "prior" / "n100_s0.json").unlink()
    (tmp_path / "run" / "status.json").unlink()
    params = model / "params.msgpack"
    params.write_bytes(params.read_bytes()[:-8])
    samples = tmp_path / "run" / "samples.npz"
    samples.write_bytes(samples.read_bytes()[:100])
    found = dict(damaged_results(tmp_path))
    assert set(found) == {params, samples} and "SHA-256" in found[params]
    assert set_aside(params) == model / "params.msgpack.damaged" and not params.exists()
    assert damaged_results(tmp_path) == [(samples, found[samples])]
