"""``python -m gankit`` (and ``torchrun -m gankit``) run the command line."""

from gankit.cli import console

console()
