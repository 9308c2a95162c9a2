"""Internal coordinates of a molecule, for generators that propose all-atom
configurations: a Z-matrix from the bond graph, and differentiable maps between
Cartesian and internal coordinates with the Jacobian of the change of variables.

A Z-matrix places the atoms one by one: the first at the origin, the second on the
x axis at its bond length, the third in the xy plane by its bond and angle, and
every later atom a from three placed atoms (p, g, h) by its bond |a - p|, its angle
g-p-a and its torsion h-g-p-a (the NeRF construction). A molecule of n atoms then
has n - 1 bonds, n - 2 angles and n - 3 torsions: its 3n - 6 internal degrees of
freedom, with the rigid-body motion removed. The Jacobian of Cartesian coordinates
with respect to (rigid-body motion, bonds, angles, torsions) is the rigid-body
measure times prod b_i^2 prod sin(theta_i) (over the bonds of atoms 1.. and the
angles of atoms 2..), so a density q over internal coordinates is the density
q / (prod b^2 sin theta) over Cartesian configurations modulo rigid motion, and
the Boltzmann density exp(-beta U(x)) becomes exp(-beta U(x(ic))) prod b^2 sin theta.

Reference atoms are chosen so that the torsions a generator must learn are the
molecule's own: atoms are placed breadth-first from a root, ``prefer``red atoms
(e.g. the backbone) first within each shell, then heavy atoms, then by index; h is
an already placed sibling of a (bonded to p), which makes the torsion an improper
one that barely moves (the second and third hydrogens of a methyl group, a
carbonyl oxygen), and otherwise the atom g was placed from, which makes it a proper
torsion (phi and psi of a peptide, whose placement follows the backbone).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np


class ZMatrix(NamedTuple):
    """The placement of a molecule's atoms.

    Attributes:
      order: the atoms in placement order (n,).
      refs: (n, 3) for the atom placed i-th: the atoms (p, g, h) its bond, angle and
        torsion refer to, -1 where it has none (the first three atoms).
      improper: (n,) whether the atom's torsion is improper (h bonded to p).
    """

    order: np.ndarray
    refs: np.ndarray
    improper: np.ndarray

    @property
    def n_atoms(self) -> int:
        return len(self.order)

    @property
    def dim(self) -> int:
        """Internal coordinates: bonds, angles, torsions (3n - 6)."""
        return 3 * self.n_atoms - 6


def _breadth_first(graph: dict[int, list[int]], root: int, priority) -> tuple[list, dict]:
    """Atoms in breadth-first order from ``root`` (within a shell by ``priority``) and
    each atom's parent (-1 for the root)."""
    parent = {root: -1}
    order, shell = [root], [root]
    while shell:
        new = []
        for a in shell:
            for b in sorted(graph[a], key=priority):
                if b not in parent:
                    parent[b] = a
                    new.append(b)
        new.sort(key=priority)
        order.extend(new)
        shell = new
    return order, parent


def zmatrix_from_bonds(n_atoms: int, bonds: Sequence[tuple[int, int]], root: int = 0,
                       prefer: Sequence[int] = (), heavy: Sequence[bool] | None = None
                       ) -> ZMatrix:  # fmt: skip
    """A Z-matrix placing every atom of a connected molecule (ValueError otherwise)."""
    if n_atoms < 4:
        raise ValueError(f"a Z-matrix with torsions needs at least 4 atoms, not {n_atoms}")
    graph: dict[int, list[int]] = {i: [] for i in range(n_atoms)}
    for i, j in bonds:
        graph[int(i)].append(int(j))
        graph[int(j)].append(int(i))
    rank = {a: k for k, a in enumerate(prefer)}
    heavy = [True] * n_atoms if heavy is None else list(heavy)
    order, parent = _breadth_first(graph, root, lambda a: (rank.get(a, len(rank)), not heavy[a], a))
    if len(order) != n_atoms:
        raise ValueError(f"the bond graph is not connected: {n_atoms - len(order)} atoms unreached")
    placed_at = {a: k for k, a in enumerate(order)}
    refs = np.full((n_atoms, 3), -1, int)
    improper = np.zeros(n_atoms, bool)
    for k, a in enumerate(order[1:], 1):
        p = parent[a]
        placed = sorted((b for b in graph[p] if placed_at[b] < k), key=placed_at.get)
        g = parent[p] if parent[p] >= 0 else placed[0] if placed else -1
        refs[k, :2] = (p, g)
        if k < 3:
            continue
        siblings = [b for b in placed if b != g]
        if siblings:
            refs[k, 2], improper[k] = siblings[0], True
        elif parent[g] >= 0:
            refs[k, 2] = parent[g]
        else:  # g is the root: another of its neighbours placed before a
            refs[k, 2] = next(b for b in graph[g] if placed_at[b] < k and b not in (p, a))
    return ZMatrix(np.asarray(order), refs, improper)


def _angle(a, b, c, xp):
    u, v = a - b, c - b
    cos = xp.sum(u * v, -1) / (xp.linalg.norm(u, axis=-1) * xp.linalg.norm(v, axis=-1))
    return xp.arccos(xp.clip(cos, -1.0, 1.0))


def _torsion(a, b, c, d, xp):
    b0, b1, b2 = a - b, c - b, d - c
    b1n = b1 / xp.linalg.norm(b1, axis=-1, keepdims=True)
    v = b0 - xp.sum(b0 * b1n, -1, keepdims=True) * b1n
    w = b2 - xp.sum(b2 * b1n, -1, keepdims=True) * b1n
    x = xp.sum(v * w, -1)
    y = xp.sum(xp.cross(b1n, v) * w, -1)
    return xp.arctan2(y, x)


def to_internal(zm: ZMatrix, x, xp=np):
    """Cartesian (..., n, 3) -> (bonds (..., n-1), angles (..., n-2), torsions (..., n-3)),
    in the placement order; angles in (0, pi), torsions in (-pi, pi]."""
    at = zm.order
    r = zm.refs
    a1, a2, a3 = at[1:], at[2:], at[3:]
    bonds = xp.linalg.norm(x[..., a1, :] - x[..., r[1:, 0], :], axis=-1)
    angles = _angle(x[..., a2, :], x[..., r[2:, 0], :], x[..., r[2:, 1], :], xp)
    torsions = _torsion(x[..., r[3:, 2], :], x[..., r[3:, 1], :], x[..., r[3:, 0], :],
                        x[..., a3, :], xp)  # fmt: skip
    return bonds, angles, torsions


def to_cartesian(zm: ZMatrix, bonds, angles, torsions):
    """(bonds (n-1,), angles (n-2,), torsions (n-3,)) -> Cartesian (n, 3) in JAX: the
    first atom at the origin, the second on +x, the third in the xy plane (NeRF).
    Inverse of :func:`to_internal` up to rigid-body motion."""
    import jax
    import jax.numpy as jnp

    n = zm.n_atoms
    pos: list = [None] * n
    at, r = zm.order, zm.refs
    pos[at[0]] = jnp.zeros(3, bonds.dtype)
    pos[at[1]] = jnp.stack([bonds[0], 0.0 * bonds[0], 0.0 * bonds[0]])
    # the third: bond to p, angle g-p-a, in the plane z = 0 on the side of +y
    p, g = pos[r[2, 0]], pos[r[2, 1]]
    u = (g - p) / jnp.linalg.norm(g - p)
    perp = jnp.stack([-u[1], u[0], 0.0 * u[0]])
    pos[at[2]] = p + bonds[1] * (jnp.cos(angles[0]) * u + jnp.sin(angles[0]) * perp)
    first = jnp.zeros((n, 3), bonds.dtype)
    for k in range(3):
        first = first.at[at[k]].set(pos[at[k]])

    def place(xyz, k_b_theta_phi):  # one atom from three placed ones (NeRF)
        k, b, theta, phi = k_b_theta_phi
        refs = jnp.asarray(r)[k]
        p, g, h = xyz[refs[0]], xyz[refs[1]], xyz[refs[2]]
        bc = (p - g) / jnp.linalg.norm(p - g)
        normal = jnp.cross(g - h, bc)
        normal = normal / jnp.linalg.norm(normal)
        m = jnp.cross(normal, bc)
        d = b * jnp.stack([-jnp.cos(theta), jnp.sin(theta) * jnp.cos(phi),
                           jnp.sin(theta) * jnp.sin(phi)])  # fmt: skip
        return xyz.at[jnp.asarray(at)[k]].set(p + d[0] * bc + d[1] * m + d[2] * normal), None

    # a scan compiles the placement once, not once per atom
    ks = jnp.arange(3, n)
    xyz, _ = jax.lax.scan(place, first, (ks, bonds[2:], angles[1:], torsions))
    return xyz


def log_jacobian(bonds, angles, xp=np):
    """ln of the Jacobian factor prod |b_i|^2 prod |sin(theta_i)| of Cartesian
    coordinates with respect to internal ones (per configuration: bonds (..., n-1),
    angles (..., n-2)); absolute values, so that a generator's proposal outside
    b > 0, 0 < theta < pi gives a finite value rather than NaN."""
    return 2.0 * xp.sum(xp.log(xp.abs(bonds)), -1) + xp.sum(xp.log(xp.abs(xp.sin(angles))), -1)


class InternalCoordinates(NamedTuple):
    """Standardised internal coordinates y (3n - 6,) of a molecule, the space a
    generator works in, with ``center`` the internal coordinates of a given structure
    and ``scale`` a width for each:

        bond  = center + scale * y,   angle = center + scale * y,
        torsion = center + pi tanh(scale * y / pi),

    so y of order 1 spans a thermal fluctuation of bonds and angles, and each torsion
    is a bijection of the real line onto the circle less the point opposite its
    centre (a density on the circle, as the torsions' Boltzmann density is: a torsion
    left on the whole line would let a generator gain entropy without limit by
    spreading over periods). Bonds and angles stay many widths away from 0 and pi in
    any configuration of finite energy.

    Attributes:
      zmatrix: the placement.
      center, scale: (3n - 6,) each: bonds, then angles, then torsions.
    """

    zmatrix: ZMatrix
    center: np.ndarray
    scale: np.ndarray

    @property
    def dim(self) -> int:
        return self.zmatrix.dim

    def split(self, ic):
        n = self.zmatrix.n_atoms
        return ic[..., : n - 1], ic[..., n - 1 : 2 * n - 3], ic[..., 2 * n - 3 :]

    def to_cartesian(self, y):
        """y (3n - 6,) -> (Cartesian (n, 3), ln |d x / d y|) in JAX; the log-Jacobian
        holds prod b^2 |sin(theta)|, the scales and the torsions' tanh (rigid-body
        motion left out)."""
        import jax.numpy as jnp

        y = jnp.asarray(y)
        center, scale = (jnp.asarray(a, y.dtype) for a in (self.center, self.scale))
        c_b, c_a, c_t = self.split(center)
        d_b, d_a, d_t = self.split(scale * y)
        bonds, angles = c_b + d_b, c_a + d_a
        z = d_t / jnp.pi
        x = to_cartesian(self.zmatrix, bonds, angles, c_t + jnp.pi * jnp.tanh(z))
        log_sech2 = 2.0 * (jnp.log(2.0) - jnp.abs(z) - jnp.log1p(jnp.exp(-2.0 * jnp.abs(z))))
        # d torsion / d y = scale sech^2(z); the scales of bonds and angles enter as is
        log_det = log_jacobian(bonds, angles, jnp) + jnp.sum(jnp.log(scale)) + jnp.sum(log_sech2)
        return x, log_det

    def to_standard(self, x: np.ndarray) -> np.ndarray:
        """Cartesian (..., n, 3) -> y (..., 3n - 6), the inverse of ``to_cartesian`` up
        to rigid-body motion."""
        bonds, angles, torsions = to_internal(self.zmatrix, np.asarray(x, float))
        b, a, t = self.split(self.center)
        sb, sa, st = self.split(self.scale)
        delta = (torsions - t + np.pi) % (2 * np.pi) - np.pi  # in [-pi, pi)
        return np.concatenate(
            [(bonds - b) / sb, (angles - a) / sa, np.pi * np.arctanh(delta / np.pi) / st], -1
        )


TORSION_SCALE = 1.0
"""The scale of a proper torsion (radians): about a third of the circle."""


def internal_coordinates(zm: ZMatrix, structure: np.ndarray, energy_fn=None, kT: float = 1.0,
                         torsion_scale: float = TORSION_SCALE) -> InternalCoordinates:  # fmt: skip
    """Standardised internal coordinates centred on ``structure`` (n, 3), a minimum of
    ``energy_fn`` (flat Cartesian coordinates -> energy, JAX). Bonds, angles and
    improper torsions are scaled by their thermal width sqrt(kT / U'') there (the
    curvature along each with the others fixed, by central differences), every
    proper torsion by ``torsion_scale``: a torsion that may turn is not described by
    its curvature at one minimum. With no ``energy_fn`` the scales are 1."""
    bonds, angles, torsions = to_internal(zm, np.asarray(structure, float))
    center = np.concatenate([bonds, angles, torsions])
    if energy_fn is None:
        return InternalCoordinates(zm, center, np.ones_like(center))
    import jax
    import jax.numpy as jnp

    n = zm.n_atoms
    step = np.concatenate([np.full(n - 1, 1e-3), np.full(2 * n - 5, 1e-2)])  # nm, rad

    @jax.jit
    def energies(ic):
        def one(c):
            x = to_cartesian(zm, c[: n - 1], c[n - 1 : 2 * n - 3], c[2 * n - 3 :])
            return energy_fn(jnp.reshape(x, -1))

        return jax.vmap(one)(ic)

    shifted = center + np.concatenate([np.diag(step), -np.diag(step), np.zeros((1, len(step)))])
    u = np.asarray(energies(jnp.asarray(shifted, jnp.float32)), float)
    d = len(step)
    curvature = (u[:d] + u[d : 2 * d] - 2.0 * u[-1]) / step**2
    width = np.sqrt(kT / np.maximum(curvature, kT))  # flat or concave: width 1 (nm or rad)
    proper = np.concatenate([np.zeros(2 * n - 3, bool), ~zm.improper[3:]])
    return InternalCoordinates(zm, center, np.where(proper, torsion_scale, width))
