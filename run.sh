#!/usr/bin/env bash
# Set everything up, then train the default GAN: a DCGAN on Fashion-MNIST, a few minutes on 2 CPU
# cores. Extra arguments go to `gankit train` (e.g. ./run.sh --steps 5000 --out runs/long).
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
source scripts/env.sh
exec .venv/bin/gankit train "$@"
