"""Device records: what a step ran on, and a warning when a Slurm GPU goes unused."""

import io

import pytest

from cgflow.runtime import gpu_allocated, jax_device_info, warn_if_gpu_unused

SLURM_VARS = ("SLURM_JOB_ID", "SLURM_GPUS", "SLURM_JOB_GPUS", "SLURM_STEP_GPUS")


def clear(monkeypatch):
    for name in SLURM_VARS + ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_PARTITION"):
        monkeypatch.delenv(name, raising=False)


def test_no_gpu_outside_slurm(monkeypatch):
    clear(monkeypatch)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")  # a workstation: not a Slurm allocation
    assert not gpu_allocated()
    log = io.StringIO()
    warn_if_gpu_unused("train", "cpu", log)
    assert log.getvalue() == ""


def test_unused_slurm_gpu_is_reported(monkeypatch):
    clear(monkeypatch)
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    assert not gpu_allocated()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")  # what Slurm sets inside a GPU job step
    assert gpu_allocated()
    log = io.StringIO()
    warn_if_gpu_unused("sample", "CPU", log)
    assert "allocated a GPU but runs on CPU" in log.getvalue()
    log = io.StringIO()
    warn_if_gpu_unused("sample", "CUDA", log)
    assert log.getvalue() == ""


def test_jax_device_info_records_backend_and_allocation(monkeypatch):
    clear(monkeypatch)
    monkeypatch.setenv("SLURM_JOB_ID", "7")
    monkeypatch.setenv("SLURM_JOB_PARTITION", "gpu")
    monkeypatch.setenv("SLURM_JOB_GPUS", "0")
    log = io.StringIO()
    info = jax_device_info("simulate", log)
    assert info["backend"] == "cpu" and info["n_devices"] >= 1
    assert info["slurm_job_id"] == "7" and info["slurm_job_gpus"] == "0"
    assert info["slurm_job_partition"] == "gpu"
    assert "simulate: JAX on cpu" in log.getvalue()
    assert "WARNING" in log.getvalue()


def test_compilation_cache_is_on_by_default_and_can_be_turned_off(tmp_path, monkeypatch):
    """A jitted program lands in the cache folder (CGFLOW_JAX_CACHE, default
    .cache/jax under the working folder); 'off' leaves JAX's setting alone."""
    import os
    import subprocess
    import sys

    from cgflow.runtime import enable_compilation_cache

    assert enable_compilation_cache({"CGFLOW_JAX_CACHE": "off"}) is None
    code = (
        "from cgflow.runtime import enable_compilation_cache as e; print(e());"
        "import jax, jax.numpy as jnp;"
        "jax.jit(lambda x: jnp.sin(x) * 2)(jnp.ones(3)).block_until_ready()"
    )
    env = {k: v for k, v in os.environ.items() if k != "CGFLOW_JAX_CACHE"}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                         capture_output=True, text=True, check=True)  # fmt: skip
    assert out.stdout.strip() == ".cache/jax"
    assert any((tmp_path / ".cache" / "jax").iterdir())


def test_bench_compares_two_runs_as_speed_ups(tmp_path, capsys):
    """cgflow bench --compare prints each figure's speed-up (> 1: faster), whichever
    way the figure improves."""
    import json

    from cgflow.cli import main

    def result(scale):
        return {
            "startup": {"light_job_s": 2.0 * scale, "jax_job_imports_s": 6.0 * scale},
            "sampling": {
                "prior": {"steps_per_s_summed": 1000.0 / scale},
                "schnet": {"steps_per_s_summed": 100.0 / scale},
            },  # fmt: skip
            "fm": {"frames_per_s": 500.0 / scale},
            "re": {"wall_per_update_s": 4.0 * scale, "simulating_per_update_s": 3.0 * scale},
            "liquid": {
                "list_ms_per_frame": 30.0 * scale,
                "fm_frames_per_s": 80.0 / scale,
                "sampling_steps_per_s_per_replica": 10.0 / scale,
            },  # fmt: skip
            "device_rate": {"matmul_gflop_per_s": 90.0 / scale},
        }

    (tmp_path / "a.json").write_text(json.dumps(result(1.0)))
    (tmp_path / "b.json").write_text(json.dumps(result(0.5)))
    assert main(["bench", "--compare", str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 11 and all(line.endswith("speed-up x2.00") for line in lines)
    zero = result(0.5)
    zero["re"]["simulating_per_update_s"] = 0.0  # no re-simulation timed: no ratio
    (tmp_path / "c.json").write_text(json.dumps(zero))
    assert main(["bench", "--compare", str(tmp_path / "a.json"), str(tmp_path / "c.json")]) == 0
    assert capsys.readouterr().out.strip().splitlines()[6].endswith("n/a (a zero)")
    old = result(1.0)
    del old["liquid"]  # a file from before the liquid workload: those figures are skipped
    (tmp_path / "d.json").write_text(json.dumps(old))
    assert main(["bench", "--compare", str(tmp_path / "d.json"), str(tmp_path / "b.json")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-2] == "liquid.sampling_steps_per_s_per_replica: not in both files"
    assert lines[0].endswith("speed-up x2.00")


def test_sampler_compiler_options_on_cpu_unless_turned_off_or_set_by_user():
    import jax
    import pytest

    from cgflow.runtime import SAMPLING_COMPILER_OPTIONS, sampling_compiler_options

    if jax.default_backend() != "cpu":
        pytest.skip("the options are for a CPU backend")
    assert sampling_compiler_options({}) == SAMPLING_COMPILER_OPTIONS
    assert sampling_compiler_options({"CGFLOW_XLA_TUNING": "off"}) == {}
    own = {"XLA_FLAGS": "--xla_cpu_experimental_ynn_fusion_type=dot"}
    assert sampling_compiler_options(own) == {}


def test_sampler_compiler_options_change_how_a_force_sized_dot_compiles():
    """With the options, XLA keeps a (1440 x 16) @ (16 x 32) dot (32 replicas x 45
    pairs, SchNet's filter layer) off YNNPACK; without them it hands it over."""
    import jax
    import jax.numpy as jnp
    import pytest

    from cgflow.runtime import sampling_compiler_options

    x, w = jnp.ones((1440, 16)), jnp.ones((16, 32))
    default = jax.jit(lambda a, b: a @ b).lower(x, w).compile().as_text()
    if "ynn" not in default:
        pytest.skip("this jaxlib does not hand the dot to YNNPACK")
    options = sampling_compiler_options({})
    tuned = jax.jit(lambda a, b: a @ b, compiler_options=options).lower(x, w).compile()
    assert "ynn" not in tuned.as_text()


@pytest.mark.slow
def test_every_product_of_a_schnet_force_is_full_float32_unless_the_user_chooses():
    """JAX's default would let a GPU multiply float32 in TF32; the steps ask for full
    float32, and the SchNet energy and force programs carry it to every dot."""
    import jax
    import numpy as np

    from cgflow.models import build_energy, init_params
    from cgflow.runtime import set_matmul_precision

    desc = {"n_beads": 4, "dim": 3, "kT": 2.5, "prior": {"type": "none"}, "species_names": ["C"],
            "species_index": [0] * 4, "network": {"type": "schnet", "cutoff": 0.6}}  # fmt: skip
    energy, params = build_energy(desc), init_params(desc, jax.random.PRNGKey(0))
    R = np.random.default_rng(0).normal(0, 0.2, (4, 3)).astype(np.float32)

    def dots():
        text = jax.jit(jax.value_and_grad(energy, argnums=1)).lower(params, R).as_text()
        return [line for line in text.splitlines() if "dot_general" in line]

    before = jax.config.jax_default_matmul_precision
    try:
        jax.config.update("jax_default_matmul_precision", None)
        assert any("DEFAULT" in d for d in dots())
        assert set_matmul_precision({}) == "highest"
        found = dots()
        assert found and all("precision = [HIGHEST, HIGHEST]" in d for d in found), found
        # the user's JAX_DEFAULT_MATMUL_PRECISION (read by JAX itself) is left alone
        jax.config.update("jax_default_matmul_precision", "tensorfloat32")
        assert set_matmul_precision({"JAX_DEFAULT_MATMUL_PRECISION": "tensorfloat32"}) is None
        assert jax.config.jax_default_matmul_precision == "tensorfloat32"
    finally:
        jax.config.update("jax_default_matmul_precision", before)


def test_bench_times_sampling_at_other_replica_counts(capsys):
    """``--replicas``: the sampler timed at more counts (start frames repeated to fill
    them); a count that is not a positive integer is refused before any work."""
    import jax.numpy as jnp
    import numpy as np
    import pytest

    from cgflow import bench
    from cgflow.cli import main
    from cgflow.models import ModelDescription

    frames = np.random.default_rng(0).normal(0, 0.1, (5, 3, 3)).astype(np.float32)
    row = bench._sampling_rate(
        lambda params, R: 50.0 * jnp.sum(R**2),
        {},
        ModelDescription(kT=2.5, n_beads=3, dim=3),
        frames,
        np.ones(3),
        2.5,
        12,
        20,
    )
    assert row["steps_per_s_per_replica"] > 0
    assert row["steps_per_s_summed"] == pytest.approx(12 * row["steps_per_s_per_replica"])
    assert row["ns_per_day_summed"] == pytest.approx(
        row["steps_per_s_summed"] * bench.DT_PS * 86400 / 1000
    )
    for bad in ("0,32", "32,many", ""):
        with pytest.raises(SystemExit):
            main(["bench", "--replicas", bad])
        assert "is not a list of positive integers" in capsys.readouterr().err


def test_bench_counts_the_force_flops_and_reads_the_cpu_peak():
    """XLA's count for the force of E = sum((R W)^2) is its two dots (2 x beads x 3 x
    64 operations each) plus a few elementwise operations per product entry, per
    replica whatever the batch; the nominal peak is cores x clock x FMA width."""
    import jax.numpy as jnp
    import numpy as np

    from cgflow import bench

    w = jnp.asarray(np.random.default_rng(0).normal(size=(3, 64)), jnp.float32)
    energy = lambda params, R: jnp.sum((R @ params) ** 2)  # noqa: E731
    dots = 2 * (2 * 50 * 3 * 64)
    for n in (4, 8):
        R = np.zeros((n, 50, 3), np.float32)
        flops = bench.force_flops(energy, w, R)
        assert dots <= flops <= dots + 4 * 50 * 64, flops
    info = "flags\t\t: fpu sse2 avx avx2 fma\ncpu MHz\t\t: 3000.0\n"
    peak = bench.nominal_cpu_peak(info, cores=4)
    assert peak["flops_per_cycle_per_core"] == 32
    assert peak["gflop_per_s"] == 4 * 3000e6 * 32 / 1e9
    assert bench.nominal_cpu_peak(info.replace("avx2 ", ""), cores=1)["gflop_per_s"] == 48.0
    assert bench.nominal_cpu_peak("flags\t: sse2\ncpu MHz\t: 3000.0\n", cores=1) is None
    assert bench.nominal_cpu_peak("flags\t: avx512f\n", cores=1) is None  # no clock


def test_cpu_device_count_follows_the_job_threads():
    """CGFLOW_CPU_DEVICES wins, then OMP_NUM_THREADS (what Snakemake sets to a job's
    threads; its first number where nested), then the usable cores; a bad
    CGFLOW_CPU_DEVICES is refused by name."""
    import os

    import pytest

    from cgflow.runtime import cpu_device_count

    assert cpu_device_count({"CGFLOW_CPU_DEVICES": "3", "OMP_NUM_THREADS": "1"}) == 3
    assert cpu_device_count({"OMP_NUM_THREADS": "4,2"}) == 4
    assert cpu_device_count({"OMP_NUM_THREADS": "1"}) == 1
    assert cpu_device_count({}) == len(os.sched_getaffinity(0))
    for bad in ("0", "two", "-1"):
        with pytest.raises(ValueError, match=f"CGFLOW_CPU_DEVICES='{bad}'"):
            cpu_device_count({"CGFLOW_CPU_DEVICES": bad})
