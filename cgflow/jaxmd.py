"""JAX MD's ``space``, ``partition`` and ``simulate``, without importing all of JAX MD.

``import jax_md`` runs ``jax_md/__init__``, which imports every submodule (rigid
bodies, e3nn-based networks, scipy.signal), several seconds paid by every job
(``cgflow bench``'s start-up figures show a step's import time). cgflow uses three
submodules, which need none of that. When JAX MD is not imported yet, this module puts a
lazy package object in its place: the submodules load on first use, exactly as
``import jax_md.space`` would load them, and any other submodule still loads on
attribute access (``jax_md.energy``). When JAX MD is already imported, its own
modules are used.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types


def _lazy_package(name: str) -> None:
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None:
        raise ImportError(f"{name} is not installed")
    package = types.ModuleType(name, "JAX MD (submodules load on first use)")
    package.__spec__ = spec
    package.__path__ = list(spec.submodule_search_locations)
    package.__file__ = spec.origin
    package.__getattr__ = lambda attr: importlib.import_module(f"{name}.{attr}")
    sys.modules[name] = package


_lazy_package("jax_md")

from jax_md import partition, simulate, space  # noqa: E402

__all__ = ["partition", "simulate", "space"]
