"""The whole DAG: the smoke study end to end in a temporary copy, plus dry runs and lint."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from cgflow.io import load_dataset, read_json

COLUMNS = [
    "system",
    "mapping",
    "method",
    "n_train",
    "seed",
    "dt",
    "temperature",
    "metric",
    "value",
    "run_dir",
    "ci_low",
    "ci_high",
]


def snakemake(workdir, *args, check=True, timeout=600):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


@pytest.fixture
def workdir(repo, tmp_path):
    for name in ("Snakefile", "workflow", "config", "envs"):
        src = repo / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name)
    return tmp_path


@pytest.mark.slow
@pytest.mark.parametrize(
    "config",
    [
        "config/config.yaml",
        "config/smoke.yaml",
        "config/claims.yaml",
        "config/water.yaml",
        "config/thermal.yaml",
        "config/paper_alanine_dipeptide.yaml",
        "config/molecules/glycine_dipeptide.yaml",
    ],
)
def test_dry_run(workdir, config):
    snakemake(workdir, "-n", "--quiet", "--configfile", config)


@pytest.mark.slow
def test_the_local_profile_gives_cg_simulation_two_cores(workdir):
    """A run under the profile plans each CG simulation with two threads and every
    other job with one. Snakemake ignores a ``set-threads`` name that matches no rule,
    so the plan, not the profile's text, shows that the setting took."""
    profile = yaml.safe_load((workdir / "workflow/profiles/local/config.yaml").read_text())
    assert profile["set-threads"] == {"simulate_cg": 2}
    plan = snakemake(workdir, "-n", "--profile", "workflow/profiles/local", "--cores", "4",
                     "--configfile", "config/smoke.yaml")  # fmt: skip
    jobs = re.findall(r"^(?:local)?rule (\w+):\n(?:    .*\n)*?    threads: (\d+)",
                      plan.stdout + plan.stderr, re.M)  # fmt: skip
    threads = {(rule, int(n)) for rule, n in jobs}
    assert ("simulate_cg", 2) in threads
    assert all(n == (2 if rule == "simulate_cg" else 1) for rule, n in threads), threads


@pytest.mark.slow
def test_lint(workdir):
    """Snakemake's linter reads the rules, which are the same under every config."""
    lint = snakemake(workdir, "--lint")
    assert "Congratulations" in lint.stdout + lint.stderr


@pytest.mark.slow
def test_a_system_can_have_its_own_seeds(workdir):
    """``seeds`` in a system's entry replaces the study's for that system only."""
    config = yaml.safe_load((workdir / "config" / "smoke.yaml").read_text())
    config["systems"]["double_well"]["seeds"] = [3, 4]
    (workdir / "config" / "seeds.yaml").write_text(yaml.safe_dump(config))
    plan = snakemake(workdir, "-n", "-p", "--configfile", "config/seeds.yaml")
    out = plan.stdout + plan.stderr
    assert "double_well/x1/T3/fm/n200_s3/" in out and "double_well/x1/T3/fm/n200_s4/" in out
    assert "double_well/x1/T3/fm/n200_s0/" not in out
    assert "double_well_coupled/x1/T3/fm/n1000_s0/" in out
    assert "double_well_coupled/x1/T3/fm/n1000_s3/" not in out


@pytest.mark.slow
def test_a_claimed_system_runs_only_what_its_claims_compare(workdir):
    """claims.yaml's alanine entry (``runs: claimed``): FM and RE at n 400 (2 fs) and
    n 4000 (2 and 6 fs), FM->RE at n 4000 (2 fs); no model at another cell."""
    plan = snakemake(workdir, "-n", "-p", "--configfile", "config/claims.yaml")
    out = plan.stdout + plan.stderr
    base = "results/alanine_dipeptide/heavy_atoms/T300/"
    runs = set(re.findall(re.escape(base) + r"(\w+/n\d+_s0/dt[0-9.]+)/metrics.json", out))
    assert runs == {
        "fm/n400_s0/dt0.002", "fm/n4000_s0/dt0.002", "fm/n4000_s0/dt0.006",
        "re/n400_s0/dt0.002", "re/n4000_s0/dt0.002", "re/n4000_s0/dt0.006",
        "fm_re/n4000_s0/dt0.002",
    }  # fmt: skip
    assert "results/dw_data_d25/x1/T3/fm/n1000_s0/dt0.05/metrics.json" in out


@pytest.mark.slow
def test_a_reference_of_several_runs_is_sampled_in_parallel_jobs_and_pooled(workdir):
    """reference.n_runs 4 (test_reference.n_runs 2): a job per run, and the
    reference's job pools them in run order."""
    config = yaml.safe_load((workdir / "config" / "config.yaml").read_text())
    entry = config["systems"]["alanine_dipeptide"]
    entry["reference"]["n_runs"] = 4
    entry["test_reference"] = {"n_runs": 2}
    (workdir / "config" / "runs.yaml").write_text(yaml.safe_dump(config))
    plan = snakemake(workdir, "-n", "-p", "--configfile", "config/runs.yaml")
    out = plan.stdout + plan.stderr
    jobs = planned_jobs(out)
    assert jobs["sample_reference_run"] == 4 and jobs["sample_test_reference_run"] == 2
    base = "results/alanine_dipeptide/reference/T300/"
    pooled = " ".join(f"{base}runs/{k}/aa.npz" for k in range(4))
    assert f"--pool {pooled} --out {base}aa.npz" in out
    assert f"--run 3 --out {base}runs/3/aa.npz" in out
    assert f"--pool {base}test/runs/0/aa.npz {base}test/runs/1/aa.npz" in out
    # the other systems' references are one run each, sampled whole by one job
    assert re.search(r"--part train\s+--out results/double_well/reference/T3/aa\.npz", out)


@pytest.mark.slow
def test_a_data_free_training_does_not_read_the_reference_block(workdir):
    """A generator's training gets settings without the reference block, so that
    sampling the reference differently does not retrain it; a training on data gets
    the block."""
    plan = snakemake(workdir, "-n", "-p", "--configfile", "config/claims.yaml")
    out = plan.stdout + plan.stderr
    settings = re.findall(r"cgflow (train-generator|train) --settings '([^']*)'", out)
    generators = [json.loads(s) for step, s in settings if step == "train-generator"]
    trained = [json.loads(s) for step, s in settings if step == "train"]
    assert generators and trained
    assert not any("reference" in g["entry"] for g in generators)
    assert all("reference" in t["entry"] for t in trained)


@pytest.mark.slow
def test_configfile_replaces_the_default_config(workdir):
    """--configfile must not be merged into config/config.yaml (Snakemake's default)."""
    plan = snakemake(workdir, "-n", "--configfile", "config/paper_alanine_dipeptide.yaml")
    out = plan.stdout + plan.stderr
    assert "alanine_dipeptide" in out and "double_well" not in out


@pytest.mark.slow
def test_bad_config_stops_before_any_job(workdir):
    cfg = (
        (workdir / "config" / "smoke.yaml")
        .read_text()
        .replace("dt: [0.01, 0.05]", "dt: [0.01, -0.05]")
    )
    (workdir / "config" / "bad.yaml").write_text(cfg)
    proc = snakemake(workdir, "--cores", "1", "--configfile", "config/bad.yaml", check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "config.systems.double_well.simulation.dt[1]" in out
    assert not (workdir / "results").exists()


@pytest.mark.slow
def test_duplicate_key_stops_the_workflow(workdir):
    text = (workdir / "config" / "smoke.yaml").read_text()
    (workdir / "config" / "dup.yaml").write_text(
        text.replace("seeds: [0]\n", "seeds: [0]\nseeds: [1]\n", 1)
    )
    proc = snakemake(workdir, "-n", "--configfile", "config/dup.yaml", check=False)
    assert proc.returncode != 0
    assert "key 'seeds' appears twice" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_smoke_study_end_to_end(workdir):
    snakemake(workdir, "--cores", "2", "--configfile", "config/smoke.yaml")
    summary = pd.read_csv(workdir / "results" / "summary.csv")
    assert list(summary.columns) == COLUMNS
    models = summary[(summary.method == "fm") & summary.system.str.startswith("double_well")]
    # double_well: 2 n_train x 2 dt; coupled: 1 n_train x 2 dt; thermal: 3 temperatures
    # x 1 dt; 9 metrics each: 4 of the simulation, the same 4 of the model's PMF by
    # quadrature, and stable; a stable run's replicas_crossing besides
    sampled = {"pmf_wrmse_kT", "pmf_rmse_kT", "js_divergence", "dF_right_err_kT"}
    n_stable = int(models[models.metric == "stable"].value.sum())
    assert len(models) == (4 + 2 + 3) * 9 + n_stable
    quad = {f"quad_{m}" for m in sampled}
    assert set(models.metric) == {"stable", "replicas_crossing"} | sampled | quad
    crossing = models[models.metric == "replicas_crossing"].value
    assert len(crossing) == n_stable and crossing.between(0, 1).all()
    # dt 3.0 is deliberately unstable: every method's run there is recorded as such
    unstable = summary[(summary.metric == "stable") & (summary.dt == 3.0)]
    assert set(unstable.method) == {"prior", "fm", "re", "fm_re"} and (unstable.value == 0).all()
    stable_runs = summary[(summary.metric == "stable") & (summary.value == 1)].run_dir
    ok = models[models.run_dir.isin(stable_runs)]
    assert ok[ok.metric.isin(sampled)].ci_low.notna().all()
    re_model = read_json(
        workdir / "results/double_well_coupled/x1/T3/re/n1000_s0/dt3/model/model.json"
    )
    assert re_model["usable"] is False  # RE diverged at dt 3: a result, not a crash
    assert set(summary[summary.method == "reference"].system) == {
        "double_well",
        "double_well_coupled",
        "double_well_thermal",
        "alanine_dipeptide",
        "glycine_dipeptide",
    }
    # energy matching: one model of kT 2 and 4, simulated and scored at 2, 3 and 4;
    # the FM model of kT 2 run at the held-out 3 (fm_nearest)
    thermal = summary[(summary.system == "double_well_thermal") & (summary.metric == "stable")]
    assert sorted(thermal[thermal.method == "em"].temperature) == [2.0, 3.0, 4.0]
    assert list(thermal[thermal.method == "fm_nearest"].temperature) == [3.0]
    em_rows = summary[(summary.system == "double_well_thermal") & (summary.method == "em")]
    for metric in ("quad_energy_wrmse_kT", "quad_mean_energy_err_kT", "quad_heat_capacity_err"):
        rows = em_rows[em_rows.metric == metric]
        assert len(rows) == 3 and np.isfinite(rows.value).all(), metric
    em_model = read_json(
        workdir / "results/double_well_thermal/x1/multiT/em/n600_s0/model/model.json"
    )
    assert [s["kT"] for s in em_model["train_sets"]] == [2.0, 4.0]
    assert [s["n_train"] for s in em_model["train_sets"]] == [300, 300]
    assert em_model["network"]["temperature"] == {
        "form": "input", "kT_shift": 3.0, "kT_scale": 1.0,
    }  # fmt: skip
    held = workdir / "results/double_well_thermal/x1/T3"
    assert read_json(held / "em/n600_s0/dt0.02/status.json")["kT"] == 3.0
    assert read_json(held / "fm_nearest/n600_s0/dt0.02/status.json")["kT"] == 3.0
    assert (
        "T2/fm/n600_s0/model" in read_json(held / "fm_nearest/n600_s0/dt0.02/status.json")["model"]
    )
    ala = summary[summary.system == "alanine_dipeptide"]
    assert set(ala.metric) == {
        "stable", "fes_wrmse_kT", "fes_rmse_kT", "hist_mse", "js_divergence", "mass_outside",
        "dF_alpha_R_err_kT", "dF_alpha_L_err_kT",
    }  # fmt: skip
    assert (ala.n_train == 40).all()  # the 40 training frames scored on the test reference
    import mdtraj

    data = workdir / "results" / "alanine_dipeptide"
    assert mdtraj.load(str(data / "reference" / "T300" / "aa.h5")).n_atoms == 22
    assert mdtraj.load(str(data / "heavy_atoms" / "T300" / "cg.h5")).n_atoms == 10
    train, _ = load_dataset(data / "heavy_atoms" / "T300" / "cg.npz")
    test, test_meta = load_dataset(data / "heavy_atoms" / "T300" / "test" / "cg.npz")
    assert train["positions"].shape == test["positions"].shape
    assert not np.allclose(train["positions"][-1], test["positions"][-1])  # independent runs
    for run_dir in ok.run_dir.unique():
        folder = workdir / run_dir
        samples, meta = load_dataset(folder / "samples.npz")
        assert samples["positions"].ndim == 3 and samples["positions"].shape[1:] == (1, 1)
        status = read_json(folder / "status.json")
        assert {"stable", "steps_done", "wall_time_s", "steps_per_second"} <= set(status)
    # a molecule declared in config (type: molecule): FM and RE trained, simulated,
    # scored with CIs on its own phi/psi surface and basins, and claimed about
    gly = summary[(summary.system == "glycine_dipeptide") & summary.method.isin(["fm", "re"])]
    scored = gly[gly.metric == "fes_wrmse_kT"]
    assert set(scored.method) == {"fm", "re"} and scored.ci_low.notna().all()
    assert {"js_divergence", "dF_alpha_R_err_kT", "replicas_crossing"} <= set(gly.metric)
    gly_run = workdir / "results/glycine_dipeptide/heavy_atoms/T300/fm/n150_s0/dt0.002"
    assert mdtraj.load(str(next(gly_run.glob("*.h5")))).n_atoms == 9
    rmse = ok[ok.metric == "pmf_rmse_kT"].value
    assert np.all(np.isfinite(rmse)) and rmse.max() < 2.0
    for fig in (
        "free_energy_double_well_x1_T3.png",
        "free_energy_double_well_coupled_x1_T3.png",
        "free_energy_double_well_thermal_x1_T3.png",
        "error_vs_n_train.png",
        "error_vs_dt.png",
        "free_energy_alanine_dipeptide_heavy_atoms_T300.png",
    ):
        assert (workdir / "results" / "figures" / fig).stat().st_size > 10_000
    table = pd.read_csv(workdir / "results" / "benchmark.csv")
    coupled = table[table.system == "double_well_coupled"]
    assert set(coupled.method) == {"prior", "fm", "re", "fm_re", "rkl", "rkl_flow"}
    assert "alanine_dipeptide" not in set(table.system)  # smoke: reference data only
    text = (workdir / "results" / "benchmark.md").read_text()
    assert "| fm_re | 1000 |" in text and "| re - fm | 1000 |" in text
    # the data-free generator: one cell, no data, sampled; its latent scores and gap
    assert "| rkl | no data |" in text and "sampled (no dt)" in text
    rkl = pd.read_csv(workdir / "results" / "summary.csv").query("method == 'rkl'")
    assert set(rkl.n_train) == {0} and set(rkl.dt) == {0}
    assert {"latent_corr_x1", "latent_mi_x1", "bound_gap", "p_left_reweighted"} <= set(rkl.metric)
    claims = (workdir / "results" / "claims.md").read_text()
    assert "| RE beats FM | double_well_coupled | pmf_wrmse_kT | re vs fm (better) |" in claims
    assert "rkl vs reference (within)" in claims and "rkl vs >= 0.5 (at_least)" in claims
    # one seed: no verdict about a method, whatever the CI of its one model says
    assert "**undecided (1 seed)**" in claims
    assert "**holds**" not in claims and "**does not hold**" not in claims
    assert (workdir / "results" / "figures" / "claims.png").is_file()
    diffs = pd.read_csv(workdir / "results" / "differences.csv")
    assert {"fm - prior", "re - fm", "fm_re - re"} <= set(diffs.method + " - " + diffs.baseline)
    # Everything is up to date afterwards.
    again = snakemake(workdir, "-n", "--configfile", "config/smoke.yaml")
    assert "Nothing to be done" in again.stdout + again.stderr
    # A changed setting reruns only the jobs that read it: a new RE learning rate
    # retrains re (not fm_re, fm or the reference); a new dt adds its simulations.
    cfg = yaml.safe_load((workdir / "config" / "smoke.yaml").read_text())
    cfg["methods"]["re"] = {**cfg["methods"]["re"], "learning_rate": 0.02}
    cfg["systems"]["double_well"]["simulation"]["dt"].append(0.1)
    (workdir / "config" / "changed.yaml").write_text(yaml.safe_dump(cfg))
    plan = snakemake(workdir, "-n", "--configfile", "config/changed.yaml")
    assert planned_jobs(plan.stdout + plan.stderr) == {
        "train_at_dt": 2,  # double_well_coupled's re at its 2 time steps
        "simulate_cg": 6,  # those models, and double_well's 2 methods x 2 n_train at dt 0.1
        "evaluate": 6,
        "aggregate": 1,
        "publish": 1,
        "all": 1,
    }
    # A new (held-out) temperature adds its own jobs only: its reference, FM there,
    # and em and fm_nearest run there; em's model (of kT 2 and 4) is not retrained.
    cfg = yaml.safe_load((workdir / "config" / "smoke.yaml").read_text())
    thermal = cfg["systems"]["double_well_thermal"]
    thermal["temperatures"].append(5.0)
    thermal["held_out_temperatures"].append(5.0)
    (workdir / "config" / "hotter.yaml").write_text(yaml.safe_dump(cfg))
    plan = snakemake(workdir, "-n", "--configfile", "config/hotter.yaml")
    assert planned_jobs(plan.stdout + plan.stderr) == {
        "sample_reference": 1,
        "map_to_cg": 1,
        "evaluate_reference": 1,
        "fit_prior": 1,
        "train": 1,  # fm at kT 5
        "simulate_cg": 3,  # fm, em and fm_nearest (fm of kT 4) at kT 5
        "evaluate": 3,
        "aggregate": 1,
        "publish": 1,
        "all": 1,
    }
    # A molecule's changed basins rerun what reads its declarations (from the map
    # step on), not the sampling of its references.
    cfg = yaml.safe_load((workdir / "config" / "smoke.yaml").read_text())
    cfg["systems"]["glycine_dipeptide"]["basins"]["alpha_L"] = {"phi": [10, 180]}
    (workdir / "config" / "basins.yaml").write_text(yaml.safe_dump(cfg))
    plan = snakemake(workdir, "-n", "--configfile", "config/basins.yaml")
    plan = planned_jobs(plan.stdout + plan.stderr)
    assert plan["evaluate"] == 2 and plan["map_to_cg"] == plan["map_test_to_cg"] == 1
    assert not {"sample_reference", "sample_test_reference"} & set(plan)
    # A changed claim rewrites the claims file and reruns the aggregate only, whose
    # command line names the file, not the claims.
    cfg = yaml.safe_load((workdir / "config" / "smoke.yaml").read_text())
    cfg["claims"][0]["name"] = "RE beats FM (quux)"
    (workdir / "config" / "renamed.yaml").write_text(yaml.safe_dump(cfg))
    plan = snakemake(workdir, "-n", "-p", "--configfile", "config/renamed.yaml")
    out = plan.stdout + plan.stderr
    assert planned_jobs(out) == {"claims_config": 1, "aggregate": 1, "publish": 1, "all": 1}
    (command,) = [line for line in out.splitlines() if "cgflow aggregate" in line]
    assert "--claims-file results/claims_config.json" in command and "quux" not in command
    # One run's metrics.json cut short: the aggregate leaves that run out, lists it as
    # failed and writes every deliverable again.
    results = workdir / "results"
    deliverables = ("summary.csv", "claims.md", "benchmark.md", "figures/claims.png")
    before = {name: (results / name).stat().st_mtime_ns for name in deliverables}
    broken = results / "double_well_coupled/x1/T3/fm/n1000_s0/dt0.05/metrics.json"
    text = broken.read_text()
    broken.write_text(text[: len(text) // 2])
    # ... and a model's params.msgpack cut short: it is set aside (a dry run only says
    # so), its run's samples and scores stay, and it is trained again when needed.
    model = results / "double_well/x1/T3/fm/n200_s0/model"
    run = model.parent / "dt0.01"
    kept_run = {p: p.read_bytes() for p in run.iterdir()}
    params = (model / "params.msgpack").read_bytes()
    (model / "params.msgpack").write_bytes(params[: len(params) // 2])
    plan = snakemake(workdir, "-n", "--configfile", "config/smoke.yaml")
    assert f"{model.relative_to(workdir)}/params.msgpack: damaged" in plan.stderr
    assert (model / "params.msgpack").is_file()
    snakemake(workdir, "--cores", "2", "--configfile", "config/smoke.yaml")
    assert (model / "params.msgpack.damaged").read_bytes() == params[: len(params) // 2]
    assert {p: p.read_bytes() for p in run.iterdir()} == kept_run
    target = str((model / "params.msgpack").relative_to(workdir))
    plan = snakemake(workdir, "-n", target, "--configfile", "config/smoke.yaml")
    assert planned_jobs(plan.stdout + plan.stderr) == {"train": 1}
    assert all((results / n).stat().st_mtime_ns > t for n, t in before.items())
    lost = pd.read_csv(results / "failed_runs.csv")
    assert list(lost.path) == [str(broken.relative_to(workdir))]
    assert (lost.method[0], lost.n_train[0], lost.dt[0]) == ("fm", 1000, 0.05)
    for page in ("claims.md", "benchmark.md"):
        assert "## Failed runs" in (results / page).read_text()
    verdicts = pd.read_csv(results / "claims.csv").set_index("claim").verdict
    assert "runs failed" in verdicts["RE beats FM"]  # it reads FM there
    assert "runs failed" not in verdicts["rkl near the floor"]  # rkl vs the reference
    summary = pd.read_csv(results / "summary.csv")
    assert not summary.run_dir.eq(str(broken.parent.relative_to(workdir))).any()
    assert summary.run_dir.eq("results/double_well_coupled/x1/T3/re/n1000_s0/dt0.05").any()
    # An aggregate that cannot run at all (its claims file damaged) keeps the last
    # deliverables, byte for byte.
    kept = {results / name: (results / name).read_bytes() for name in deliverables}
    claims_file = results / "claims_config.json"
    claims_file.write_text(claims_file.read_text()[:10])
    failed = snakemake(workdir, "--cores", "2", "--configfile", "config/smoke.yaml", check=False)
    assert failed.returncode != 0
    assert "claims_config.json" in (results.parent / "logs/aggregate.log").read_text()
    assert all(p.read_bytes() == content for p, content in kept.items())


def planned_jobs(text: str) -> dict:
    """Job counts from the 'Job stats' table of a Snakemake dry run."""
    table = text.split("Job stats:")[1].split("total")[0]
    rows = [line.split() for line in table.splitlines()[3:]]
    return {row[0]: int(row[1]) for row in rows if len(row) == 2}
