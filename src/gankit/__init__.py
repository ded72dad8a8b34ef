"""gankit: train, watch, diagnose, evaluate and apply generative adversarial networks.

The notebook API in a few lines::

    import gankit
    run = gankit.fit("ring", model="mlp", steps=2000, out="runs/ring")
    points = run.sample(1000)                  # (1000, 2)
    G, D = gankit.build_models("dcgan", gankit.DataShape((3, 64, 64)), latent_dim=100)

``import gankit`` is light: it loads no torch. Each public name is imported from its module the
first time it is used (PEP 562: a module ``__getattr__`` over the table ``_PUBLIC`` below), so
``gankit --help``, ``gankit report`` and reading a run directory start in a moment. The training
package is ``gankit.train``; the function that trains is ``gankit.fit``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> the module that defines it (imported on first use).
_PUBLIC: dict[str, str] = {
    "fit": "gankit.api",
    "sample": "gankit.api",
    "Run": "gankit.api",
    "TranslationRun": "gankit.api",
    "Config": "gankit.config",
    "build_config": "gankit.config.load",
    "DataShape": "gankit.models",
    "build_models": "gankit.models",
    "sample_prior": "gankit.models",
    "InMemoryData": "gankit.data",
    "from_dataset": "gankit.data",
    "from_tensor": "gankit.data",
    "GankitError": "gankit.errors",
    "load_generator": "gankit.sampling",
}

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time ``__getattr__`` imports these
    from gankit.api import Run, TranslationRun, fit, sample
    from gankit.config import Config, build_config
    from gankit.data import InMemoryData, from_dataset, from_tensor
    from gankit.errors import GankitError
    from gankit.models import DataShape, build_models, sample_prior
    from gankit.sampling import load_generator


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use (PEP 562)."""
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'gankit' has no attribute {name!r}")
    try:
        return vars(importlib.import_module(module))[name]
    except KeyError:  # the table names a module that lost the name: say so, as Python would
        raise AttributeError(f"module 'gankit' has no attribute {name!r} ({module} defines none)") from None


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))


# The same names as ``_PUBLIC`` (tests/test_imports.py checks), written out for linters and ``import *``.
__all__ = [
    "Config", "DataShape", "GankitError", "InMemoryData", "Run", "TranslationRun", "__version__",
    "build_config", "build_models", "fit", "from_dataset", "from_tensor", "load_generator", "sample",
    "sample_prior",
]
