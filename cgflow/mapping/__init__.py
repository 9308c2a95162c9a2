"""Linear coordinate maps and force maps from atoms to CG beads."""

from cgflow.mapping.linear import LinearMap, apply_map, slice_map

__all__ = ["LinearMap", "apply_map", "slice_map"]
