"""Fault injection: each long step, killed (SIGKILL) at a random point after it has
written a checkpoint and started again, ends with the outputs of an uninterrupted
run, bit for bit (OpenMM within 1e-5 nm: its CPU platform is deterministic with one
thread, and the checkpoint holds the random state)."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import smoke_config

from cgflow.io import load_dataset
from cgflow.models import load_model

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def config_file(tmp_path: Path) -> Path:
    """The smoke config with runs long enough to be killed in the middle."""
    config = smoke_config()
    config["methods"]["fm"].update(max_steps=6000, eval_every=100, patience=1000)
    config["methods"]["re"].update(n_updates=60, checkpoint_every=5, sample_steps=1000)
    config["methods"]["em"].update(max_steps=6000, eval_every=100, patience=1000)
    config["systems"]["double_well_thermal"]["methods"]["em"] = {}
    # 10^6 steps: a shorter run can finish between its first checkpoint and the kill
    # this test sends a moment later, on an idle machine
    sim = config["systems"]["double_well"]["simulation"]
    sim.update(n_steps=1_000_000, n_replicas=64, chunk_steps=20_000, save_every=100)
    config["systems"]["double_well"]["methods"]["re"] = {}
    # 100 ps: a shorter reference can finish its work and remove its partial file
    # before the kill sent after its first checkpoint lands, while the process is
    # still exiting.
    ala = config["systems"]["alanine_dipeptide"]["reference"]
    ala.update(production_ps=100, checkpoint_interval_ps=2, save_interval_ps=0.1)
    path = tmp_path / "faults.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


OPTIMISED = {**os.environ, "JAX_DISABLE_MOST_OPTIMIZATIONS": "false"}
"""The environment of a step compiled as the workflow compiles it: the 10^6-step
simulation runs long enough for its compiled code's speed to matter more than its
compile time (the tests otherwise turn XLA's optimisations off, see conftest.py)."""


def run(args, cwd, env=None):
    return subprocess.run(
        [sys.executable, "-m", "cgflow.cli", *args], cwd=cwd, capture_output=True, text=True,
        env=env,
    )  # fmt: skip


def killed_run(args, cwd, checkpoint: Path, rng, env=None) -> subprocess.CompletedProcess:
    """Start the step, wait for its first checkpoint, then SIGKILL it after a random
    further 0 to 1.5 s (while it is still running)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "cgflow.cli", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 300
    while not checkpoint.exists():
        assert proc.poll() is None, f"ended before its first checkpoint:\n{proc.stderr.read()}"
        assert time.monotonic() < deadline, "no checkpoint within 300 s"
        time.sleep(0.05)
    time.sleep(rng.uniform(0.0, 1.5))
    assert proc.poll() is None, "finished before it could be killed: make the run longer"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    # a step removes its checkpoint once its outputs are written: gone here means the
    # kill landed while the process was exiting, not in the middle of the run
    assert checkpoint.exists(), "finished its work before it was killed: make the run longer"
    return proc


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A double-well data set, prior and FM model to start the steps from."""
    t = tmp_path_factory.mktemp("faults")
    config = config_file(t)
    study = ["--config", str(config), "--system", "double_well"]
    run_ = ["--n-train", "1000", "--seed", "0"]
    for step in (
        ["sample", *study, "--temperature", "3", "--out", "aa.npz"],
        ["map", *study, "--mapping", "x1", "--input", "aa.npz", "--out", "cg.npz"],
        ["fit-prior", *study, "--data", "cg.npz", *run_, "--out", "prior.json"],
        ["train", *study, "--method", "prior", "--data", "cg.npz", "--prior", "prior.json",
         *run_, "--out-dir", "prior_model"],
    ):  # fmt: skip
        out = run(step, t)
        assert out.returncode == 0, out.stderr
    return t, study, run_


def params_of(folder: Path):
    import jax

    _, params, _ = load_model(folder)
    return [np.asarray(x) for x in jax.tree.leaves(params)]


@pytest.mark.parametrize("method", ["fm", "re"])
def test_killed_training_resumes_to_the_uninterrupted_model(prepared, method):
    t, study, run_ = prepared
    args = ["train", *study, "--method", method, "--data", "cg.npz", "--prior", "prior.json",
            *run_] + (["--dt", "0.05"] if method == "re" else [])  # fmt: skip
    whole = run([*args, "--out-dir", f"{method}_whole"], t)
    assert whole.returncode == 0, whole.stderr
    ckpt = t / f"{method}.ckpt.npz"
    out = [*args, "--out-dir", f"{method}_killed", "--checkpoint", str(ckpt)]
    killed_run(out, t, ckpt, random.Random(f"train-{method}"))
    assert not (t / f"{method}_killed" / "model.json").exists()
    again = run(out, t)
    assert again.returncode == 0 and "resumed" in again.stderr, again.stderr[-2000:]
    for a, b in zip(params_of(t / f"{method}_whole"), params_of(t / f"{method}_killed"),
                    strict=True):  # fmt: skip
        np.testing.assert_array_equal(a, b)


def test_killed_simulation_resumes_to_the_uninterrupted_samples(prepared):
    t, study, _ = prepared
    args = ["simulate", *study, "--model", "prior_model", "--data", "cg.npz", "--dt", "0.05"]
    whole = run([*args, "--out-dir", "sim_whole"], t, OPTIMISED)
    assert whole.returncode == 0, whole.stderr
    ckpt = t / "sim.ckpt"
    out = [*args, "--out-dir", "sim_killed", "--checkpoint", str(ckpt)]
    killed_run(out, t, ckpt, random.Random("simulate"), OPTIMISED)
    again = run(out, t, OPTIMISED)
    assert again.returncode == 0 and "resumed" in again.stderr, again.stderr[-2000:]
    a, _ = load_dataset(t / "sim_whole" / "samples.npz")
    b, _ = load_dataset(t / "sim_killed" / "samples.npz")
    np.testing.assert_array_equal(a["positions"], b["positions"])


def test_killed_openmm_sampling_resumes_to_the_uninterrupted_run(prepared):
    from cgflow.reference.openmm_sampler import partial_path

    t, study, _ = prepared
    study = [*study[:3], "alanine_dipeptide"]
    args = ["sample", *study, "--temperature", "300"]
    whole = run([*args, "--out", "ala_whole/aa.npz"], t)
    assert whole.returncode == 0, whole.stderr
    out = t / "ala_killed" / "aa.npz"
    killed_run([*args, "--out", str(out)], t, partial_path(out), random.Random("sample"))
    again = run([*args, "--out", str(out)], t)
    assert again.returncode == 0 and "resum" in again.stderr, again.stderr[-2000:]
    a, _ = load_dataset(t / "ala_whole" / "aa.npz")
    b, _ = load_dataset(out)
    np.testing.assert_allclose(a["positions"], b["positions"], atol=1e-5)
    np.testing.assert_allclose(a["forces"], b["forces"], rtol=1e-4, atol=1e-2)


def test_killed_energy_matching_resumes_to_the_uninterrupted_model(prepared):
    """EM across two temperatures of the variable-stiffness double well."""
    t, study, run_ = prepared
    study = [*study[:3], "double_well_thermal"]
    data = []
    for kT in ("2", "4"):
        for step in (
            ["sample", *study, "--temperature", kT, "--out", f"th{kT}_aa.npz"],
            ["map", *study, "--mapping", "x1", "--input", f"th{kT}_aa.npz",
             "--out", f"th{kT}_cg.npz"],
        ):  # fmt: skip
            out = run(step, t)
            assert out.returncode == 0, out.stderr
        data.append(f"th{kT}_cg.npz")
    out = run(["fit-prior", *study, "--data", *data, *run_, "--out", "th_prior.json"], t)
    assert out.returncode == 0, out.stderr
    args = ["train", *study, "--method", "em", "--data", *data, "--prior", "th_prior.json", *run_]
    whole = run([*args, "--out-dir", "em_whole"], t)
    assert whole.returncode == 0, whole.stderr
    ckpt = t / "em.ckpt.npz"
    out = [*args, "--out-dir", "em_killed", "--checkpoint", str(ckpt)]
    killed_run(out, t, ckpt, random.Random("train-em"))
    assert not (t / "em_killed" / "model.json").exists()
    again = run(out, t)
    assert again.returncode == 0 and "resumed" in again.stderr, again.stderr[-2000:]
    for a, b in zip(params_of(t / "em_whole"), params_of(t / "em_killed"), strict=True):
        np.testing.assert_array_equal(a, b)
