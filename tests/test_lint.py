"""Static checks that run with the tests: layering without cycles (import-linter),
lint with a complexity bound (ruff C901 at 12) and at most 8 parameters per function
(ruff PLR0913), functions of at most 80 lines, formatting of Python and Snakemake."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def run(repo, *cmd):
    exe = BIN / cmd[0] if (BIN / cmd[0]).exists() else shutil.which(cmd[0])
    assert exe, f"{cmd[0]} is not installed (pip install -e '.[test]')"
    return subprocess.run([str(exe), *cmd[1:]], cwd=repo, capture_output=True, text=True)


@pytest.mark.parametrize(
    "cmd",
    [
        ("lint-imports",),
        ("ruff", "check", "cgflow", "tests", "workflow"),
        ("ruff", "format", "--check", "cgflow", "tests"),
        ("snakefmt", "--check", "."),
    ],
    ids=["layers", "ruff", "ruff-format", "snakefmt"],
)
def test_static_check(repo, cmd):
    proc = run(repo, *cmd)
    assert proc.returncode == 0, f"{' '.join(cmd)}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


def test_layer_contract_fails_on_a_cycle(repo, tmp_path):
    """The contract is real: a module of a low layer importing a high one breaks it."""
    copy = tmp_path / "repo"
    shutil.copytree(repo / "cgflow", copy / "cgflow")
    shutil.copy(repo / "pyproject.toml", copy / "pyproject.toml")
    io = copy / "cgflow" / "io.py"
    io.write_text(io.read_text() + "\nfrom cgflow import study  # noqa: E402,F401\n")
    proc = subprocess.run(
        [str(BIN / "lint-imports")],
        cwd=copy,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(copy), "PATH": str(BIN)},
    )
    assert proc.returncode != 0 and "BROKEN" in proc.stdout


RECORD_LOOKUPS = (
    'desc["',
    "desc.get(",
    "desc['",
    'status["',
    "status.get(",
    "status['",
    'claim["',
    "claim['",
)
"""How code read the model description, a run's status and a claim before they were
typed records."""


def test_the_model_description_status_and_claims_are_read_as_records(repo):
    """cgflow/ reads a model's description, a run's status and a claim through their
    records' fields (ModelDescription, SimulationStatus, GeneratorStatus, Claim): no
    key spelled as a string at the use (a typo there is a KeyError at run time)."""
    found = [
        f"{path.relative_to(repo)}:{n}: {line.strip()}"
        for path in sorted((repo / "cgflow").rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if any(k in line for k in RECORD_LOOKUPS)
    ]
    assert not found, "\n".join(found)


MAX_FUNCTION_LINES = 80


def long_functions(root: Path) -> list[str]:
    """Functions under ``root`` longer than MAX_FUNCTION_LINES (docstring included)."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    found.append(f"{path}:{node.lineno}: {node.name} has {lines} lines")
    return found


def test_no_function_in_the_package_is_longer_than_80_lines(repo, tmp_path):
    """Every function of cgflow/ fits a screen; the check finds one that does not."""
    assert long_functions(repo / "cgflow") == []
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    (tmp_path / "long.py").write_text(f"def f():\n{body}\n")
    assert len(long_functions(tmp_path)) == 1
