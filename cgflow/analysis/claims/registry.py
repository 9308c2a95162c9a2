"""The kinds of claim, one module each, by their config name."""

from __future__ import annotations

from cgflow.analysis.claims import at_least, better, degrades_less, more_stable, within
from cgflow.analysis.claims.kind import ClaimKind

KINDS: dict[str, ClaimKind] = {
    m.KIND.name: m.KIND for m in (better, degrades_less, within, at_least, more_stable)
}


def get(name: str) -> ClaimKind:
    if name not in KINDS:
        raise ValueError(f"unknown claim kind {name!r}; known: {', '.join(KINDS)}")
    return KINDS[name]
