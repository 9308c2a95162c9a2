#!/usr/bin/env bash
# Snakemake runs this once inside the new environment: install cgflow from this checkout
# (the environment file already provides its dependencies).
set -euo pipefail
python -m pip install --no-deps --no-build-isolation -e "$(dirname "$0")/.."
