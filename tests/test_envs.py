"""Conda environments (envs/) agree with pyproject.toml and with the rules that use them,
and each rule group runs without the other side's packages."""

import os
import re
import subprocess
import sys
import tomllib

import pytest
import yaml
from conftest import smoke_config
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

# Conda-forge names that differ from the PyPI names in pyproject.toml.
CONDA_TO_PYPI = {"pytables": "tables"}
# What each side imports (tests below check the split by running the CLI without the other).
NEEDS = {
    "openmm": {"openmm", "mdtraj", "tables", "numpy", "jsonschema", "pyyaml"},
    "jax": {"jax", "flax", "optax", "jax-md", "mdtraj", "numpy", "pandas", "matplotlib", "pymbar"},
}


def pyproject_deps(repo):
    meta = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in meta["dependencies"]]
    return {canonicalize_name(r.name): r for r in reqs}


def env_specs(path):
    """{package: (version spec text, extras)} from a conda environment file, conda and pip."""
    env = yaml.safe_load(path.read_text())
    specs = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for line in dep["pip"]:
                req = Requirement(line)
                specs[canonicalize_name(req.name)] = (str(req.specifier), req.extras)
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*(.*)", dep)
        name, spec = m.group(1), m.group(2).strip()
        if spec and spec[0].isdigit():  # conda's "pkg=1.2" means 1.2.*
            spec = f"=={spec}" if spec.count(".") >= 2 else f"=={spec}.*"
        elif spec.startswith("=") and not spec.startswith("=="):
            spec = "=" + spec
        specs[canonicalize_name(CONDA_TO_PYPI.get(name, name))] = (spec, set())
    return specs


def env_files(repo):
    return sorted((repo / "envs").glob("*.yaml"))


def test_env_pins_satisfy_pyproject(repo):
    deps = pyproject_deps(repo)
    for path in env_files(repo):
        for name, (spec, _) in env_specs(path).items():
            if name not in deps:
                continue
            want = deps[name].specifier
            exact = re.fullmatch(r"==\s*([0-9][0-9a-zA-Z.]*)", spec)
            if exact:
                assert want.contains(exact.group(1)), f"{path.name}: {name}{spec} outside {want}"
            else:
                assert spec == str(want), f"{path.name}: {name} '{spec}' != pyproject '{want}'"


def test_envs_pin_the_same_versions(repo):
    seen = {}
    for path in env_files(repo):
        for name, (spec, _) in env_specs(path).items():
            if name in seen:
                assert spec == seen[name][0], f"{name}: {path.name} {spec} vs {seen[name][1]}"
            else:
                seen[name] = (spec, path.name)


def test_every_runtime_dependency_is_in_an_env(repo):
    deps = set(pyproject_deps(repo)) - {"snakemake"}  # Snakemake runs outside the rule envs
    covered = set()
    for path in env_files(repo):
        covered |= set(env_specs(path))
    assert deps <= covered, f"in pyproject but in no env: {sorted(deps - covered)}"


@pytest.mark.parametrize("side", ["openmm", "jax"])
def test_env_groups_hold_what_their_rules_import(repo, side):
    for variant in ("", "-cuda"):
        path = repo / "envs" / f"{side}{variant}.yaml"
        specs = env_specs(path)
        missing = NEEDS[side] - set(specs)
        assert not missing, f"{path.name} lacks {sorted(missing)}"
        assert (repo / "envs" / f"{side}{variant}.post-deploy.sh").exists()
    cuda = env_specs(repo / "envs" / f"{side}-cuda.yaml")
    if side == "jax":
        assert any("cuda" in e for e in cuda["jax"][1]), "jax-cuda.yaml must install jax[cuda*]"
    else:
        assert "cuda-version" in cuda


def test_rules_name_existing_envs(repo):
    """Every rule that runs a command has a conda directive, and it resolves to an env
    file in both variants. A ``run:`` rule (claims_config) runs inside Snakemake's own
    process, where no conda env applies (Snakemake refuses one there); it must be a
    local rule, so that a cluster never gets it as a job."""
    rules = 0
    local = re.search(r"localrules:\n((?:    \w+,\n)+)", (repo / "Snakefile").read_text())
    local = set(re.findall(r"(\w+),", local.group(1)))
    for smk in (repo / "workflow" / "rules").glob("*.smk"):
        text = smk.read_text()
        for rule in re.split(r"\n(?=rule )", text):
            if not rule.startswith("rule "):
                continue
            rules += 1
            if re.search(r"\n    run:\n", rule):
                name = re.match(r"rule (\w+):", rule).group(1)
                assert name in local, f"{smk.name}: run: rule {name} is not a local rule"
                continue
            m = re.search(r"conda:\s*\n\s*conda_env\(\"(\w+)\"(, gpu=True)?\)", rule)
            assert m, f"{smk.name}: {rule.splitlines()[0]} has no conda_env(...) directive"
            for variant in ("", "-cuda") if m.group(2) else ("",):
                assert (repo / "envs" / f"{m.group(1)}{variant}.yaml").exists()
    assert rules >= 8


def test_cuda_extra_brings_gpu_builds(repo):
    extras = tomllib.loads((repo / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    cuda = {canonicalize_name(Requirement(r).name): Requirement(r) for r in extras["cuda"]}
    assert any(e.startswith("cuda") for e in cuda["jax"].extras)
    assert any(e.startswith("cuda") for e in cuda["openmm"].extras)


BLOCK = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked}:
            raise ImportError(f"{{name}} is not installed in this environment (blocked)")
sys.meta_path.insert(0, Block())
from cgflow.cli import main
sys.exit(main(sys.argv[1:]))
"""


def cli_without(blocked, args, cwd):
    code = BLOCK.format(blocked=set(blocked))
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True
    )


@pytest.mark.slow
def test_each_side_runs_without_the_other(repo, tmp_path):
    """The OpenMM-side steps run with no JAX installed, the JAX-side steps with no OpenMM."""
    cfg = tmp_path / "smoke.yaml"
    cfg.write_text(yaml.safe_dump(smoke_config()))
    study = ["--config", str(cfg), "--system", "double_well"]
    no_jax = {"jax", "jaxlib", "flax", "optax", "jax_md"}
    no_openmm = {"openmm"}
    steps = [
        (no_jax, ["sample", *study, "--temperature", "3", "--out", "aa.npz"]),
        (no_jax, ["map", *study, "--mapping", "x1", "--input", "aa.npz", "--out", "cg.npz"]),
    ]
    steps += [
        (no_openmm, ["fit-prior", *study, "--data", "cg.npz", "--n-train", "200", "--seed", "0"]
         + ["--out", "prior.json"]),
        (no_openmm, ["train", *study, "--method", "fm", "--data", "cg.npz", "--prior",
                     "prior.json", "--n-train", "200", "--seed", "0", "--out-dir", "model"]),
    ]  # fmt: skip
    for blocked, args in steps:
        proc = cli_without(blocked, args, tmp_path)
        assert proc.returncode == 0, f"cgflow {args[0]} without {blocked}:\n{proc.stderr[-2000:]}"
    # and the block is real: a JAX step fails without JAX
    proc = cli_without(no_jax, steps[3][1], tmp_path)
    assert proc.returncode != 0 and "blocked" in proc.stderr
