"""Linear coordinate maps and force maps from atoms to CG beads."""

from cgflow.mapping.linear import (
    LinearMap,
    aggregate_constraints,
    apply_map,
    group_map,
    slice_map,
)

__all__ = ["LinearMap", "aggregate_constraints", "apply_map", "group_map", "slice_map"]
