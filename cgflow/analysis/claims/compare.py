"""Two runs' claims tables side by side: which verdicts moved (rerun stability)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cgflow.analysis.claims.core import verdict_kind


def compare_verdicts(first: pd.DataFrame, second: pd.DataFrame) -> pd.DataFrame:
    """Two runs' claims tables (claims.csv) side by side, by claim name, with how each
    verdict moved: ``same``, ``flipped`` (holds <-> does not hold: the run decided
    the claim both ways), ``to undecided`` or ``from undecided``; a claim in one table
    only is ``only in first`` / ``only in second``.

    Columns: claim, verdict_first, verdict_second, effect_first, ci_first,
    effect_second, ci_second, moved.
    """
    a, b = first.set_index("claim"), second.set_index("claim")
    rows = []
    for claim in list(a.index) + [c for c in b.index if c not in a.index]:
        row = {"claim": claim}
        for side, table in (("first", a), ("second", b)):
            if claim in table.index:
                r = table.loc[claim]
                row[f"verdict_{side}"] = str(r.verdict)
                row[f"effect_{side}"] = float(r.effect)
                row[f"ci_{side}"] = (float(r.ci_low), float(r.ci_high))
            else:
                row.update({f"verdict_{side}": "", f"effect_{side}": np.nan,
                            f"ci_{side}": (np.nan, np.nan)})  # fmt: skip
        row["moved"] = _moved(row["verdict_first"], row["verdict_second"])
        rows.append(row)
    return pd.DataFrame(rows)


def _moved(first: str, second: str) -> str:
    if not first or not second:
        return "only in first" if first else "only in second"
    one, two = verdict_kind(first), verdict_kind(second)
    if one == two:
        return "same"
    if "undecided" not in (one, two):
        return "flipped"
    return "to undecided" if two == "undecided" else "from undecided"


def comparison_markdown(table: pd.DataFrame, first: str, second: str) -> str:
    """``compare_verdicts`` as Markdown, with the counts of each kind of move."""

    def effect(value, ci):
        if not np.isfinite(value):
            return ""
        return f"{value:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]"

    counts = table.moved.value_counts()
    summary = ", ".join(f"{counts.get(k, 0)} {k}" for k in
                        ("same", "flipped", "to undecided", "from undecided"))  # fmt: skip
    lines = [
        "# Verdicts of two runs",
        "",
        f"First: `{first}`. Second: `{second}`. Flipped: the two runs decided the claim "
        f"in opposite ways. Of {len(table)} claims: {summary}.",
        "",
        "| claim | first [95 % CI] | verdict | second [95 % CI] | verdict | moved |",
        "|---|---:|---|---:|---|---|",
    ]
    for r in table.itertuples():
        name = str(r.claim).replace("|", "\\|")
        moved = f"**{r.moved}**" if r.moved == "flipped" else r.moved
        one, two = effect(r.effect_first, r.ci_first), effect(r.effect_second, r.ci_second)
        lines.append(f"| {name} | {one} | {r.verdict_first} | {two} | {r.verdict_second} "
                     f"| {moved} |")  # fmt: skip
    return "\n".join(lines) + "\n"
