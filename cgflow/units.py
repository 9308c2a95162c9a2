"""Units and constants shared by the systems (OpenMM's units: nm, ps, kJ/mol, K, amu)."""

MOLAR_GAS_CONSTANT = 8.314_462_618e-3
"""R in kJ/(mol K): kT = R T per mole."""

MOLECULAR = {"length": "nm", "time": "ps", "energy": "kJ/mol", "mass": "amu", "temperature": "K"}
"""The units of every molecular data set."""

REDUCED = {"length": "reduced", "time": "reduced", "energy": "reduced (k_B = 1)", "mass": "reduced"}
"""The units of toy potentials: k_B = 1, so the temperature is kT."""

KJ_PER_KCAL = 4.184
"""kJ per kcal (thermochemical calorie): JAX MD's force fields work in kcal/mol."""

BAR_PER_KJ_MOL_NM3 = 16.605_390_671_738_466
"""1 kJ/mol/nm^3 in bar (1e3 J / Avogadro's number / 1e-27 m^3 / 1e5 Pa)."""


def pressure_bar(du_ds, n_particles: int, kT: float, volume_nm3):
    """The virial pressure P = (N kT - (1/3) dU/ds) / V in bar, where dU/ds is the
    derivative of the potential energy (kJ/mol) when the box and the particles' (or
    molecules' centres') positions are scaled by s, at s = 1; kT in kJ/mol, V in nm^3.
    The ideal term uses the ensemble's kT, so per-frame values average to the pressure.
    """
    import numpy as np

    du_ds = np.asarray(du_ds, float)
    return (n_particles * kT - du_ds / 3.0) / np.asarray(volume_nm3, float) * BAR_PER_KJ_MOL_NM3
