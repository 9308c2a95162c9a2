"""The aggregate keeps going past a run whose scores cannot be read: it leaves the
run out, lists it in failed_runs.csv and the Markdown, and leaves the claims it may
bear on undecided."""

import numpy as np
import pandas as pd
import pytest

from cgflow.analysis.aggregate import aggregate_step
from cgflow.analysis.names import RUN_DT, run_of_scores
from cgflow.analysis.records import MetricsRecord, RunId
from cgflow.analysis.stats import N_BOOT
from cgflow.io import save_dataset, write_json

ERRORS = {"fm": 0.50, "re": 0.20}  # RE clearly better on both systems
CLAIMS = [
    {"name": f"RE beats FM ({s})", "system": s, "method": "re", "baseline": "fm"}
    for s in ("dw", "dw2")
]


def write_run(root, system: str, method: str, seed: int, value: float) -> str:
    rng = np.random.default_rng(seed)
    run = dict(system=system, mapping="x1", temperature=3.0, method=method, n_train=100,
               seed=seed, dt=0.01)  # fmt: skip
    folder = root / RUN_DT.format(**{**run, "temperature": "3", "dt": "0.01"})
    folder.mkdir(parents=True)
    record = MetricsRecord(
        run=RunId(**run, run_dir=str(folder)),
        metrics={"pmf_wrmse_kT": value},
        primary_metric="pmf_wrmse_kT",
        figure_kind="profile_1d",
        ci95={"pmf_wrmse_kT": (value - 0.02, value + 0.02)},
    )
    write_json(folder / "metrics.json", record.to_json())
    save_dataset(folder / "curves.npz", {"empty": np.zeros(0)}, {})
    draws = {"pmf_wrmse_kT": value + 0.01 * rng.standard_normal(N_BOOT)}
    save_dataset(folder / "bootstrap.npz", draws, {})
    return str(folder / "metrics.json")


@pytest.fixture
def runs(tmp_path):
    files = [
        write_run(tmp_path / "results", system, method, seed, err + 0.01 * seed)
        for system in ("dw", "dw2")
        for method, err in ERRORS.items()
        for seed in range(4)  # one lost leaves claims_min_seeds
    ]
    return tmp_path, files


def aggregate(tmp_path, files):
    out = tmp_path / "out"
    df, failed = aggregate_step(files, out / "summary.csv", out / "figures", claims=CLAIMS)
    claims = pd.read_csv(out / "claims.csv").set_index("system")
    return df, failed, claims, out


def test_a_damaged_run_is_left_out_and_its_claims_undecided(runs):
    tmp_path, files = runs
    _, failed, claims, _ = aggregate(tmp_path, files)
    assert failed == [] and list(claims.verdict) == ["holds", "holds"]
    # one RE seed of dw: its metrics.json cut short
    broken = next(f for f in files if "/dw/x1/T3/re/n100_s1/" in f)
    text = open(broken).read()
    open(broken, "w").write(text[: len(text) // 2])
    df, failed, claims, out = aggregate(tmp_path, files)
    assert [f.path for f in failed] == [broken] and broken in failed[0].reason
    assert claims.loc["dw", "verdict"] == "undecided (runs failed)"
    assert claims.loc["dw2", "verdict"] == "holds"  # another system's claim reads no such run
    assert len(df) == len(files) - 1 and not (df.run_dir + "/metrics.json").eq(broken).any()
    lost = pd.read_csv(out / "failed_runs.csv")
    assert lost.to_dict("records") == [{
        "path": broken, "system": "dw", "mapping": "x1", "temperature": 3.0, "method": "re",
        "n_train": 100, "seed": 1, "dt": 0.01, "reason": failed[0].reason,
    }]  # fmt: skip
    for page in ("claims.md", "benchmark.md"):
        text = (out / page).read_text()
        assert "## Failed runs" in text and broken in text, page


def test_damaged_draws_fail_the_run_and_none_readable_fails_the_aggregate(runs):
    tmp_path, files = runs
    draws = files[0].replace("metrics.json", "bootstrap.npz")
    open(draws, "wb").write(b"not a zip")
    _, failed, claims, _ = aggregate(tmp_path, files)
    assert [f.path for f in failed] == [files[0]] and draws in failed[0].reason
    assert claims.loc["dw", "verdict"] == "undecided (runs failed)"
    for f in files:
        open(f, "w").write("")
    with pytest.raises(ValueError, match="no run's scores could be read"):
        aggregate(tmp_path, files)


def test_a_failed_reference_or_a_path_outside_the_layout_bears_on_every_claim_it_may():
    ref = run_of_scores("results/dw/x1/T3/reference/metrics.json")
    assert ref == {"system": "dw", "mapping": "x1", "temperature": 3.0, "method": "reference"}
    assert run_of_scores("elsewhere/metrics.json") == {}
    assert run_of_scores("results/dw/x1/Tx/fm/n1_s0/dt0.1/metrics.json") == {}
