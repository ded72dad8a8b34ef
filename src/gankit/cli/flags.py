"""The config's flags on the command line: one per config key, typed and documented from the
schema, and the mapping of library messages (which name config keys) back to flags."""

from __future__ import annotations

import argparse
import re
from typing import Any

from gankit.config import Option, options, parse_cli_value
from gankit.errors import GankitError


def add_config_flags(p: argparse.ArgumentParser) -> None:
    groups: dict[str, argparse._ArgumentGroup] = {}
    for opt in options():
        g = groups.setdefault(opt.section, p.add_argument_group(f"{opt.section} (YAML section '{opt.section}')"))
        default = f" (default: {opt.default!r})" if opt.default is not None else ""
        unset = " (an empty value unsets it)" if opt.optional else ""
        if opt.type is bool:
            g.add_argument(opt.flag, dest=opt.key, action=argparse.BooleanOptionalAction,
                           default=argparse.SUPPRESS, help=opt.help + default)
        else:
            names = _catalogue(opt)
            metavar = "{" + ",".join(names) + "}" if names else opt.type.__name__.upper()
            metavar += "[,...]" if opt.many else ""
            g.add_argument(opt.flag, dest=opt.key, type=_typed(opt), default=argparse.SUPPRESS,
                           metavar=metavar, help=opt.help + default + unset)


def _catalogue(opt: Option) -> list[str] | None:
    """The registry's names for fields that name a registered component (shown in --help)."""
    from gankit.losses import LOSSES
    from gankit.models import CONDITIONINGS

    registries = {"train.loss": LOSSES, "model.conditional": CONDITIONINGS}
    reg = registries.get(opt.dotted)
    if opt.dotted == "model.arch":  # every task's models: the GANs', the translators', ... (gankit.tasks)
        from gankit.tasks import model_names

        return model_names()
    return reg.names() if reg else ([str(c) for c in opt.choices] if opt.choices else None)


def _typed(opt: Option) -> Any:
    def convert(text: str) -> Any:
        try:
            return parse_cli_value(opt, text)
        except GankitError as e:
            raise argparse.ArgumentTypeError(flags_for_keys(str(e))) from None

    convert.__name__ = opt.type.__name__
    return convert


def flags_for_keys(message: str) -> str:
    """A library message, as the command line user reads it: each config key it names becomes
    its flag (``train.lr_g`` -> ``--lr-g``, ``model.arch=mlp`` -> ``--model mlp``). Keys in quotes
    are left alone: they are YAML spellings (``unknown config key 'train.stepz'``)."""
    flags = {o.dotted: o.flag for o in options()}
    keys = "|".join(re.escape(k) for k in sorted(flags, key=len, reverse=True))
    pattern = re.compile(rf"(?<![\w.\-/'])({keys})(?![\w'])(=?)")
    return pattern.sub(lambda m: flags[m.group(1)] + (" " if m.group(2) else ""), message)


def config_overrides(ns: argparse.Namespace) -> dict[str, Any]:
    keys = {o.key for o in options()}
    return {k: v for k, v in vars(ns).items() if k in keys}
