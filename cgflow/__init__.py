"""cgflow: learn coarse-grained potentials, from all-atom sampling to benchmark."""

__version__ = "0.1.0"
