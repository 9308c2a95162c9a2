"""What hardware a step actually ran on, for the run's metadata and its log.

On a cluster the scheduler may hand a job a GPU that the installed builds cannot use
(CPU-only JAX, OpenMM without its CUDA plugin). The job still runs, on the CPU, so the
metadata records the device that was used and the log says when a GPU went unused.
"""

from __future__ import annotations

import os
import sys

# Variables Slurm sets in a job with a GPU allocation, and CUDA's own device mask.
_GPU_ENV = (
    "SLURM_JOB_ID",
    "SLURM_JOB_PARTITION",
    "SLURM_GPUS",
    "SLURM_JOB_GPUS",
    "SLURM_STEP_GPUS",
)


def scheduler_info() -> dict:
    """Slurm job and GPU variables of this process (empty outside a Slurm job)."""
    info = {k.lower(): os.environ[k] for k in _GPU_ENV if k in os.environ}
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        info["cuda_visible_devices"] = os.environ["CUDA_VISIBLE_DEVICES"]
    return info


def gpu_allocated() -> bool:
    """True when Slurm gave this job (or job step) at least one GPU.

    Slurm sets CUDA_VISIBLE_DEVICES for an allocated GPU; inside a job step that
    Snakemake starts with srun, the SLURM_*GPUS variables of the batch job may be gone.
    """
    if "SLURM_JOB_ID" not in os.environ:
        return False
    names = ("SLURM_GPUS", "SLURM_JOB_GPUS", "SLURM_STEP_GPUS", "CUDA_VISIBLE_DEVICES")
    return any(os.environ.get(name) for name in names)


def warn_if_gpu_unused(step: str, backend: str, log=None) -> None:
    """Say on the log when a GPU was allocated but the step runs on ``backend`` (a CPU)."""
    if gpu_allocated() and backend.lower() in ("cpu", "reference"):
        print(
            f"{step}: WARNING: this job was allocated a GPU but runs on {backend}; "
            "install the CUDA builds (pip install -e '.[cuda]', or CGFLOW_CUDA_ENVS=1 "
            "with --sdm conda)",
            file=log or sys.stderr,
            flush=True,
        )


def jax_device_info(step: str, log=None) -> dict:
    """Backend and devices JAX computes on, plus the scheduler's view; logs one line."""
    import jax

    devices = jax.devices()
    info = {
        "backend": jax.default_backend(),
        "device_kind": devices[0].device_kind,
        "n_devices": len(devices),
        "jax_version": jax.__version__,
        **scheduler_info(),
    }
    log = log or sys.stderr
    print(f"{step}: JAX on {info['backend']} ({info['device_kind']})", file=log, flush=True)
    warn_if_gpu_unused(step, info["backend"], log)
    return info


CACHE_ENV = "CGFLOW_JAX_CACHE"
DEFAULT_CACHE = ".cache/jax"


def enable_compilation_cache(environ=None) -> str | None:
    """Turn on JAX's persistent compilation cache, so that a job compiling the same
    program as an earlier one (same shapes, same JAX) loads it instead.

    The folder is ``$CGFLOW_JAX_CACHE``, or ``.cache/jax`` under the working folder
    (the project, when Snakemake runs the step); ``CGFLOW_JAX_CACHE=off`` turns it
    off. Every compiled program is cached, however quick its compilation was.

    Returns:
      the cache folder, or None when off.
    """
    environ = os.environ if environ is None else environ
    folder = environ.get(CACHE_ENV, DEFAULT_CACHE)
    if folder.strip().lower() in ("", "off", "0", "none"):
        return None
    import jax

    jax.config.update("jax_compilation_cache_dir", os.path.abspath(folder))
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return folder


PRECISION_ENV = "JAX_DEFAULT_MATMUL_PRECISION"


def set_matmul_precision(environ=None) -> str | None:
    """Multiply float32 matrices in full float32 on every device.

    JAX's default lets a GPU with tensor cores (A100, H100) multiply float32 matrices
    in TF32, a 10-bit mantissa. On an H100 (JAX 0.11.2) five SchNet force tests then
    failed at rtol 1e-4 (neighbour lists vs all pairs, chunked vs one vmap, ...): forces
    off by up to 1.7e-4 absolute, 0.15 relative on small components. A CPU multiplies
    in float32 either way.

    Returns:
      the precision set, or None when ``JAX_DEFAULT_MATMUL_PRECISION`` is set (the
      user's choice, which JAX has read already, wins).
    """
    environ = os.environ if environ is None else environ
    if environ.get(PRECISION_ENV):
        return None
    import jax

    jax.config.update("jax_default_matmul_precision", "highest")
    return "highest"


CPU_DEVICES_ENV = "CGFLOW_CPU_DEVICES"


def cpu_device_count(environ=None) -> int:
    """How many CPU devices JAX is given. The CG sampler splits its replicas over
    them, and each runs its share on its own thread (XLA runs a small model's step on
    one core). ``$CGFLOW_CPU_DEVICES``, else ``$OMP_NUM_THREADS`` (Snakemake sets it
    to a job's ``threads``, so a job of one thread keeps one device; its first number
    where it lists several), else the cores this process may use.

    Raises:
      ValueError: ``CGFLOW_CPU_DEVICES`` is not a positive integer.
    """
    environ = os.environ if environ is None else environ
    given = environ.get(CPU_DEVICES_ENV, "").strip()
    if given:
        if not given.isdigit() or int(given) < 1:
            raise ValueError(f"{CPU_DEVICES_ENV}={given!r} is not a positive integer")
        return int(given)
    omp = environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if omp.isdigit() and int(omp) >= 1:
        return int(omp)
    return usable_cores()


def usable_cores() -> int:
    """The cores this process may run on (its affinity, which a Slurm allocation or
    ``taskset`` narrows), or all the machine's where that cannot be read."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def set_cpu_devices(environ=None) -> int | None:
    """Give JAX ``cpu_device_count`` CPU devices.

    Returns:
      the count set, or None where it is left as it is: ``XLA_FLAGS`` sets
      ``--xla_force_host_platform_device_count`` (the user's choice wins), or JAX is
      running already in this process (its devices cannot change then).
    """
    environ = os.environ if environ is None else environ
    n = cpu_device_count(environ)
    if "xla_force_host_platform_device_count" in environ.get("XLA_FLAGS", ""):
        return None
    import jax

    try:
        jax.config.update("jax_num_cpu_devices", n)
    except RuntimeError:  # backends initialised already
        return None
    return n


def configure_jax() -> None:
    """What every JAX step sets before it compiles: the persistent compilation cache,
    full float32 matrix products and the CPU devices."""
    enable_compilation_cache()
    set_matmul_precision()
    set_cpu_devices()


def switched_off(name: str, environ=None) -> bool:
    """Whether the environment variable ``name`` turns a default-on option off
    (``off``, ``0``, ``no`` or ``false``, in any case)."""
    environ = os.environ if environ is None else environ
    return environ.get(name, "on").strip().lower() in ("off", "0", "no", "false")


TUNING_ENV = "CGFLOW_XLA_TUNING"
SAMPLING_COMPILER_OPTIONS = {"xla_cpu_experimental_ynn_fusion_type": ""}
"""XLA options for the CG sampler's compiled programs on a CPU. XLA hands dots to
YNNPACK by default; for the small dots of a force call (a few thousand rows by 16 or
32) its own dot emitter is faster. Training, whose parameter gradients are larger
dots, was slower with it as a process-wide flag, so only the sampler's programs get
it. ``cgflow bench --compare`` of runs with and without ``CGFLOW_XLA_TUNING=off``
measures the difference on a machine."""


def sampling_compiler_options(environ=None) -> dict:
    """``compiler_options`` for ``jax.jit`` of the CG sampler: ``SAMPLING_COMPILER_OPTIONS``
    when JAX computes on a CPU, else none.

    None either with ``CGFLOW_XLA_TUNING=off``, when ``XLA_FLAGS`` already sets one
    of the options (the user's choice wins), or with a jaxlib older than 0.10 (whose
    XLA may not know them).
    """
    environ = os.environ if environ is None else environ
    if switched_off(TUNING_ENV, environ):
        return {}
    if any(name in environ.get("XLA_FLAGS", "") for name in SAMPLING_COMPILER_OPTIONS):
        return {}
    from importlib.metadata import PackageNotFoundError, version

    try:
        major_minor = tuple(int(x) for x in version("jaxlib").split(".")[:2])
    except (PackageNotFoundError, ValueError):
        return {}
    import jax

    if major_minor < (0, 10) or jax.default_backend() != "cpu":
        return {}
    return dict(SAMPLING_COMPILER_OPTIONS)


def _meminfo(key: str) -> int | None:
    """Bytes of a /proc/meminfo entry (Linux), or None."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith(f"{key}:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def total_memory() -> int | None:
    """Bytes of memory this machine has (Linux ``MemTotal``), or None when unknown."""
    return _meminfo("MemTotal")


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo; else what the platform says)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor()


def available_memory() -> int | None:
    """Bytes of memory this machine can give a new allocation now (Linux
    ``MemAvailable``; else free pages), or None when unknown."""
    found = _meminfo("MemAvailable")
    if found is not None:
        return found
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(need_bytes: float, what: str, detail: str = "") -> None:
    """Refuse, before allocating, a step whose estimated memory exceeds what the
    machine has available.

    Raises:
      ValueError: (the settings ask too much) with the estimate, what it counts
        (``detail``) and the memory available.
    """
    have = available_memory()
    if have is None or need_bytes <= have:
        return
    why = f" ({detail})" if detail else ""
    raise ValueError(
        f"{what} would need about {need_bytes / 1e9:.2f} GB{why}, and this machine has "
        f"{have / 1e9:.2f} GB available; make the run smaller"
    )
