import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Keep JAX on the CPU and quiet in tests, whatever the machine has.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# The tests' JAX programs are small and run briefly, so compiling them costs more than
# running them: XLA's optimisation passes are off (in-process and in the studies'
# subprocesses; commit 51029d4 measured the gain). Results stay within the tests'
# tolerances; the shipped steps compile fully optimised.
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "true")
# For the same reason XLA:CPU compiles the tests' fusions with its older emitters, which
# compile each small program (and each op JAX runs eagerly, as JAX MD's neighbour-list
# allocation does) faster; the shipped steps keep XLA's default.
_FLAG = "--xla_cpu_use_fusion_emitters=false"
if "xla_cpu_use_fusion_emitters" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_FLAG}".strip()
# Full float32 matrix products, as the steps ask for (cgflow.runtime.set_matmul_precision),
# so that the tests hold on a GPU too (JAX_PLATFORMS=cuda).
os.environ.setdefault("JAX_DEFAULT_MATMUL_PRECISION", "highest")
# One CPU device per step, as a Snakemake job of one thread has: the tests already run
# on as many workers as cores. tests/test_simulate.py asks for two where it checks the
# replicas' split (cgflow.runtime.cpu_device_count).
os.environ.setdefault("CGFLOW_CPU_DEVICES", "1")
# One JAX compilation cache for the whole session (steps run in-process and in the
# studies' subprocesses), outside the checkout.
_CACHE = None
if "CGFLOW_JAX_CACHE" not in os.environ:
    _CACHE = os.environ["CGFLOW_JAX_CACHE"] = tempfile.mkdtemp(prefix="cgflow-jax-cache-")


# The files that run a whole Snakemake study (the longest files) go first, so that
# the quicker files fill the other worker around them.
STUDY_FILES = ("test_slurm.py", "test_workflow.py")


def pytest_collection_modifyitems(config, items):
    """Put the whole-study files first (with ``--no-loadscope-reorder``, xdist hands
    out files in this order)."""
    items.sort(key=lambda item: item.path.name not in STUDY_FILES)


def pytest_sessionfinish(session, exitstatus):
    """Remove the session's compilation cache (one made here, not one given)."""
    if _CACHE is not None:
        shutil.rmtree(_CACHE, ignore_errors=True)


REPO = Path(__file__).resolve().parents[1]


def smoke_config() -> dict:
    """The smoke study's config with its structure files' paths made absolute, for
    steps run from another folder (a relative path is read from where a step runs)."""
    import yaml

    config = yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())
    for entry in config["systems"].values():
        pdb = (entry.get("potential") or {}).get("pdb")
        if pdb and not Path(pdb).is_absolute():
            entry["potential"]["pdb"] = str(REPO / pdb)
    return config


@pytest.fixture
def repo():
    return REPO


@pytest.fixture
def default_config():
    from cgflow.config import load_config

    return load_config(REPO / "config" / "config.yaml")
