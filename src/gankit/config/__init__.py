"""The run configuration: the schema (typed dataclasses, the one source of defaults, and the checks
that need no registry) in ``gankit.config.schema``; reading YAML and building a config from
defaults, a file and overrides in ``gankit.config.load``. The rules that need the registries (a
model's recipe, a loss's implied values, registered names) are ``gankit.resolve``'s.

The resolved config is saved as ``config.yaml`` in every run directory, with a ``provenance:``
mapping saying which keys the user set and why the others have the value they have.

The schema's names are imported here; ``gankit.config.load``'s (which need PyYAML) on first use
(PEP 562), so ``import gankit.config.schema`` loads the standard library alone.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gankit.config.schema import (
    SECTIONS,
    Bounds,
    Config,
    DataConfig,
    EvalConfig,
    LogConfig,
    ModelConfig,
    NextFrameConfig,
    Option,
    Pattern,
    Provenance,
    RegConfig,
    TextConfig,
    TrainConfig,
    TranslateConfig,
    ViewsConfig,
    options,
    options_by_dotted,
    options_by_key,
    parse_image_size,
    validate,
)

if TYPE_CHECKING:  # at run time ``__getattr__`` imports these
    from gankit.config.load import (
        apply_mapping,
        build_config,
        coerce,
        config_from_dict,
        load_yaml,
        parse_cli_value,
    )

_LOAD = ("apply_mapping", "build_config", "coerce", "config_from_dict", "load_yaml", "parse_cli_value")


def __getattr__(name: str) -> Any:
    """``gankit.config.load``'s public names, imported on first use (PEP 562)."""
    if name not in _LOAD:
        raise AttributeError(f"module 'gankit.config' has no attribute {name!r}")
    return vars(importlib.import_module("gankit.config.load"))[name]


__all__ = [
    "SECTIONS", "Bounds", "Config", "DataConfig", "EvalConfig", "LogConfig", "ModelConfig", "Option",
    "NextFrameConfig", "Pattern", "Provenance", "RegConfig", "TextConfig", "TrainConfig", "TranslateConfig",
    "ViewsConfig", "apply_mapping",
    "build_config", "coerce", "config_from_dict", "load_yaml", "options", "options_by_dotted",
    "options_by_key", "parse_cli_value", "parse_image_size", "validate",
]
