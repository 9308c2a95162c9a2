"""Property-based tests of the config check (Hypothesis): a config broken anywhere,
in any of the ways a person breaks one, ends in a ConfigError naming the field, never
in a traceback, and a config the check passes builds every setting the DAG's steps
build from it (so it cannot fail later in the DAG for a reason the check could see).
"""

import copy
import math
import os
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cgflow.config import ConfigError, validate_config
from cgflow.methods import REGISTRY
from cgflow.simulate.settings import integrator_settings, run_settings
from cgflow.study import StudySettings
from cgflow.systems import evaluation_settings, get_map, reference_settings

N_CASES = 500


REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def base():
    return yaml.safe_load((REPO / "config" / "smoke.yaml").read_text())


def paths(tree, prefix=()):
    """Every key path of a config tree (dict keys and list indices), parents first."""
    yield prefix
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from paths(v, (*prefix, k))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from paths(v, (*prefix, i))


def get(tree, path):
    for part in path:
        tree = tree[part]
    return tree


WRONG_VALUES = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, None, True, "", "abc", [], {}, [1, "x"]]),
    st.sampled_from([0, -1, -0.5, 10**12, 1e300, -(10**9)]),
    st.text(max_size=5),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.integers(min_value=-3, max_value=3), max_size=3),
)
MUTATIONS = ("replace", "delete", "extra_key", "duplicate")


@st.composite
def broken_configs(draw, base):
    config = copy.deepcopy(base)
    candidates = [p for p in paths(config) if p]
    path = draw(st.sampled_from(candidates))
    kind = draw(st.sampled_from(MUTATIONS))
    parent, key = get(config, path[:-1]), path[-1]
    if kind == "replace":
        parent[key] = draw(WRONG_VALUES)
    elif kind == "delete":
        if isinstance(parent, list):
            parent.pop(key)
        else:
            del parent[key]
    elif kind == "extra_key":
        target = get(config, path)
        if not isinstance(target, dict):
            target, path = parent, path[:-1]
            if not isinstance(target, dict):
                return config, path, kind
        name = draw(st.sampled_from(["extra", "dtt", "n_trian", "Seeds", "x"]))
        target[name] = draw(WRONG_VALUES)
        path = (*path, name)
    else:  # duplicate: a list element written twice
        if isinstance(parent, list) and parent:
            parent.append(copy.deepcopy(parent[key]))
            path = path[:-1]
    return config, path, kind


def build_everything(config):
    """What the DAG's steps build from a checked config (see workflow/rules)."""
    for name, entry in config["systems"].items():
        study = StudySettings.from_config(config, name)
        system = study.build_system()
        reference_settings(system, entry)
        evaluation_settings(system, entry)
        for mapping in entry["mappings"]:
            get_map(system, mapping)
        for method, values in study.methods.items():
            REGISTRY[method].settings(values)
        if "n_train" in entry:
            run_settings(entry["simulation"])
            for dt in entry["simulation"]["dt"]:
                integrator_settings(entry["simulation"], dt)


def names_the_field(message: str, path) -> bool:
    """The error names the mutated key or, for a list element or a removed key,
    a key above it."""
    keys = [str(p) for p in path if not isinstance(p, int)]
    return any(k in message for k in keys[-2:]) if keys else "config" in message


@settings(
    max_examples=N_CASES,
    deadline=None,
    database=None,
    derandomize=bool(os.environ.get("CI")),  # CI: the same cases every run
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_a_broken_config_is_refused_naming_the_field_or_builds_whole(base, data):
    config, path, kind = data.draw(broken_configs(base))
    try:
        checked = validate_config(config)
    except ConfigError as err:
        assert names_the_field(str(err), path), (kind, path, str(err))
        return
    build_everything(checked)  # passed the check: every step's settings must build


@pytest.mark.slow
def test_the_generator_breaks_configs(base):
    """The property above is not vacuous: most generated configs are refused."""
    refused = 0
    examples = []

    @settings(max_examples=200, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
    @given(data=st.data())
    def count(data):
        nonlocal refused
        config, path, kind = data.draw(broken_configs(base))
        examples.append(kind)
        try:
            validate_config(config)
        except ConfigError:
            refused += 1

    count()
    assert refused > 0.5 * len(examples) and set(examples) == set(MUTATIONS)


# The drill's check-config cases (issue 42): configs the schema passes but the study
# would fail on later (too few frames for the prior) or run wrongly (two values that
# name one job's path; one claim stated twice). Each must be refused, naming the field.
LATER = ("n_train_too_small", "temperatures_collide", "dts_collide", "claim_twice",
         "claim_renamed")  # fmt: skip


@st.composite
def configs_that_fail_later(draw, base):
    config = copy.deepcopy(base)
    kind = draw(st.sampled_from(LATER))
    trained = [n for n, e in config["systems"].items() if "n_train" in e]
    name = draw(st.sampled_from(trained))
    entry = config["systems"][name]
    if kind == "n_train_too_small":
        i = draw(st.integers(0, len(entry["n_train"]) - 1))
        entry["n_train"][i] = draw(st.integers(1, 2))  # 0.1 validation leaves < 2 frames
        return config, ("systems", name, "n_train"), kind
    if kind in ("temperatures_collide", "dts_collide"):
        values = entry["temperatures"] if kind == "temperatures_collide" else (
            entry["simulation"]["dt"])  # fmt: skip
        near = draw(st.sampled_from(values)) * (1 + draw(st.sampled_from([1e-10, 1e-12])))
        values.insert(draw(st.integers(0, len(values))), near)
        field = "temperatures" if kind == "temperatures_collide" else "dt"
        return config, ("systems", name, field), kind
    i = draw(st.integers(0, len(config["claims"]) - 1))
    twice = copy.deepcopy(config["claims"][i])
    if kind == "claim_renamed":
        twice["name"] = draw(st.text(alphabet="abcdefgh ", min_size=3, max_size=12)) + " (again)"
    config["claims"].append(twice)
    return config, ("claims",), kind


@pytest.mark.slow
@settings(
    max_examples=100,
    deadline=None,
    database=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_a_config_that_would_fail_or_collide_later_is_refused(base, data):
    config, path, kind = data.draw(configs_that_fail_later(base))
    with pytest.raises(ConfigError) as err:
        validate_config(config)
    assert names_the_field(str(err.value), path), (kind, str(err.value))
