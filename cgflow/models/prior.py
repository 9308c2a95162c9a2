"""Physics priors fitted to CG data by Boltzmann inversion.

``harmonic_position``: a harmonic restraint on every CG coordinate,
U = sum_a k_a/2 (R_a - R0_a)^2 with R0 = <R> and k = kT / Var(R) (the Boltzmann
inversion of a Gaussian).  It confines the model where data are absent; the
network learns the rest.  ``none``: zero energy.

``pair_repulsion`` (liquids in a periodic box): U = kT sum_{i<j} (sigma_ab / r_ij)^12
over every bead pair (minimum image), sigma_ab the closest distance observed between
beads of species a and b in the training frames: a pair costs kT at the closest
approach the data show and rises steeply below it, and no pair feels it beyond
the first shell (at 1.5 sigma it is below 0.8 % of kT). Fitted with a ``cutoff`` r_c
(the network's), each pair term is truncated there with its energy and force
shifted to zero, u(r) = (s/r)^12 - (s/r_c)^12 + 12 (s/r_c)^12 (r - r_c) / r_c, so
that it needs only the pairs within r_c (the network's neighbour list) and gives
the same energy from the list as from all pairs; at r_c = 2 sigma the shift is
2.4e-4 kT per pair.

``bonded`` (molecules; needs the CG topology of the data set):

- bonds, U = k/2 (r - r0)^2, and angles, U = k/2 (theta - theta0)^2, with
  r0, theta0 the means and k = kT / variance (Boltzmann inversion);
- dihedrals, U = sum_{n=1..N} a_n cos(n phi) + b_n sin(n phi): a least-squares fit
  to the Boltzmann-inverted histogram -kT ln p(phi), weighted by bin counts.  A
  narrow dihedral (circular standard deviation below 30 degrees, e.g. across a
  planar peptide group) fills too few bins for that fit, which then swings by
  thousands of kT where no data are; it gets a periodic harmonic term
  U = k/2 wrap(phi - phi0)^2 instead, with phi0 the circular mean and
  k = kT / circular variance (Boltzmann inversion, like bonds);
- a repulsion U = kT (sigma / r)^12 for bead pairs more than three bonds apart,
  sigma the closest distance observed for that pair: a pair costs kT at the
  closest approach the data show and rises steeply below it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from cgflow.models import geometry
from cgflow.systems.pairs import pair_distances

PRIOR_TYPES = ("harmonic_position", "bonded", "pair_repulsion", "none")
DIHEDRAL_TERMS = 3
DIHEDRAL_BINS = 36
NARROW_DIHEDRAL = np.radians(30.0)


def fit_prior(
    prior_type: str,
    positions: np.ndarray,
    kT: float,
    topology: dict | None = None,
    box=None,
    species=None,
    cutoff: float | None = None,
):
    """Fit a prior of ``prior_type`` to CG positions (frames, beads, dim) at ``kT``.

    ``topology`` (``bonds``, ``angles``, ``dihedrals`` as bead-index lists) is
    needed for ``bonded``; with a periodic ``box`` (side lengths) its internal
    coordinates are minimum-image ones. ``species`` (beads,) indexes the bead
    types of ``pair_repulsion`` (default: one type), and ``cutoff`` the range it is
    truncated at (None: every pair).

    Returns:
      JSON-ready description: ``{"type": ..., parameters...}``.

    Raises:
      ValueError: unknown type, or a fit that gives non-finite or non-positive
        force constants (e.g. a coordinate that never moves).
    """
    if prior_type not in PRIOR_TYPES:
        raise ValueError(f"unknown prior {prior_type!r}; allowed: {list(PRIOR_TYPES)}")
    positions = np.asarray(positions, float)
    if prior_type == "none":
        return {"type": "none"}
    if prior_type == "pair_repulsion":
        return _fit_pair_repulsion(positions, kT, box, species, cutoff)
    if prior_type == "bonded":
        if not topology:
            raise ValueError("bonded prior needs the CG topology (bonds, angles, dihedrals)")
        return _fit_bonded(positions, kT, topology, geometry.displacement_fn(box))
    if box is not None:
        raise ValueError("harmonic_position prior: not defined in a periodic box")
    if positions.ndim != 3 or positions.shape[0] < 2:
        raise ValueError(
            f"prior fit needs positions (frames>=2, beads, dim), got {positions.shape}"
        )
    mean = positions.mean(axis=0)
    var = positions.var(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = kT / var
    if not (np.all(np.isfinite(k)) and np.all(k > 0)):
        raise ValueError(
            f"harmonic_position prior: fitted force constants not finite and "
            f"positive (variances {var.ravel().tolist()})"
        )
    return {"type": "harmonic_position", "k": k.tolist(), "x0": mean.tolist(), "kT": kT}


def _fit_bonded(positions: np.ndarray, kT: float, topology: dict, displacement) -> dict:
    R = jnp.asarray(positions)
    out = {"type": "bonded", "kT": kT}
    n_beads = positions.shape[1]
    for term, fn in (("bonds", geometry.bond_lengths), ("angles", geometry.angles)):
        idx = np.asarray(topology.get(term, []), int).reshape(-1, 2 if term == "bonds" else 3)
        values = (
            np.asarray(jax.vmap(lambda r, f=fn, i=idx: f(r, i, displacement))(R))
            if len(idx)
            else None
        )
        if values is None:
            out[term] = {"idx": [], "k": [], "x0": []}
            continue
        var = values.var(axis=0, ddof=1)
        with np.errstate(divide="ignore"):
            k = kT / var
        if not (np.all(np.isfinite(k)) and np.all(k > 0)):
            raise ValueError(
                f"bonded prior: {term} force constants not finite and positive "
                f"(variances {var.tolist()})"
            )
        out[term] = {"idx": idx.tolist(), "k": k.tolist(), "x0": values.mean(axis=0).tolist()}
    idx = np.asarray(topology.get("dihedrals", []), int).reshape(-1, 4)
    fourier = {"idx": [], "a": [], "b": []}
    narrow = {"idx": [], "k": [], "x0": []}
    if len(idx):
        phi = np.asarray(jax.vmap(lambda r: geometry.dihedrals(r, idx, displacement))(R))
        edges = np.linspace(-np.pi, np.pi, DIHEDRAL_BINS + 1)
        centres = 0.5 * (edges[1:] + edges[:-1])
        n = np.arange(1, DIHEDRAL_TERMS + 1)
        basis = np.concatenate(
            [
                np.ones((len(centres), 1)),
                np.cos(np.outer(centres, n)),
                np.sin(np.outer(centres, n)),
            ],
            axis=1,
        )
        for quad, column in zip(idx.tolist(), phi.T, strict=True):
            mean = np.angle(np.mean(np.exp(1j * column)))
            dev = np.angle(np.exp(1j * (column - mean)))  # wrapped to (-pi, pi]
            counts, _ = np.histogram(column, edges)
            seen = counts > 0
            if dev.std() < NARROW_DIHEDRAL or seen.sum() < 2 * basis.shape[1]:
                var = dev.var(ddof=1)
                if not var > 0:
                    raise ValueError(f"bonded prior: dihedral {quad} never moves in the data")
                narrow["idx"].append(quad)
                narrow["k"].append(kT / var)
                narrow["x0"].append(float(mean))
                continue
            u = -kT * np.log(counts[seen] / counts.sum())
            w = np.sqrt(counts[seen])
            coef, *_ = np.linalg.lstsq(basis[seen] * w[:, None], u * w, rcond=None)
            if not np.all(np.isfinite(coef)):
                raise ValueError(f"bonded prior: dihedral {quad} fit is not finite")
            fourier["idx"].append(quad)
            fourier["a"].append(coef[1 : 1 + DIHEDRAL_TERMS].tolist())
            fourier["b"].append(coef[1 + DIHEDRAL_TERMS :].tolist())
    out["dihedrals"] = fourier
    out["narrow_dihedrals"] = narrow
    bonded = _within_three_bonds(n_beads, topology.get("bonds", []))
    pairs = [(i, j) for i in range(n_beads) for j in range(i + 1, n_beads) if (i, j) not in bonded]
    sigma = []
    if pairs:
        pidx = np.asarray(pairs)
        d = np.asarray(jax.vmap(lambda r: geometry.bond_lengths(r, pidx, displacement))(R))
        sigma = d.min(axis=0).tolist()
        if not np.all(np.asarray(sigma) > 0):
            raise ValueError("bonded prior: two non-bonded beads overlap in the data")
    out["repulsion"] = {"idx": [list(p) for p in pairs], "sigma": sigma, "epsilon": kT, "power": 12}
    return out


def _fit_pair_repulsion(positions: np.ndarray, kT: float, box, species, cutoff=None) -> dict:
    n = positions.shape[1]
    species = np.zeros(n, int) if species is None else np.asarray(species, int)
    n_species = int(species.max()) + 1
    sigma = np.full((n_species, n_species), np.nan)
    for start in range(0, len(positions), 64):  # in chunks: frames x pairs distances
        dist, pairs = pair_distances(positions[start : start + 64], box)
        a, b = species[pairs[:, 0]], species[pairs[:, 1]]
        closest = dist.min(axis=0)
        for p in range(n_species):
            for q in range(p, n_species):
                hit = ((a == p) & (b == q)) | ((a == q) & (b == p))
                if hit.any():
                    sigma[p, q] = sigma[q, p] = np.fmin(sigma[p, q], closest[hit].min())
    if not np.all(np.isfinite(sigma[~np.isnan(sigma)])) or np.any(sigma[~np.isnan(sigma)] <= 0):
        raise ValueError(f"pair_repulsion prior: closest distances not positive ({sigma})")
    sigma = np.where(np.isnan(sigma), float(np.nanmin(sigma)), sigma)  # pairs never seen
    out = {"type": "pair_repulsion", "sigma": sigma.tolist(), "species": species.tolist(),
           "epsilon": kT, "power": 12, "kT": kT}  # fmt: skip
    if cutoff is not None:
        if not cutoff > 1.5 * sigma.max():
            raise ValueError(
                f"pair_repulsion prior: cutoff {cutoff} is within 1.5 x the closest "
                f"distance seen ({sigma.max():.4g}): the truncated repulsion would not "
                "repel; use a longer network cutoff"
            )
        out["cutoff"] = float(cutoff)
    return out


def _pair_repulsion_energy(prior: dict, displacement):
    """``energy(R, neighbor=None)``: over all pairs, or, for a prior with a cutoff,
    over the pairs of a neighbour list (``idx`` (2, capacity), padded with n)."""
    species = np.asarray(prior["species"], int)
    n = len(species)
    i, j = np.triu_indices(n, 1)
    every = jnp.asarray(np.stack([i, j]))
    table, kinds = jnp.asarray(prior["sigma"]), jnp.asarray(species)
    eps, power, rc = prior["epsilon"], prior["power"], prior.get("cutoff")

    def term(r, s):
        x = (s / r) ** power
        if rc is None:
            return x
        xc = (s / rc) ** power  # energy and force shifted to zero at rc
        return jnp.where(r < rc, x - xc + power * xc * (r - rc) / rc, 0.0)

    def energy(R, neighbor=None):
        idx = every if neighbor is None or rc is None else neighbor.idx
        valid = (idx[0] < n) & (idx[1] < n)
        a, b = jnp.where(valid, idx[0], 0), jnp.where(valid, idx[1], 0)
        d = jax.vmap(displacement)(R[b], R[a])
        r = jnp.sqrt(jnp.where(valid, jnp.sum(d**2, axis=-1), 1.0))  # padding: finite
        return eps * jnp.sum(jnp.where(valid, term(r, table[kinds[a], kinds[b]]), 0.0))

    return energy


def _within_three_bonds(n: int, bonds) -> set[tuple[int, int]]:
    graph = {i: set() for i in range(n)}
    for i, j in bonds:
        graph[i].add(j)
        graph[j].add(i)
    close = set()
    for start in range(n):
        frontier, seen = {start}, {start}
        for _ in range(3):
            frontier = {k for f in frontier for k in graph[f]} - seen
            seen |= frontier
        close |= {(min(start, k), max(start, k)) for k in seen if k != start}
    return close


def prior_energy(prior: dict, box=None):
    """Return ``energy(R, neighbor=None) -> scalar`` for a fitted prior description,
    R (beads, dim), in free space or in a periodic ``box`` (side lengths). Only a
    pair repulsion with a cutoff reads the neighbour list; every other prior
    ignores it."""
    if prior["type"] == "pair_repulsion":
        return _pair_repulsion_energy(prior, geometry.displacement_fn(box))
    if prior["type"] == "none":
        fn = lambda R: jnp.zeros((), R.dtype)  # noqa: E731
    elif prior["type"] == "harmonic_position":
        if box is not None:
            raise ValueError("harmonic_position prior: not defined in a periodic box")
        k, x0 = jnp.asarray(prior["k"]), jnp.asarray(prior["x0"])
        fn = lambda R: 0.5 * jnp.sum(k * (R - x0) ** 2)  # noqa: E731
    elif prior["type"] == "bonded":
        fn = _bonded_energy(prior, geometry.displacement_fn(box))
    else:
        raise ValueError(f"unknown prior {prior['type']!r}; allowed: {list(PRIOR_TYPES)}")
    return lambda R, neighbor=None: fn(R)


def _bonded_energy(prior: dict, displacement):
    terms = []
    for term, fn, width in (("bonds", geometry.bond_lengths, 2), ("angles", geometry.angles, 3)):
        block = prior[term]
        if block["idx"]:
            idx = jnp.asarray(block["idx"]).reshape(-1, width)
            k, x0 = jnp.asarray(block["k"]), jnp.asarray(block["x0"])
            terms.append(
                lambda R, f=fn, i=idx, k=k, x0=x0: (
                    0.5 * jnp.sum(k * (f(R, i, displacement) - x0) ** 2)
                )
            )
    dih = prior["dihedrals"]
    if dih["idx"]:
        quads = jnp.asarray(dih["idx"]).reshape(-1, 4)
        a, b = jnp.asarray(dih["a"]), jnp.asarray(dih["b"])
        n = jnp.arange(1, a.shape[1] + 1)

        def dihedral_energy(R, quads=quads, a=a, b=b, n=n):
            phi = geometry.dihedrals(R, quads, displacement)[:, None] * n
            return jnp.sum(a * jnp.cos(phi) + b * jnp.sin(phi))

        terms.append(dihedral_energy)
    narrow = prior.get("narrow_dihedrals", {"idx": []})
    if narrow["idx"]:
        quads_n = jnp.asarray(narrow["idx"]).reshape(-1, 4)
        k_n, x0_n = jnp.asarray(narrow["k"]), jnp.asarray(narrow["x0"])

        def narrow_energy(R, quads=quads_n, k=k_n, x0=x0_n):
            d = geometry.dihedrals(R, quads, displacement) - x0
            return 0.5 * jnp.sum(k * jnp.arctan2(jnp.sin(d), jnp.cos(d)) ** 2)

        terms.append(narrow_energy)
    rep = prior["repulsion"]
    if rep["idx"]:
        pairs = jnp.asarray(rep["idx"]).reshape(-1, 2)
        sigma, eps, power = jnp.asarray(rep["sigma"]), rep["epsilon"], rep["power"]
        terms.append(
            lambda R, pairs=pairs, sigma=sigma: (
                eps * jnp.sum((sigma / geometry.bond_lengths(R, pairs, displacement)) ** power)
            )
        )
    return lambda R: sum(t(R) for t in terms) if terms else jnp.zeros((), R.dtype)
