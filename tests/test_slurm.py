"""A small study through the shipped Slurm profile, on a private Slurm cluster: every
rule of the DAG (tests/examples/slurm_study.yaml, the smoke study less its extra systems,
sizes, time steps and methods, since each Slurm job pays its start-up).

The cluster (tests/slurm_cluster.py) has a CPU and a GPU partition with two fake GPUs.
The profile is adapted the way the README tells users to: partition names, plus
requests that fit this one small node. The first run has one deliberately broken input
and must fail, naming the job's log; the second, after the fix, must finish the DAG
without resubmitting the jobs that had already succeeded.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from slurm_cluster import SlurmCluster, missing_requirements

from cgflow.io import read_json

pytestmark = pytest.mark.slow

GPU_RULES = {
    "sample_reference", "sample_test_reference", "train", "train_at_dt",
    "train_across_temperatures", "simulate_cg", "train_generator", "generate",
}  # fmt: skip
CPU_RULES = {
    "map_to_cg", "map_test_to_cg", "fit_prior", "fit_prior_across_temperatures", "evaluate",
    "evaluate_reference", "aggregate",
}  # fmt: skip
BROKEN = Path("results/alanine_dipeptide/reference/T300/aa.npz")
BROKEN_LOG = "logs/alanine_dipeptide/heavy_atoms/T300/map.log"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    why = missing_requirements()
    if why:
        pytest.skip(why)
    c = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    c.start()
    yield c
    c.stop()


def adapt_profile(repo: Path, dest: Path, cluster: SlurmCluster) -> Path:
    """The shipped Slurm profile with this cluster's partitions and node size."""
    profile = yaml.safe_load((repo / "workflow/profiles/slurm/config.yaml").read_text())
    profile["default-resources"]["slurm_partition"] = cluster.cpu_partition
    for rule, res in profile["set-resources"].items():
        assert rule in GPU_RULES, f"profile sends unexpected rule {rule} to a GPU"
        res["slurm_partition"] = cluster.gpu_partition
        res["cpus_per_task"] = 1
        res["mem_mb"] = min(res["mem_mb"], cluster.mem_mb // 4)
    assert set(profile["set-resources"]) == GPU_RULES
    profile.update(
        {
            "jobs": 4 * cluster.cpus,  # a queue, so Slurm starts the next job at once
            "latency-wait": 5,
            "slurm-no-account": True,
            "slurm-status-command": "squeue",  # no accounting database here
            "slurm-init-seconds-before-status-checks": 1,
            "seconds-between-status-checks": 2,
            "slurm-keep-successful-logs": True,
        }
    )
    dest.mkdir(parents=True)
    (dest / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return dest


def run_snakemake(workdir, cluster, profile):
    env = cluster.env
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--profile", str(profile)]
        + ["--configfile", "config/slurm_study.yaml", "--verbose"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )


def submitted(cluster, before=()):
    """Job records of this cluster, minus those in ``before``: {job id: (rule, fields)}."""
    out = {}
    for jid, rec in cluster.jobs().items():
        if jid in before:
            continue
        m = re.match(r"rule_([a-z_]+?)(?:_wildcards_.*)?$", rec.get("Comment", ""))
        assert m, f"job {jid} has no rule comment: {rec.get('Comment')}"
        out[jid] = (m.group(1), rec)
    return out


def test_smoke_study_on_slurm(repo, tmp_path, cluster):
    workdir = tmp_path / "study"
    workdir.mkdir()
    for name in ("Snakefile", "workflow", "config", "envs"):
        src = repo / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, workdir / name)
    shutil.copy(repo / "tests/examples/slurm_study.yaml", workdir / "config/slurm_study.yaml")
    profile = adapt_profile(repo, tmp_path / "profile", cluster)

    # Run 1: one reference file holds none of a reference's arrays, so its map_to_cg
    # job fails; the rest go on. (A file that is not an archive at all would be set
    # aside as damaged before the plan, and made again.)
    (workdir / BROKEN).parent.mkdir(parents=True)
    np.savez(workdir / BROKEN, not_a_reference=np.zeros(3))
    first = run_snakemake(workdir, cluster, profile)
    log1 = first.stdout + first.stderr
    assert first.returncode != 0, log1[-3000:]
    assert "Error in rule map_to_cg" in log1, log1[-3000:]
    assert BROKEN_LOG in log1
    m = re.search(r"\S*slurm_logs/rule_map_to_cg\S*\.log", log1)
    assert m, "Snakemake did not name the failed job's Slurm log"
    map_log = (workdir / BROKEN_LOG).read_text()
    assert "missing arrays" in map_log or str(BROKEN.relative_to("results")) in map_log
    jobs1 = submitted(cluster)
    failed = {j for j, (rule, rec) in jobs1.items() if rec["JobState"] != "COMPLETED"}
    assert [jobs1[j][0] for j in failed] == ["map_to_cg"], {j: jobs1[j][0] for j in failed}
    assert not (workdir / "results/summary.csv").exists()

    assert {rule for rule, _ in jobs1.values()} == (GPU_RULES | CPU_RULES) - {"aggregate"}

    # The GPU reached the job: the training metadata records the allocation, and the log
    # says the (fake) GPU went unused by this CPU-only JAX.
    fm_run = "double_well_coupled/x1/T3/fm/n1000_s0"
    model = read_json(workdir / f"results/{fm_run}/model/model.json")
    device = model["training"]["device"]
    assert device["backend"] == "cpu"
    assert "cuda_visible_devices" in device or "slurm_step_gpus" in device, device
    assert device["slurm_job_partition"] == cluster.gpu_partition
    train_log = (workdir / f"logs/{fm_run}/train.log").read_text()
    assert "allocated a GPU but runs on cpu" in train_log

    # Run 2, after the fix: only the broken branch and the aggregate run again.
    (workdir / BROKEN).unlink()
    second = run_snakemake(workdir, cluster, profile)
    log2 = second.stdout + second.stderr
    assert second.returncode == 0, log2[-5000:]
    jobs2 = submitted(cluster, before=jobs1)
    assert all(rec["JobState"] == "COMPLETED" for _, rec in jobs2.values())
    done_before = {
        rec["Comment"] for j, (_, rec) in jobs1.items() if rec["JobState"] == "COMPLETED"
    }
    redone = done_before & {rec["Comment"] for _, rec in jobs2.values()}
    assert not redone, f"jobs that had succeeded were submitted again: {sorted(redone)}"
    # (the broken system has no models: its test reference, done in run 1, stays)
    redo = {"sample_reference", "map_to_cg", "evaluate_reference", "aggregate"}
    assert {rule for rule, _ in jobs2.values()} == redo

    # Every GPU rule asked for one GPU on the GPU partition; CPU rules for none, on the CPU one.
    for jid, (rule, rec) in {**jobs1, **jobs2}.items():
        gres = rec.get("TresPerJob", "") + rec.get("TresPerNode", "")
        if rule in GPU_RULES:
            assert rec["Partition"] == cluster.gpu_partition, (jid, rule, rec["Partition"])
            assert "gpu:1" in gres, (jid, rule, gres)
        else:
            assert rule in CPU_RULES, rule
            assert rec["Partition"] == cluster.cpu_partition, (jid, rule, rec["Partition"])
            assert "gpu" not in gres, (jid, rule, gres)
    assert all(
        "alanine_dipeptide" in rec["Comment"] for rule, rec in jobs2.values() if rule != "aggregate"
    )
    assert (workdir / "results/summary.csv").exists()
    for fig in ("free_energy_double_well_coupled_x1_T3.png", "error_vs_n_train.png"):
        assert (workdir / "results/figures" / fig).exists(), fig

    # The sbatch options each rule got, for the record (pytest -s shows them).
    calls = sorted(set(re.findall(r"sbatch call: (sbatch .*?) --wrap", log1 + log2)))
    by_rule = {}
    for call in calls:
        rule = re.search(r"--comment '?rule_([a-z_]+?)(?:_wildcards|'|\s)", call).group(1)
        opts = re.sub(r"--(job-name|output|comment) \S+ |-D \S+", "", call)
        by_rule.setdefault(rule, opts)
    print("\n".join(f"{r}: {o}" for r, o in sorted(by_rule.items())))
    assert set(by_rule) == GPU_RULES | CPU_RULES
