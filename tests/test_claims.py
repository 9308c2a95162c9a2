"""Claims: paired effects, their CIs and verdicts, from synthetic runs."""

import re

import numpy as np
import pandas as pd
import pytest

from cgflow.analysis.claims import claimed_cells, claims_markdown, claims_table, run_key
from cgflow.analysis.stats import N_BOOT


def study(errors: dict, noise: float = 0.02, seeds=(0, 1, 2)):
    """Rows and bootstrap draws of synthetic runs: errors[(method, n_train, dt)] (or
    errors[(method, n_train, dt, temperature)]) is the mean error; each seed adds a
    small offset, each draw noise around the run's value."""
    rng = np.random.default_rng(0)
    rows, draws = [], {}
    for cell, err in errors.items():
        method, n, dt, temperature = (*cell, 3.0)[:4]
        for seed in seeds:
            value = err + 0.01 * (seed - 1)
            run = {"system": "dw", "mapping": "x1", "temperature": temperature,
                   "method": method, "n_train": n, "dt": dt, "seed": seed,
                   "run_dir": "r"}  # fmt: skip
            rows.append({**run, "metric": "pmf_wrmse_kT", "value": value})
            draws[run_key(run)] = {"pmf_wrmse_kT": value + noise * rng.standard_normal(N_BOOT)}
    return pd.DataFrame(rows), {"dw": "pmf_wrmse_kT"}, draws


def claim(**kw):
    base = {"name": "c", "system": "dw", "method": "re", "baseline": "fm", "kind": "better",
            "n_train": "max", "dt": "min", "along": "dt", "margin": 0.0}  # fmt: skip
    return {**base, **kw}


ERRORS = {
    ("fm", 100, 0.01): 0.50, ("fm", 1000, 0.01): 0.05,
    ("fm", 100, 0.1): 0.80, ("fm", 1000, 0.1): 0.40,
    ("re", 100, 0.01): 0.30, ("re", 1000, 0.01): 0.12,
    ("re", 100, 0.1): 0.35, ("re", 1000, 0.1): 0.13,
}  # fmt: skip


def test_verdicts_follow_the_ci():
    df, primary, draws = study(ERRORS)
    table = claims_table(
        [
            claim(name="better with little data", n_train="min"),  # 0.30 - 0.50
            claim(name="better with much data"),  # 0.12 - 0.05: fm better
            claim(name="tolerates dt", kind="degrades_less", n_train="max"),
        ],
        df, primary, draws,
    ).set_index("claim")  # fmt: skip
    little = table.loc["better with little data"]
    assert little.effect == pytest.approx(-0.20) and little.verdict == "holds"
    assert little.ci_low < -0.2 < little.ci_high and little.ci_high < 0 and little.n_seeds == 3
    much = table.loc["better with much data"]
    assert much.effect == pytest.approx(0.07) and much.verdict == "does not hold"
    # (0.13 - 0.12) - (0.40 - 0.05) = -0.34
    tol = table.loc["tolerates dt"]
    assert tol.effect == pytest.approx(-0.34) and tol.verdict == "holds"
    assert "dt 0.1" in tol.cells and "dt 0.01" in tol.cells
    assert tol.far_effect == pytest.approx(0.13 - 0.40) and tol.far_ci_high < 0
    text = claims_markdown(table.reset_index())
    assert "| better with little data |" in text and "**holds**" in text


def test_degrading_less_but_no_better_at_the_worse_end_does_not_hold():
    # RE grows less along dt (0.05 vs 0.35) but is worse than FM at every dt
    errors = {
        ("fm", 1000, 0.01): 0.05, ("fm", 1000, 0.1): 0.40,
        ("re", 1000, 0.01): 0.50, ("re", 1000, 0.1): 0.55,
    }  # fmt: skip
    df, primary, draws = study(errors)
    row = claims_table([claim(kind="degrades_less")], df, primary, draws).iloc[0]
    assert row.effect == pytest.approx(-0.30) and row.ci_high < 0
    assert row.far_effect == pytest.approx(0.15) and row.far_ci_low > 0
    assert row.verdict == "does not hold"
    # tied at the worse end: the noise decides nothing there
    errors[("re", 1000, 0.1)] = 0.40
    errors[("re", 1000, 0.01)] = 0.30
    df, primary, draws = study(errors, noise=0.05)
    row = claims_table([claim(kind="degrades_less")], df, primary, draws).iloc[0]
    assert row.ci_high < 0 and row.far_ci_low < 0 < row.far_ci_high
    assert row.verdict == "undecided"


def test_a_claim_the_noise_cannot_decide_is_undecided():
    errors = {("fm", 100, 0.01): 0.50, ("re", 100, 0.01): 0.49}
    df, primary, draws = study(errors, noise=0.2)
    row = claims_table([claim()], df, primary, draws).iloc[0]
    assert row.ci_low < 0 < row.ci_high and row.verdict == "undecided"


def test_too_few_seeds_give_no_verdict():
    """A clear effect on one or two seeds is undecided (n seeds); min_seeds 2 lets
    two decide. The effect and its CI are still reported."""
    for seeds, min_seeds, expected in (
        ((0,), 3, "undecided (1 seed)"),
        ((0, 1), 3, "undecided (2 seeds)"),
        ((0, 1), 2, "holds"),
        ((0, 1, 2), 3, "holds"),
    ):
        df, primary, draws = study(ERRORS, seeds=seeds)
        row = claims_table([claim(n_train="min")], df, primary, draws, min_seeds).iloc[0]
        assert row.verdict == expected and row.n_seeds == len(seeds)
        assert row.effect == pytest.approx(-0.20) and row.ci_high < 0
    text = claims_markdown(claims_table([claim()], *study(ERRORS, seeds=(0,))), min_seeds=3)
    assert "**undecided (1 seed)**" in text and "fewer than 3 seeds" in text


def test_a_margin_turns_no_effect_into_does_not_hold():
    df, primary, draws = study({("fm", 100, 0.01): 0.50, ("re", 100, 0.01): 0.50}, noise=0.005)
    plain, margin = claims_table([claim(), claim(margin=0.1)], df, primary, draws).verdict
    assert plain == "undecided" and margin == "does not hold"


def test_a_claim_without_runs_says_why():
    df, primary, draws = study({("fm", 100, 0.01): 0.5, ("re", 100, 0.01): 0.4})
    row = claims_table([claim(dt=0.5)], df, primary, draws).iloc[0]
    assert row.verdict == "undecided" and "no runs at" in row.cells
    row = claims_table([claim(kind="degrades_less")], df, primary, draws).iloc[0]
    assert row.verdict == "undecided" and "two values of dt" in row.cells


def test_config_claims_must_name_runs_of_the_config():
    from cgflow.config import ConfigError, load_config, validate_config

    config = load_config("config/smoke.yaml")
    config["claims"] = [{"name": "x", "system": "double_well", "method": "re", "baseline": "fm"}]
    with pytest.raises(ConfigError, match=r"claims\[0\].method: double_well runs no method 're'"):
        validate_config(config)
    config["claims"] = [{"name": "x", "system": "nope", "method": "re", "baseline": "fm"}]
    with pytest.raises(ConfigError, match="not a system of this config"):
        validate_config(config)
    config["claims"] = [{"name": "x", "system": "double_well", "method": "fm", "baseline": "fm",
                         "kind": "worse"}]  # fmt: skip
    with pytest.raises(ConfigError, match=r"claims\[0\]\.kind"):
        validate_config(config)


def test_claimed_cells_are_those_the_claims_table_reads():
    """``runs: claimed`` runs what the claims compare and nothing else: run only those
    cells, and the table finds every claim's runs (none says "no runs")."""
    grid = [
        {"method": m, "n_train": n, "dt": dt, "temperature": 3.0}
        for m in ("fm", "re", "fm_re")
        for n in (100, 1000)
        for dt in (0.01, 0.1)
    ]
    grid.append({"method": "rkl", "n_train": 0, "dt": 0.0, "temperature": 3.0})
    claims = [
        claim(),  # re vs fm at n max, dt min
        claim(name="d", n_train="min"),
        claim(name="t", kind="degrades_less", along="dt"),  # n max, both dts
        claim(name="f", method="fm_re", n_train=1000),
        claim(name="w", method="rkl", kind="within", margin=0.5, n_train="min"),
        claim(name="z", method="re", baseline="reference", kind="within", margin=0.5),
        claim(name="other system", system="dw2", n_train="min", dt="max"),
    ]  # fmt: skip
    cells = claimed_cells(claims, "dw", grid)
    assert cells == {
        ("re", 1000, 0.01), ("fm", 1000, 0.01), ("re", 100, 0.01), ("fm", 100, 0.01),
        ("re", 1000, 0.1), ("fm", 1000, 0.1), ("fm_re", 1000, 0.01), ("rkl", 0, 0.0),
    }  # fmt: skip
    errors = {c: 0.5 for c in cells if c[0] != "rkl"}
    df, primary, draws = study(errors)
    table = claims_table([c for c in claims[:5] if c["method"] != "rkl"], df, primary, draws)
    assert not table.cells.str.contains("no runs|two values").any()
    assert (table.n_seeds == 3).all()


def test_runs_claimed_needs_a_claim_on_the_system():
    from cgflow.config import ConfigError, load_config, validate_config

    config = load_config("config/smoke.yaml")
    config["systems"]["double_well"]["runs"] = "claimed"
    with pytest.raises(ConfigError, match=r"systems.double_well.runs: claimed, but no claim"):
        validate_config(config)
    config["systems"]["double_well"]["runs"] = "some"
    with pytest.raises(ConfigError, match=r"systems.double_well.runs: 'some' is not allowed"):
        validate_config(config)


def test_paired_differences_agree_with_a_better_claim():
    """benchmark.md's paired differences and the claims table are one computation."""
    from cgflow.analysis.tables import paired_differences

    df, primary, draws = study(ERRORS)
    diffs = paired_differences(df, primary, draws, order=["fm", "re"])
    d = diffs[(diffs.n_train == 100) & (diffs.dt == 0.01)].iloc[0]
    assert (d.method, d.baseline) == ("re", "fm")
    row = claims_table([claim(n_train="min")], df, primary, draws).iloc[0]
    assert d["mean"] == pytest.approx(row.effect) == pytest.approx(-0.20)
    # same draws, other resampling seeds: the CIs agree to bootstrap noise
    assert abs(d.ci_low - row.ci_low) < 0.02 and abs(d.ci_high - row.ci_high) < 0.02
    assert bool(d.excludes_zero)


def test_paired_differences_give_the_ratio_of_mean_errors():
    """FM 0.50 vs RE 0.30 (n 100, dt 0.01): ratio 5/3, its CI around it and within the
    draws' noise; FM 0.05 vs RE 0.12: below 1. benchmark.md shows both."""
    from cgflow.analysis.markdown import differences_markdown
    from cgflow.analysis.tables import paired_differences

    df, primary, draws = study(ERRORS)
    diffs = paired_differences(df, primary, draws, order=["fm", "re"]).set_index(["n_train", "dt"])
    little, much = diffs.loc[(100, 0.01)], diffs.loc[(1000, 0.01)]
    assert little.ratio == pytest.approx(0.50 / 0.30)
    assert 1.5 < little.ratio_ci_low < little.ratio < little.ratio_ci_high < 1.85
    assert much.ratio == pytest.approx(0.05 / 0.12) and much.ratio_ci_high < 1
    text = differences_markdown(diffs.reset_index())
    assert "ratio of mean pmf_wrmse_kT, baseline / method" in text
    assert re.search(r"\| re - fm \| 100 \| 1\.67 \[1\.\d+, 1\.\d+\] \|", text)


def test_a_claim_picks_its_temperature():
    """EM vs the nearest-temperature FM model at a held-out temperature: rows at other
    temperatures do not mix in."""
    errors = {
        ("em", 1000, 0.01, 2.0): 0.10, ("fm", 1000, 0.01, 2.0): 0.05,
        ("em", 1000, 0.01, 3.0): 0.12, ("fm", 1000, 0.01, 3.0): 0.50,
    }  # fmt: skip
    df, primary, draws = study(errors)
    table = claims_table(
        [claim(method="em", temperature=3.0), claim(method="em", temperature="min")],
        df, primary, draws,
    )  # fmt: skip
    held, low = table.iloc[0], table.iloc[1]
    assert held.effect == pytest.approx(-0.38) and held.verdict == "holds"
    assert held.cells.startswith("T 3, ")
    assert low.effect == pytest.approx(0.05) and low.verdict == "does not hold"
    row = claims_table([claim(method="em", temperature=5.0)], df, primary, draws).iloc[0]
    assert row.verdict == "undecided" and "no runs at temperature 5" in row.cells


def with_reference(errors: dict, reference: float, noise: float = 0.02):
    """``study`` plus a one-seed reference row (n_train 20000, dt NaN), as
    evaluate_reference writes it."""
    df, primary, draws = study(errors, noise)
    run = {"system": "dw", "mapping": "x1", "temperature": 3.0, "method": "reference",
           "n_train": 20000, "dt": float("nan"), "seed": 0, "run_dir": "r"}  # fmt: skip
    df = pd.concat([df, pd.DataFrame([{**run, "metric": "pmf_wrmse_kT", "value": reference}])])
    rng = np.random.default_rng(1)
    draws[run_key(run)] = {"pmf_wrmse_kT": reference + noise * rng.standard_normal(N_BOOT)}
    return df, primary, draws


def test_a_within_claim_compares_a_generator_with_the_noise_floor_and_with_fm():
    """A data-free generator (its one cell: n_train 0, dt 0) against the one-seed
    reference and against FM at the claim's cell; the verdict is against the margin."""
    errors = {**ERRORS, ("rkl", 0, 0.0): 0.10}
    df, primary, draws = with_reference(errors, reference=0.06, noise=0.005)
    table = claims_table(
        [
            claim(name="close to the floor", method="rkl", baseline="reference", kind="within",
                  margin=0.1),  # 0.10 - 0.06 = 0.04 < 0.1
            claim(name="too far from the floor", method="rkl", baseline="reference",
                  kind="within", margin=0.02),  # 0.04 > 0.02
            claim(name="as good as fm", method="rkl", baseline="fm", kind="within", margin=0.1,
                  n_train="min"),  # 0.10 - 0.50: far below the margin
        ],
        df, primary, draws,
    ).set_index("claim")  # fmt: skip
    close = table.loc["close to the floor"]
    assert close.effect == pytest.approx(0.04) and close.verdict == "holds"
    assert close.n_seeds == 3 and "rkl: no data, sampled" in close.cells
    assert table.loc["too far from the floor"].verdict == "does not hold"
    fm = table.loc["as good as fm"]
    assert fm.effect == pytest.approx(-0.40) and fm.verdict == "holds"
    assert "n_train 100, dt 0.01" in fm.cells


def test_an_at_least_claim_checks_a_metric_against_its_threshold():
    rows, draws = [], {}
    rng = np.random.default_rng(2)
    for seed in (0, 1, 2):
        run = {"system": "dw", "mapping": "x1", "temperature": 3.0, "method": "rkl",
               "n_train": 0, "dt": 0.0, "seed": seed, "run_dir": "r"}  # fmt: skip
        rows.append({**run, "metric": "latent_corr_x1", "value": 0.9 + 0.01 * seed})
        draws[run_key(run)] = {"latent_corr_x1": 0.9 + 0.01 * seed
                               + 0.005 * rng.standard_normal(N_BOOT)}  # fmt: skip
    df = pd.DataFrame(rows)
    base = {"name": "cv", "system": "dw", "method": "rkl", "kind": "at_least",
            "metric": "latent_corr_x1", "n_train": "max", "dt": "min"}  # fmt: skip
    table = claims_table(
        [{**base, "threshold": 0.8}, {**base, "name": "cv high", "threshold": 0.95},
         {**base, "name": "cv edge", "threshold": 0.91}],
        df, {"dw": "pmf_wrmse_kT"}, draws,
    ).set_index("claim")  # fmt: skip
    assert table.loc["cv"].effect == pytest.approx(0.91) and table.loc["cv"].verdict == "holds"
    assert table.loc["cv high"].verdict == "does not hold"
    assert table.loc["cv edge"].verdict == "undecided"
    assert "latent_corr_x1" in claims_markdown(table.reset_index())


def test_claims_of_each_kind_need_what_they_compare_with():
    from cgflow.config import ConfigError, load_config, validate_config

    config = load_config("config/smoke.yaml")
    system = next(iter(config["systems"]))
    method = next(iter(config["methods"]))
    config["claims"] = [
        {"name": "a", "system": system, "method": method, "kind": "within"},
        {"name": "b", "system": system, "method": method, "kind": "at_least"},
        {"name": "c", "system": system, "method": method, "baseline": "reference",
         "kind": "within"},
        {"name": "d", "system": system, "method": method, "baseline": "reference",
         "kind": "more_stable", "metric": "pmf_wrmse_kT"},
    ]  # fmt: skip
    with pytest.raises(ConfigError) as err:
        validate_config(config)
    text = str(err.value)
    assert "claims[0]: a within claim needs a baseline" in text
    assert "claims[1]: an at_least claim needs a threshold" in text
    assert "claims[2].margin: a within claim needs a margin > 0" in text
    assert "claims[3].baseline: a more_stable claim compares two methods' CG runs" in text
    assert "claims[3].metric: a more_stable claim counts blown-up runs" in text


def test_an_unstable_cell_is_not_replaced_by_another():
    """A method run at two data-set sizes whose every seed blew up at the larger
    (NaN error) is not compared at the smaller one instead: the claim at n_train max
    is undecided, with the reason shown; at n_train min it is decided as usual."""
    df, primary, draws = study({("fm", 100, 0.01): 0.50, ("fm", 1000, 0.01): 0.30,
                                ("re", 100, 0.01): 0.20, ("re", 1000, 0.01): 0.10})  # fmt: skip
    df.loc[(df.method == "re") & (df.n_train == 1000), "value"] = np.nan
    table = claims_table(
        [claim(name="at max"), claim(name="at min", n_train="min")], df, primary, draws
    ).set_index("claim")
    at_max = table.loc["at max"]
    assert at_max.verdict == "undecided" and not np.isfinite(at_max.effect)
    assert at_max.cells == "n_train 1000, dt 0.01 (no seed with stable runs of both)"
    at_min = table.loc["at min"]
    assert at_min.effect == pytest.approx(-0.30) and at_min.verdict == "holds"
    assert at_max.stable_runs == "re 0/3, fm 3/3" and at_min.stable_runs == "re 3/3, fm 3/3"


def stability_study(blew_up: dict, seeds=range(6)):
    """'stable' rows (1, or 0 for a run that blew up) of method, dt cells:
    ``blew_up[(method, dt)]`` is how many of the seeds blew up."""
    rows = []
    for (method, dt), k in blew_up.items():
        for seed in seeds:
            rows.append({"system": "dw", "mapping": "x1", "temperature": 3.0,
                         "method": method, "n_train": 1000, "dt": dt, "seed": seed,
                         "run_dir": "r", "metric": "stable",
                         "value": float(seed >= k)})  # fmt: skip
    return pd.DataFrame(rows)


def test_a_more_stable_claim_compares_blow_up_rates_at_the_largest_dt():
    """RE blows up in 0 of 6 seeds at dt 0.3, FM in 5 of 6: effect -5/6 with
    Newcombe's CI below zero, holds; 1 against 2 of 6 is undecided; at dt 0.1, where
    neither blows up, it is undecided too (no evidence either way), and a margin of
    0.5 makes that "does not hold"."""
    df = stability_study({("re", 0.1): 0, ("fm", 0.1): 0, ("re", 0.3): 0, ("fm", 0.3): 5})
    kw = {"kind": "more_stable", "dt": "max"}
    table = claims_table(
        [claim(name="max", **kw), claim(name="min", kind="more_stable"),
         claim(name="margin", kind="more_stable", margin=0.5)],
        df, {"dw": "pmf_wrmse_kT"}, {},
    ).set_index("claim")  # fmt: skip
    top = table.loc["max"]
    assert top.effect == pytest.approx(-5 / 6) and top.ci_high < 0 and top.verdict == "holds"
    assert top.metric == "unstable_fraction" and top.stable_runs == "re 6/6, fm 1/6"
    assert top.cells == "n_train 1000, dt 0.3" and top.n_seeds == 6
    assert table.loc["min"].verdict == "undecided" and table.loc["min"].effect == 0.0
    assert table.loc["margin"].verdict == "does not hold"
    close = stability_study({("re", 0.3): 1, ("fm", 0.3): 2})
    row = claims_table([claim(**kw)], close, {"dw": "pmf_wrmse_kT"}, {}).iloc[0]
    assert row.verdict == "undecided" and row.ci_low < 0 < row.ci_high
    # the reference's convergence is not its concern; too few seeds still are
    row = claims_table([claim(**kw)], df, {"dw": "pmf_wrmse_kT"}, {},
                       unconverged={("dw", 3.0)}).iloc[0]  # fmt: skip
    assert row.verdict == "holds"
    few = stability_study({("re", 0.3): 0, ("fm", 0.3): 2}, seeds=range(2))
    row = claims_table([claim(**kw)], few, {"dw": "pmf_wrmse_kT"}, {}).iloc[0]
    assert row.verdict == "undecided (2 seeds)"


def test_stable_runs_are_counted_at_the_worse_end_of_a_degrades_less_claim():
    """A baseline that blows up at the larger time step in one seed of three: the
    effect uses the two seeds where both ran, and the table shows the blow-up."""
    df, primary, draws = study(ERRORS)
    df.loc[(df.method == "fm") & (df.dt == 0.1) & (df.n_train == 1000) & (df.seed == 0),
           "value"] = np.nan  # fmt: skip
    row = claims_table([claim(kind="degrades_less")], df, primary, draws).iloc[0]
    assert row.stable_runs == "re 3/3, fm 2/3" and row.n_seeds == 2
    assert "| re 3/3, fm 2/3 |" in claims_markdown(pd.DataFrame([row]))


def test_an_unstable_temperature_is_not_replaced_by_another():
    """Nor is a temperature where every run blew up: the claim at the highest
    temperature is undecided, not decided at the next one down."""
    errors = {("fm", 100, 0.01, 2.0): 0.50, ("fm", 100, 0.01, 4.0): 0.30,
              ("re", 100, 0.01, 2.0): 0.20, ("re", 100, 0.01, 4.0): 0.10}  # fmt: skip
    df, primary, draws = study(errors)
    df.loc[df.temperature == 4.0, "value"] = np.nan
    table = claims_table([claim(temperature="max")], df, primary, draws).set_index("claim")
    row = table.loc["c"]
    assert row.verdict == "undecided" and not np.isfinite(row.effect)
    assert row.cells == "T 4, no stable runs of these methods"


def test_a_claim_name_with_bars_keeps_the_table_columns():
    """A name such as "|corr| >= 0.8" is escaped, so its row has the header's columns."""
    df, primary, draws = study(ERRORS)
    row = claims_table([claim(name="tracks phi (|corr| >= 0.8)")], df, primary, draws).iloc[0]
    text = claims_markdown(pd.DataFrame([row]))
    header, body = (ln for ln in text.splitlines() if ln.startswith("| ") and "---" not in ln)
    cells = lambda line: len(re.split(r"(?<!\\)\|", line))  # noqa: E731
    assert cells(body) == cells(header) and "\\|corr\\|" in body


def reference_record(system, temperature, training_samples, test_samples):
    def side(n):
        return {"basin_relaxation": {"tau": 10.0, "slowest_basin": "alpha_L",
                                     "n_frames": 1000, "independent_samples": n}}  # fmt: skip

    run = {"system": system, "mapping": "m", "temperature": temperature, "method": "reference",
           "n_train": 1000, "dt": np.nan, "seed": 0}  # fmt: skip
    return {"run": run, "bootstrap": {"samples": side(training_samples),
                                      "reference": side(test_samples)}}  # fmt: skip


def test_a_reference_with_few_basin_samples_or_disagreeing_runs_is_not_converged():
    from cgflow.analysis.convergence import (
        convergence_markdown,
        reference_checks,
        unconverged,
    )

    records = [reference_record("ala", 300.0, 88, 232), reference_record("ala", 330.0, 7, 120),
               reference_record("ala", 350.0, 80, 90)]  # fmt: skip
    summary = pd.DataFrame([
        {"system": "ala", "mapping": "m", "temperature": t, "method": "reference",
         "metric": "dF_alpha_L_err_kT", "value": v, "ci_low": lo, "ci_high": hi}
        for t, v, lo, hi in ((300.0, 0.1, -0.2, 0.4), (330.0, 0.1, -0.3, 0.5),
                             (350.0, -1.2, -1.6, -0.8))
    ])  # fmt: skip
    checks = reference_checks(summary, [as_record(r) for r in records], min_samples=50)
    by_t = {c.temperature: c for c in checks}
    assert by_t[300.0].converged
    assert by_t[330.0].too_few == ["training"] and not by_t[330.0].disagreeing
    assert by_t[350.0].disagreeing[0][0] == "alpha_L" and not by_t[350.0].too_few
    assert unconverged(checks) == {("ala", 330.0), ("ala", 350.0)}
    text = convergence_markdown(checks)
    assert "| ala | m | 300 | 88 (alpha_L) | 232 (alpha_L) | converged |" in text
    assert "training run: 7 independent samples of alpha_L (< 50)" in text
    assert "alpha_L: training - test -1.20 [-1.60, -0.80] kT" in text
    # an exact sampler (no relaxation recorded) is not checked
    exact = {"run": {**records[0]["run"], "system": "dw"}, "bootstrap": {}}
    assert reference_checks(summary, [as_record(exact)]) == []


def test_a_claim_on_an_unconverged_reference_is_undecided():
    df, primary, draws = study(ERRORS)
    row = claims_table([claim(n_train="min")], df, primary, draws, 3, {("dw", 3.0)}).iloc[0]
    assert row.verdict == "undecided (reference not converged)" and row.temperature == 3.0
    assert row.effect == pytest.approx(-0.20) and row.ci_high < 0  # still reported
    df, primary, draws = study(ERRORS, seeds=(0,))
    row = claims_table([claim(n_train="min")], df, primary, draws, 3, {("dw", 3.0)}).iloc[0]
    assert row.verdict == "undecided (1 seed; reference not converged)"
    row = claims_table([claim(n_train="min")], df, primary, draws, 3, {("dw", 4.0)}).iloc[0]
    assert row.verdict == "undecided (1 seed)"  # another temperature's reference


def test_a_claim_reading_runs_whose_replicas_did_not_cross_is_undecided():
    """A run whose replicas kept their start basins scores the start frames'
    populations: a claim reading it (either side, any seed) is undecided."""
    df, primary, draws = study(ERRORS)
    crossing = df.assign(metric="replicas_crossing", value=0.8)
    low = (crossing.method == "fm") & (crossing.n_train == 100) & (crossing.seed == 2)
    crossing.loc[low, "value"] = 0.2
    df = pd.concat([df, crossing], ignore_index=True)
    little, much = claims_table([claim(name="little", n_train="min"), claim(name="much")],
                                df, primary, draws, min_crossing=0.5).verdict  # fmt: skip
    assert little == "undecided (replicas did not cross)"
    assert much == "does not hold"  # n_train 1000: every run crossed
    # the check off (0), or a lower threshold: the CI decides again
    assert claims_table([claim(n_train="min")], df, primary, draws).verdict[0] == "holds"
    assert claims_table([claim(n_train="min")], df, primary, draws,
                        min_crossing=0.1).verdict[0] == "holds"  # fmt: skip


def test_compare_claims_names_every_move(tmp_path):
    import subprocess
    import sys

    from cgflow.analysis.claims import compare_verdicts

    def table(verdicts):
        return pd.DataFrame([{"claim": c, "verdict": v, "effect": -0.1, "ci_low": -0.2,
                              "ci_high": 0.1} for c, v in verdicts.items()])  # fmt: skip

    first = table({"a": "holds", "b": "holds", "c": "undecided", "d": "does not hold",
                   "e": "undecided (1 seed)", "f": "holds"})  # fmt: skip
    second = table({"a": "holds", "b": "does not hold", "c": "holds", "d": "undecided",
                    "e": "undecided", "g": "holds"})  # fmt: skip
    moved = dict(zip(*compare_verdicts(first, second)[["claim", "moved"]].T.values, strict=True))
    assert moved == {"a": "same", "b": "flipped", "c": "from undecided", "d": "to undecided",
                     "e": "same", "f": "only in first", "g": "only in second"}  # fmt: skip
    first.to_csv(tmp_path / "one.csv", index=False)
    second.to_csv(tmp_path / "two.csv", index=False)
    done = subprocess.run([sys.executable, "-m", "cgflow.cli", "compare-claims",
                           str(tmp_path / "one.csv"), str(tmp_path / "two.csv")],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0 and "1 verdict(s) flipped" in done.stderr
    assert "| b | -0.100 [-0.200, +0.100] | holds |" in done.stdout and "**flipped**" in done.stdout
    assert "2 same, 1 flipped, 1 to undecided, 1 from undecided" in done.stdout
    (tmp_path / "bad.csv").write_text("x,y\n1,2\n")
    bad = subprocess.run([sys.executable, "-m", "cgflow.cli", "compare-claims",
                          str(tmp_path / "one.csv"), str(tmp_path / "bad.csv")],
                         capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 2 and "bad.csv: not a claims.csv" in bad.stderr


def as_record(d: dict):
    """A MetricsRecord of a test's partial metrics.json dict (the rest filled in)."""
    from cgflow.analysis.records import MetricsRecord

    run = {"mapping": "m", "n_train": 0, "seed": 0, "dt": float("nan"), "run_dir": "r",
           **d["run"]}  # fmt: skip
    return MetricsRecord.from_json({"metrics": {}, "primary_metric": "x",
                                    "figure_kind": "surface_2d", **d, "run": run})  # fmt: skip


def test_a_claim_is_a_record_with_the_schemas_defaults():
    """A config entry becomes a Claim with the schema's defaults; its JSON form is the
    entry with them; a key a claim does not have, or a missing name, is refused."""
    from cgflow.analysis.claims.core import Claim

    entry = {"name": "RE beats FM", "system": "dw", "method": "re", "baseline": "fm"}
    claim = Claim.of(entry)
    assert (claim.kind, claim.n_train, claim.dt, claim.temperature, claim.margin) == (
        "better", "max", "min", "min", 0.0)  # fmt: skip
    assert Claim.of(claim) is claim and Claim.of(claim.to_json()) == claim
    assert claim.to_json() == {**entry, "kind": "better", "n_train": "max", "dt": "min",
                               "temperature": "min", "along": "dt", "margin": 0.0}  # fmt: skip
    with pytest.raises(ValueError, match=r"claim 'RE beats FM': unknown keys \['treshold'\]"):
        Claim.of({**entry, "treshold": 0.8})
    with pytest.raises(ValueError, match=r"lacks \['name'\]"):
        Claim.of({k: v for k, v in entry.items() if k != "name"})
