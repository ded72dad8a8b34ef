#!/usr/bin/env bash
# Set everything up, then run the whole test suite (this is what .ci/run calls).
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh
source scripts/env.sh
.venv/bin/ruff check src tests bench
# Two workers of one thread each on the 2 cores (pytest-xdist; a file's tests stay on one worker,
# so module fixtures such as the browser hold), then the torchrun tests apart from the rest: their
# ranks are processes of their own. Two launches at a time: a launch alone leaves a quarter of the
# 2 cores idle (its ranks wait on each other and on the launcher), so two take 110 s, not 150.
export OMP_NUM_THREADS=1
.venv/bin/python -m pytest -n 2 --dist loadfile -m "not distributed" "$@"
status=0
.venv/bin/python -m pytest -n 2 -m distributed "$@" || status=$?
[ "$status" -eq 5 ] && status=0  # the paths given hold no torchrun test
exit "$status"
