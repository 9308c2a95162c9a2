"""Units and constants shared by the systems (OpenMM's units: nm, ps, kJ/mol, K, amu)."""

MOLAR_GAS_CONSTANT = 8.314462618e-3
"""R in kJ/(mol K): kT = R T per mole."""

MOLECULAR = {"length": "nm", "time": "ps", "energy": "kJ/mol", "mass": "amu", "temperature": "K"}
"""The units of every molecular data set."""

REDUCED = {"length": "reduced", "time": "reduced", "energy": "reduced (k_B = 1)", "mass": "reduced"}
"""The units of toy potentials: k_B = 1, so the temperature is kT."""

KJ_PER_KCAL = 4.184
"""kJ per kcal (thermochemical calorie): JAX MD's force fields work in kcal/mol."""
