"""``python -m gankit`` (and ``torchrun -m gankit``) run the command line."""

import sys

from gankit.cli import main

sys.exit(main())
