"""CG dynamics in JAX: many replicas at once, run in chunks with blow-up checks.

Modules: ``settings`` (integrator and run settings; no JAX, the config check reads
them), ``replicas`` (the replica runner RE and the simulator share), ``langevin``
(``simulate_langevin``: chunks, blow-up checks, checkpoints), ``pressure`` (the
virial pressure of a periodic model's frames).
"""
