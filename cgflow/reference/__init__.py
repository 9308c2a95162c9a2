"""All-atom reference sampling: OpenMM MD for molecular systems (exact samplers of toy
potentials live with their systems)."""
