"""`gankit` with the tests' toy task registered: what torchrun and the kill tests launch
(``python tests/run_gankit.py train ...``)."""

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tests.toy_task  # noqa: E402,F401  (registers the toy task)
from gankit import api  # noqa: E402
from gankit.cli import main  # noqa: E402
from tests.hooks import Signal  # noqa: E402

if __name__ == "__main__":
    kill_at = int(os.environ.get("GANKIT_TEST_KILL_AT", "0"))
    if kill_at:  # SIGKILL right after that many iterations: a crash at an exact point
        real = api.train_config
        api.train_config = lambda *a, **k: real(*a, **k, hooks=[Signal(kill_at, signal.SIGKILL)])
    sys.exit(main(sys.argv[1:]))
