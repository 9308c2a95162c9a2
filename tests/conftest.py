import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Keep JAX on the CPU and quiet in tests, whatever the machine has.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# One JAX compilation cache for the whole session (steps run in-process and in the
# studies' subprocesses), outside the checkout.
_CACHE = None
if "CGFLOW_JAX_CACHE" not in os.environ:
    _CACHE = os.environ["CGFLOW_JAX_CACHE"] = tempfile.mkdtemp(prefix="cgflow-jax-cache-")


def pytest_sessionfinish(session, exitstatus):
    """Remove the session's compilation cache (one made here, not one given)."""
    if _CACHE is not None:
        shutil.rmtree(_CACHE, ignore_errors=True)


REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def repo():
    return REPO


@pytest.fixture
def default_config():
    from cgflow.config import load_config

    return load_config(REPO / "config" / "config.yaml")
