"""The method registry and the system protocol: every registered piece satisfies its
contract, and a new method plugs in with one module and one registry line."""

import dataclasses
import sys

import numpy as np
import pytest
from conftest import smoke_config

from cgflow import methods
from cgflow.config import ConfigError, load_config, load_schema, validate_config
from cgflow.settings import Settings, json_schema
from cgflow.systems import SYSTEMS, evaluation_settings, get_map, get_system
from cgflow.systems.base import System, check_declarations


@pytest.mark.parametrize("name", sorted(methods.REGISTRY))
def test_every_method_declares_what_it_is(name):
    method = methods.get(name)
    cls = method.settings_class
    assert dataclasses.is_dataclass(cls) and issubclass(cls, Settings)
    assert cls.__dataclass_params__.frozen
    cls()  # its defaults are valid settings
    assert callable(method.train)
    assert method.start_from is None or method.start_from in methods.REGISTRY
    schema = load_schema(method_names=[name])
    generated = schema["properties"]["methods"]["properties"][name]
    assert generated["properties"] == json_schema(cls)["properties"]
    entry = schema["properties"]["systems"]["additionalProperties"]["properties"]
    for block in method.reads:
        top, _, key = block.partition(".")
        assert top in entry and (not key or key in entry[top]["properties"]), block


def test_schema_defaults_and_bounds_come_from_the_dataclasses():
    """One source: a default or bound changed in a dataclass changes the schema."""
    schema = load_schema()
    fm = schema["properties"]["methods"]["properties"]["fm"]["properties"]
    assert fm["learning_rate"] == {
        "type": "number",
        "exclusiveMinimum": 0,
        "default": 0.003,
        "description": "peak Adam learning rate",
    }
    sim = schema["properties"]["systems"]["additionalProperties"]["properties"]["simulation"]
    assert sim["properties"]["thermostat"]["enum"] == ["langevin", "nose_hoover", "brownian"]
    assert sim["properties"]["dt"]["items"]["exclusiveMinimum"] == 0
    assert schema["properties"]["methods"]["propertyNames"]["enum"] == sorted(methods.REGISTRY)


def example_entry(system_type: str) -> dict:
    """A config entry of ``system_type``: the defaults, or for a molecule (whose
    structure, maps and CVs have none) the smoke study's glycine dipeptide."""
    return smoke_config()["systems"]["glycine_dipeptide"] if system_type == "molecule" else {}


@pytest.mark.parametrize("system_type", sorted(SYSTEMS))
def test_every_system_satisfies_the_protocol(system_type):
    cls = SYSTEMS[system_type]
    assert check_declarations(cls) == []
    system = get_system(system_type, example_entry(system_type))
    assert isinstance(system, System)
    assert system.type == system_type


def _positions(system, cg_map, n=400, seed=0):
    """CG positions for scoring: exact samples, or noisy copies of the structure."""
    rng = np.random.default_rng(seed)
    if system.reference_kind == "exact":
        ref = system.reference_settings(n_samples=n, seed=seed)
        return system.sample_exact(system.kT(3.0), ref)["positions"][:, :1]  # x1 of (x1, x2)
    if callable(getattr(system, "start_positions", None)):  # a liquid: its start lattice
        xyz = system.start_positions()
        aa = xyz[None] + 0.02 * rng.standard_normal((60, *xyz.shape))
        return np.einsum("Ii,fid->fId", cg_map.coord_matrix, aa)
    import mdtraj

    xyz = mdtraj.load(str(system.pdb_path())).xyz[0]
    aa = xyz[None] + 0.05 * rng.standard_normal((n, *xyz.shape))
    return np.einsum("Ii,fid->fId", cg_map.coord_matrix, aa)


@pytest.mark.slow
@pytest.mark.parametrize("system_type", sorted(SYSTEMS))
def test_each_system_reports_the_metrics_it_declares(system_type):
    from cgflow.steps.evaluate import Reference, Scoring, score

    system = get_system(system_type, example_entry(system_type))
    name = sorted(system.mappings())[0]
    cg_map = get_map(system, name)
    settings = evaluation_settings(system, {})
    pos = _positions(system, cg_map)
    assert system.cv(cg_map)(pos).shape == (len(pos), len(system.cv_names))
    samples = {"positions": pos}
    scoring = Scoring(system, cg_map, settings, system.kT(3.0))
    metrics, cis, draws, curves, _, _ = score(scoring, samples, Reference(pos[::-1]))
    assert set(metrics) == set(system.metric_names) and curves
    assert set(cis) == set(draws) == set(metrics)


@pytest.fixture
def fm_sgd(repo, monkeypatch):
    """The example method registered with its one line."""
    monkeypatch.syspath_prepend(str(repo / "tests" / "examples"))
    line = methods.Method("fm_sgd", "fm_sgd", "force matching with plain SGD")
    monkeypatch.setitem(methods.REGISTRY, "fm_sgd", line)
    yield line
    sys.modules.pop("fm_sgd", None)


def test_a_new_method_is_one_module_and_one_registry_line(repo, tmp_path, fm_sgd):
    """tests/examples/fm_sgd.py plus its registry line: the config schema takes its
    block with defaults and bounds, errors name its fields, and `cgflow train`
    trains it on a run like any other method."""
    from cgflow.cli import main

    config = load_config(repo / "config" / "smoke.yaml")
    config["methods"]["fm_sgd"] = {"steps": 400}
    config["systems"]["double_well"]["methods"]["fm_sgd"] = {}
    validate_config(config)
    assert config["methods"]["fm_sgd"] == {"learning_rate": 1e-3, "steps": 400, "batch_size": 64}
    config["methods"]["fm_sgd"]["learning_rate"] = -1.0
    with pytest.raises(ConfigError, match="config.methods.fm_sgd.learning_rate"):
        validate_config(config)
    config["methods"]["fm_sgd"]["learning_rate"] = 1e-3
    cfg = tmp_path / "study.yaml"
    import yaml

    cfg.write_text(yaml.safe_dump(config))
    study = f"--config {cfg} --system double_well"
    t = tmp_path
    assert main(f"sample {study} --temperature 3 --out {t}/aa.npz".split()) == 0
    assert main(f"map {study} --mapping x1 --input {t}/aa.npz --out {t}/cg.npz".split()) == 0
    run = "--n-train 200 --seed 0".split()
    prior = f"fit-prior {study} --data {t}/cg.npz --out {t}/prior.json".split()
    assert main(prior + run) == 0
    train = f"train {study} --method fm_sgd --data {t}/cg.npz --prior {t}/prior.json".split()
    assert main(train + run + ["--out-dir", f"{t}/model"]) == 0
    from cgflow.io import read_json

    model = read_json(t / "model" / "model.json")
    assert model["method"] == "fm_sgd" and model["training"]["checks"] == 10
    log = (t / "model" / "train_log.csv").read_text().splitlines()
    assert log[0].startswith("step,train_loss,val_loss") and len(log) == 11


@pytest.mark.slow
def test_a_new_system_is_one_module_and_one_registry_line(repo, tmp_path, monkeypatch):
    """tests/examples/harmonic_well.py plus its line in SYSTEMS runs the whole study by
    hand: the config is checked with its settings, the reference sampled exactly, FM
    trained and simulated, and the simulation scored against its exact PMF."""
    import yaml

    from cgflow import systems
    from cgflow.cli import main
    from cgflow.io import read_json

    monkeypatch.syspath_prepend(str(repo / "tests" / "examples"))
    from harmonic_well import HarmonicWell

    monkeypatch.setitem(systems.SYSTEMS, HarmonicWell.type, HarmonicWell)
    assert check_declarations(HarmonicWell) == []
    entry = {
        "potential": {"k1": 2.0, "k2": 5.0},
        "temperatures": [1.0],
        "reference": {"n_samples": 4000},
        "mappings": ["x1"],
        "network": {"hidden": [16, 16]},
        "n_train": [2000],
        "simulation": {"dt": [0.05], "n_steps": 8000, "save_every": 20, "n_replicas": 32},
        "evaluation": {"bins": 30},
    }
    config = {"methods": {"fm": {"max_steps": 1000}}, "systems": {"harmonic_well": entry}}
    bad = {**config, "systems": {"harmonic_well": {**entry, "potential": {"k1": -1.0}}}}
    with pytest.raises(ConfigError, match="harmonic_well.potential.k1 must be > 0"):
        validate_config(yaml.safe_load(yaml.safe_dump(bad)))
    cfg = tmp_path / "study.yaml"
    cfg.write_text(yaml.safe_dump(config))
    t, study = tmp_path, f"--config {cfg} --system harmonic_well".split()
    run = "--n-train 2000 --seed 0".split()
    steps = [
        ["sample", *study, "--temperature", "1", "--out", f"{t}/aa.npz"],
        ["map", *study, "--mapping", "x1", "--input", f"{t}/aa.npz", "--out", f"{t}/cg.npz"],
        ["fit-prior", *study, "--data", f"{t}/cg.npz", *run, "--out", f"{t}/prior.json"],
        ["train", *study, "--method", "fm", "--data", f"{t}/cg.npz", "--prior", f"{t}/prior.json",
         *run, "--out-dir", f"{t}/fm"],
        ["simulate", *study, "--model", f"{t}/fm", "--data", f"{t}/cg.npz", "--dt", "0.05",
         "--out-dir", f"{t}/sim"],
        ["evaluate", *study, "--samples", f"{t}/sim/samples.npz", "--status",
         f"{t}/sim/status.json", "--mapping", "x1", "--method", "fm", *run, "--dt", "0.05",
         "--temperature", "1", "--model", f"{t}/fm", "--out", f"{t}/sim/metrics.json"],
    ]  # fmt: skip
    for args in steps:
        assert main(args) == 0, args[0]
    record = read_json(t / "sim" / "metrics.json")
    assert record["primary_metric"] == "pmf_wrmse_kT" and record["figure_kind"] == "profile_1d"
    # 32 replicas x 400 frames on 30 bins: a right PMF scores ~0.1-0.2 kT; a PMF with
    # another stiffness (k1 + k2 instead of k1) would score several kT, by simulation
    # and by quadrature of the model's energy
    m = record["metrics"]
    assert m["stable"] == 1.0 and m["pmf_rmse_kT"] < 0.5 and m["pmf_wrmse_kT"] < 0.3
    assert m["quad_pmf_wrmse_kT"] < 0.3
