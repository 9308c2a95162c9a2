"""Bonded terms of a CG topology, derived from its bond graph."""

from __future__ import annotations


def bonded_terms(n_beads: int, bonds: list[tuple[int, int]]) -> dict[str, list[list[int]]]:
    """Bonds, angles (i-j-k) and proper dihedrals (i-j-k-l) implied by ``bonds``.

    Each angle and dihedral is listed once (the orientation with i < last).
    """
    graph: dict[int, set[int]] = {i: set() for i in range(n_beads)}
    for i, j in bonds:
        graph[i].add(j)
        graph[j].add(i)
    angles = sorted(
        {
            tuple(sorted((i, k)))[:1] + (j,) + tuple(sorted((i, k)))[1:]
            for j in graph
            for i in graph[j]
            for k in graph[j]
            if i < k
        }
    )
    dihedrals = set()
    for j in graph:
        for k in graph[j]:
            if j >= k:
                continue
            for i in graph[j] - {k}:
                for l in graph[k] - {j, i}:
                    quad = (i, j, k, l) if i < l else (l, k, j, i)
                    dihedrals.add(quad)
    return {
        "bonds": sorted(tuple(sorted(b)) for b in bonds),
        "angles": [list(a) for a in angles],
        "dihedrals": [list(d) for d in sorted(dihedrals)],
    }
