"""Free-energy surfaces, divergence metrics, summary tables and figures."""
