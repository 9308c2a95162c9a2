"""The pressure of a periodic box of rigid molecules, from its saved frames.

OpenMM reports no virial, so the pressure is taken the way its Monte Carlo barostat
moves the box: scale the box and every molecule's centre of mass by ``s`` (the
molecules keep their shape) and differentiate the potential energy,

    P = (N_mol kT - (1/3) dU/ds |_{s=1}) / V,

by central differences in ``s``. This is the molecular virial pressure, whose
ensemble mean equals the atomic one for rigid molecules (their constraint forces
are internal) and is the pressure a one-bead-per-molecule CG model is compared with.
The ideal term uses the thermostat's kT, so the per-frame values average to the
pressure of the ensemble.
"""

from __future__ import annotations

import numpy as np


def molecules_of(topology) -> np.ndarray:
    """The molecule (OpenMM residue) of each atom, (n_atoms,) ints from 0."""
    index = np.empty(topology.getNumAtoms(), int)
    for k, residue in enumerate(topology.residues()):
        for atom in residue.atoms():
            index[atom.index] = k
    return index


def box_scaling_derivative(context, positions, boxes, molecule, masses, eps: float = 5e-4):
    """dU/ds at s = 1 for each frame, by central differences (kJ/mol).

    Args:
      context: an OpenMM Context of the periodic System (its state is overwritten).
      positions: (frames, atoms, 3) nm, every particle of the System.
      boxes: (frames, 3, 3) nm, the box vectors of each frame.
      molecule: (atoms,) the molecule of each atom.
      masses: (atoms,) amu; massless sites (virtual sites) move with their molecule.
      eps: the step in s.
    """
    import openmm.unit as unit

    molecule = np.asarray(molecule)
    n_mol = int(molecule.max()) + 1
    weight = np.zeros((n_mol, len(molecule)))
    weight[molecule, np.arange(len(molecule))] = masses
    weight /= weight.sum(1, keepdims=True)
    first = _first_atoms(molecule)
    out = np.empty(len(positions))
    for k, (x, box) in enumerate(zip(np.asarray(positions, float), np.asarray(boxes, float),
                                     strict=True)):  # fmt: skip
        # each molecule whole around its first atom, so its centre of mass is its own
        x = x[first] + _minimum_image(x - x[first], box)
        com = weight @ x
        energy = []
        for s in (1.0 + eps, 1.0 - eps):
            context.setPeriodicBoxVectors(*(box * s) * unit.nanometer)
            context.setPositions((x + (s - 1.0) * com[molecule]) * unit.nanometer)
            state = context.getState(getEnergy=True)
            energy.append(state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole))
        out[k] = (energy[0] - energy[1]) / (2.0 * eps)
    return out


def _first_atoms(molecule: np.ndarray) -> np.ndarray:
    """For each atom, the index of the first atom of its molecule."""
    _, first, inverse = np.unique(molecule, return_index=True, return_inverse=True)
    return first[inverse]


def _minimum_image(d: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Minimum-image displacements in a box with vectors ``box`` (rows)."""
    frac = d @ np.linalg.inv(box)
    return (frac - np.round(frac)) @ box
