"""Config validation: every bad input stops with a message naming the field."""

import copy

import pytest

from cgflow.config import ConfigError, load_config, validate_config


def check_fails(config, *fragments):
    with pytest.raises(ConfigError) as err:
        validate_config(config)
    msg = str(err.value)
    for frag in fragments:
        assert frag in msg, f"{frag!r} not in message:\n{msg}"
    return msg


@pytest.mark.parametrize("name", ["config.yaml", "smoke.yaml"])
def test_shipped_configs_are_valid(repo, name):
    config = validate_config(load_config(repo / "config" / name))
    # defaults are filled in
    entry = config["systems"]["double_well"]
    assert entry["prior"] == "harmonic_position" and entry["simulation"]["friction"] > 0
    assert "ema_decay" in config["methods"]["fm"] and config["val_fraction"] == 0.1


def test_unknown_system(default_config):
    cfg = copy.deepcopy(default_config)
    cfg["systems"]["argon"] = cfg["systems"].pop("double_well")
    check_fails(cfg, "config.systems.argon", "unknown system 'argon'", "double_well")


def test_unknown_system_type(default_config):
    cfg = copy.deepcopy(default_config)
    cfg["systems"]["double_well_coupled"]["type"] = "triple_well"
    check_fails(cfg, "config.systems.double_well_coupled", "'triple_well'")


def test_unknown_method(default_config):
    cfg = copy.deepcopy(default_config)
    cfg["methods"]["magic"] = {}
    check_fails(cfg, "config.methods", "'magic' is not allowed", "fm")


def test_unknown_key(default_config):
    cfg = copy.deepcopy(default_config)
    cfg["systems"]["double_well"]["simulation"]["n_stepz"] = 10
    check_fails(cfg, "config.systems.double_well.simulation", "'n_stepz' was unexpected")


def test_unknown_top_level_key(default_config):
    cfg = copy.deepcopy(default_config)
    cfg["threads"] = 8
    check_fails(cfg, "config:", "'threads' was unexpected")


def test_negative_size_and_time_step(default_config):
    cfg = copy.deepcopy(default_config)
    cfg["systems"]["double_well"]["n_train"][0] = -5
    cfg["systems"]["double_well"]["simulation"]["dt"][1] = -0.01
    msg = check_fails(
        cfg, "config.systems.double_well.n_train[0]", "config.systems.double_well.simulation.dt[1]"
    )
    assert "-5" in msg and "-0.01" in msg


def test_wrong_type(default_config):
    cfg = copy.deepcopy(default_config)
    cfg["systems"]["double_well"]["simulation"]["n_steps"] = "many"
    check_fails(cfg, "config.systems.double_well.simulation.n_steps", "not of type 'integer'")


def test_unknown_mapping_and_potential_key(default_config):
    cfg = copy.deepcopy(default_config)
    cfg["systems"]["double_well"]["mappings"] = ["x2"]
    cfg["systems"]["double_well_coupled"]["potential"]["k"] = 1.0
    check_fails(
        cfg,
        "config.systems.double_well.mappings[0]",
        "unknown mapping 'x2'",
        "config.systems.double_well_coupled.potential",
        "unknown keys ['k']",
    )


def test_n_train_larger_than_reference(default_config):
    cfg = copy.deepcopy(default_config)
    cfg["systems"]["double_well"]["n_train"] = [10**9]
    check_fails(cfg, "config.systems.double_well.n_train[0]", "exceeds the 20000 reference frames")


def test_check_config_catches_what_would_fail_or_collide_later(default_config):
    """An n_train whose validation split leaves the prior one frame, temperatures
    that name one T path, and a claim stated twice (by name or by content) are
    refused before any job."""
    cfg = copy.deepcopy(default_config)
    cfg["systems"]["double_well"]["n_train"] = [2]
    check_fails(cfg, "config.systems.double_well.n_train[0]", "leave 1 for training")
    cfg = copy.deepcopy(default_config)
    cfg["systems"]["double_well"]["temperatures"] = [3.0, 3.0000000001]
    check_fails(cfg, "config.systems.double_well.temperatures", "values that name the same job")
    cfg = copy.deepcopy(default_config)
    first = cfg["claims"][0]
    cfg["claims"].append(dict(first))
    check_fails(cfg, f"config.claims[{len(cfg['claims']) - 1}].name", "is also claims[0]'s")
    cfg["claims"][-1] = {**first, "name": "the same, renamed"}
    check_fails(cfg, f"config.claims[{len(cfg['claims']) - 1}]", "the same claim as claims[0]")


def test_a_test_reference_sets_only_its_length(default_config):
    """``test_reference`` may lengthen the held-out reference; anything that would
    make it sample another ensemble, or with the training reference's seed, is refused,
    as is a length the save interval does not divide."""
    cfg = copy.deepcopy(default_config)
    entry = cfg["systems"]["alanine_dipeptide"]
    entry["test_reference"] = {"production_ps": 4 * entry["reference"]["production_ps"]}
    validate_config(cfg)
    entry["test_reference"] = {"production_ps": 10.0, "seed": 7, "friction_per_ps": 5.0}
    check_fails(
        cfg,
        "config.systems.alanine_dipeptide.test_reference",
        "not ['friction_per_ps', 'seed']",
    )
    entry["test_reference"] = {"production_ps": 1.7}
    check_fails(cfg, "config.systems.alanine_dipeptide.test_reference", "save_interval_ps")
    cfg["systems"]["double_well"]["test_reference"] = {"production_ps": 100.0}
    check_fails(cfg, "config.systems.double_well.test_reference", "(n_samples)")


def test_missing_and_malformed_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("systems: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_system_method_overrides(default_config):
    from cgflow.study import StudySettings

    cfg = copy.deepcopy(default_config)
    cfg["systems"]["double_well"]["methods"] = {"fm": {"max_steps": 500}}
    validate_config(cfg)
    study = StudySettings.from_config(cfg, "double_well")
    assert study.methods["fm"]["max_steps"] == 500
    assert study.methods["fm"]["batch_size"] == default_config["methods"]["fm"]["batch_size"]
    assert StudySettings.from_config(cfg, "double_well_coupled").methods["fm"]["max_steps"] != 500
    bad = copy.deepcopy(default_config)
    del bad["methods"]["re"], bad["methods"]["fm_re"]  # a study without RE
    bad["systems"]["double_well"]["methods"] = {"fm": {"learning_rate": "fast"}, "re": {}}
    check_fails(
        bad,
        "config.systems.double_well.methods.fm",
        "learning_rate must be a number",
        "config.systems.double_well.methods.re",
        "does not run 're'",
    )


def test_re_settings_and_fm_re_dependency(default_config):
    cfg = copy.deepcopy(default_config)
    cfg["methods"]["re"] = {"neff_threshold": 1.5}
    check_fails(cfg, "config.methods.re.neff_threshold")
    cfg = copy.deepcopy(default_config)
    cfg["methods"]["re"] = {}
    cfg["methods"]["fm_re"] = {"n_updates": 10}
    cfg["systems"]["double_well"]["methods"] = {"fm_re": {}}
    check_fails(cfg, "config.systems.double_well", "fm_re starts from the fm model")
    cfg["systems"]["double_well"]["methods"] = {"fm": {}, "fm_re": {"sample_steps": 5}}
    msg = check_fails(cfg, "config.systems.double_well.methods.fm_re", "fm_re.sample_steps")
    assert "methods.re." not in msg  # the error names the block the value came from
    cfg["systems"]["double_well"]["methods"] = {"fm": {}, "fm_re": {}, "re": {}}
    config = validate_config(cfg)
    assert config["methods"]["fm_re"]["neff_threshold"] == 0.9  # schema default filled in


def test_cluster_jobs_check_the_config_without_jax(repo):
    """A cluster job's Snakemake process (method_blocks=False) checks and fills the
    config without importing any method's module, so without JAX."""
    import subprocess
    import sys

    code = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("jax", "optax", "flax", "jax_md"):
            raise ImportError(name + " blocked")
sys.meta_path.insert(0, Block())
from cgflow.config import load_config, validate_config
config = validate_config(load_config({str(repo / "config" / "config.yaml")!r}), method_blocks=False)
assert config["val_fraction"] == 0.1 and config["systems"]["double_well"]["prior"]
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda c: c["systems"]["double_well"]["simulation"]["dt"].__setitem__(0, float("nan")),
         "config.systems.double_well.simulation.dt[0]: nan"),
        (lambda c: c["systems"]["double_well"]["potential"].__setitem__("c", float("nan")),
         "config.systems.double_well.potential.c: nan"),
        (lambda c: c["systems"]["alanine_dipeptide"]["reference"].__setitem__(
            "production_ps", float("inf")),
         "config.systems.alanine_dipeptide.reference.production_ps: inf"),
    ],
)  # fmt: skip
def test_non_finite_numbers_are_refused(repo, change, field):
    """YAML's .nan and .inf pass the schema's bounds (NaN compares false with every
    bound): the config check names each one before anything runs."""
    config = load_config(repo / "config" / "smoke.yaml")
    change(config)
    with pytest.raises(ConfigError) as err:
        validate_config(config)
    assert f"{field} is not a finite number" in str(err.value)


def test_a_key_written_twice_is_refused(repo, tmp_path):
    """YAML keeps the last of two equal keys without a word; the config check names
    the key and both lines. Merge keys may still be overridden."""
    text = (repo / "config" / "smoke.yaml").read_text()
    assert "fm_re: *re_smoke" in text  # anchors and aliases load as before
    load_config(repo / "config" / "config.yaml")  # it overrides a merge key: allowed
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("seeds: [0]\n", "seeds: [0]\nseeds: [1]\n", 1))
    with pytest.raises(ConfigError, match=r"key 'seeds' appears twice \(also on line 2\)"):
        load_config(bad)


def test_temperature_settings_of_em_and_fm_nearest(default_config):
    thermal = default_config["systems"]["double_well_thermal"]
    thermal["held_out_temperatures"] = [3.5]
    check_fails(default_config, "double_well_thermal.held_out_temperatures[0]: 3.5 is not one")
    thermal["held_out_temperatures"] = [2.0, 3.0]
    check_fails(default_config, "em trains one model across temperatures and needs at least two")
    thermal["held_out_temperatures"] = []
    check_fails(default_config, "fm_nearest runs at held-out temperatures; there are none")
    thermal["held_out_temperatures"] = [3.0]
    thermal["n_train"] = [3]
    check_fails(default_config, "n_train[0]: em splits 3 frames over 2 temperatures")
    thermal["n_train"] = [1000]
    thermal["methods"] = {"em": {}, "fm_nearest": {}}
    check_fails(default_config, "fm_nearest uses the fm model, so it needs fm as well")
    thermal["methods"] = {"fm": {}, "em": {}, "fm_nearest": {}}
    k = max(
        i for i, c in enumerate(default_config["claims"]) if c["system"] == "double_well_thermal"
    )
    default_config["claims"][k]["temperature"] = 5.0
    check_fails(default_config, f"claims[{k}].temperature: 5.0 is not one of")


def test_only_systems_runs_a_slice_of_the_study(repo):
    """only_systems keeps those systems and the claims about them; a name that is
    not a system of the config is refused, naming the systems there are."""
    full = validate_config(load_config(repo / "config" / "claims.yaml"))
    config = load_config(repo / "config" / "claims.yaml")
    config["only_systems"] = ["alanine_vacuum", "dw_data_d25"]
    sliced = validate_config(config)
    assert sorted(sliced["systems"]) == ["alanine_vacuum", "dw_data_d25"]
    kept = [c for c in full["claims"] if c["system"] in ("alanine_vacuum", "dw_data_d25")]
    assert sliced["claims"] == kept and 0 < len(kept) < len(full["claims"])
    config = load_config(repo / "config" / "claims.yaml")
    config["only_systems"] = ["alanine_vaccum"]
    check_fails(config, "config.only_systems", "'alanine_vaccum'", "alanine_vacuum")


def test_check_config_refuses_runs_larger_than_a_job_may_be(default_config):
    """CG runs and RE trainings whose estimated peak memory exceeds what a job may
    use (max_job_memory_gb; by default this machine's memory), or whose samples
    exceed the whole disk, are refused before any job, naming the block."""
    where = "config.systems.double_well"
    for key, value in (("n_replicas", 10**8), ("n_steps", 10**13)):
        cfg = copy.deepcopy(default_config)
        cfg["systems"]["double_well"]["simulation"][key] = value
        check_fails(cfg, f"{where}.simulation", "GB of memory; a job may use")
        check_fails(cfg, f"{where}.simulation", "more than the whole disk of results/")
    cfg = copy.deepcopy(default_config)
    validate_config(copy.deepcopy(cfg))
    cfg["max_job_memory_gb"] = 1e-4  # 100 kB: the default study's runs need more
    check_fails(cfg, f"{where}.simulation", "a job may use 0.0001 GB (max_job_memory_gb)")
    check_fails(cfg, "config.systems.double_well_coupled.methods.re", "training samples need")
    cfg["max_job_memory_gb"] = 0
    check_fails(cfg, "config.max_job_memory_gb", "")
