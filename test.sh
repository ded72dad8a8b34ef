#!/usr/bin/env bash
# Set everything up, then run the whole test suite (this is what .ci/run calls).
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
source scripts/env.sh
.venv/bin/ruff check src tests bench
exec .venv/bin/python -m pytest "$@"
