"""Building a config: defaults <- a YAML file (``--config``) <- overrides (flags, keyword
arguments), each layer overriding the one before, then the schema's checks.

A YAML file may be flat (``lr_g: 0.001``) or grouped by section (``train: {lr_g: 0.001}``). Unknown
keys and wrong types are errors that name the key and the file. What the user set is recorded in
``Config.provenance``; the rules that need the registries (a model's recipe, a loss's implied
values, the names of registered components) are applied by ``gankit.resolve.resolve``.

Earlier versions spelled "unset" as ``""`` (strings) and ``0`` (``width``, ``channels``,
``workers``, ``embed_dim``); both still load, as None, so every saved config.yaml and checkpoint
resumes.
"""

from __future__ import annotations

import copy
import difflib
import os
from pathlib import Path
from typing import Any

import yaml

from gankit.config.schema import (
    SECTIONS,
    Config,
    Option,
    Provenance,
    options_by_dotted,
    options_by_key,
    type_name,
    type_ok,
    validate,
)
from gankit.errors import GankitError

PROVENANCE_KEY = "provenance"


def _legacy_unset(opt: Option, value: Any) -> bool:
    """Whether ``value`` is an earlier version's spelling of "unset" for this optional field."""
    if not opt.optional:
        return False
    if opt.type is str:
        return value == ""
    return opt.type is int and type_ok(int, value) and value == 0


def coerce(opt: Option, value: Any, where: str) -> Any:
    """Check a YAML value against the field's type; ints are accepted for floats, and numbers for
    ``image_size``; None (or a legacy ``""`` / ``0``) unsets an optional field. Anything else of
    the wrong type is an error naming the key."""
    if (value is None and opt.optional) or _legacy_unset(opt, value):
        return None
    if opt.dotted == "data.image_size" and type_ok(int, value):
        value = str(value)
    if not type_ok(opt.type, value):
        raise GankitError(
            f"{where}: {opt.dotted} must be {type_name(opt.type)}, got {value!r} ({type(value).__name__})"
        )
    return float(value) if opt.type is float else value


def parse_cli_value(opt: Option, text: str) -> Any:
    """Convert a flag's text to the field's type (argparse's ``type=``); ``""`` unsets an
    optional field (None; ``coerce`` also reads a legacy ``0`` so)."""
    if opt.optional and text == "":
        return None
    try:
        if opt.type is int:
            return int(text)
        if opt.type is float:
            return float(text)
    except ValueError:
        raise GankitError(f"{opt.dotted} must be {type_name(opt.type)}, got {text!r}") from None
    return text


def _unknown(key: str, known: list[str], where: str) -> GankitError:
    # The names are quoted: they are YAML spellings, which the CLI leaves as they are (not flags).
    near = difflib.get_close_matches(key, known, n=3)
    hint = (f"; did you mean {' or '.join(map(repr, near))}?" if near
            else f"; known keys: {', '.join(map(repr, known))}")
    return GankitError(f"{where}: unknown config key {key!r}{hint}")


def _provenance(value: Any, where: str) -> Provenance:
    """A saved ``provenance:`` mapping, checked."""
    bad = GankitError(f"{where}: provenance must be a mapping of set_by_user (a list of keys) and "
                      "resolved (key: why)")
    if not isinstance(value, dict) or set(value) - {"set_by_user", "resolved"}:
        raise bad
    user, resolved = value.get("set_by_user") or [], value.get("resolved") or {}
    if not (isinstance(user, list) and all(isinstance(k, str) for k in user)
            and isinstance(resolved, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in resolved.items())):
        raise bad
    return Provenance(list(user), dict(resolved))


def apply_mapping(cfg: Config, mapping: dict[str, Any], where: str, *, user: bool = False) -> Config:
    """Apply a YAML mapping (flat keys, sections, or both) onto ``cfg`` in place.

    ``user``: the values are the user's (a ``--config`` file, flags, keyword arguments): each key
    is recorded in ``cfg.provenance.user_set``, and a ``provenance:`` mapping in the file (a saved
    run's config.yaml used as a preset) is ignored, since every value is now the user's. Otherwise
    the mapping is a saved config, and its ``provenance:`` is restored."""
    by_key, by_dotted = options_by_key(), options_by_dotted()

    def put(opt: Option, value: Any) -> None:
        value = coerce(opt, value, where)
        if user:
            cfg.set_user(opt.dotted, value)
        else:
            setattr(getattr(cfg, opt.section), opt.name, value)

    for key, value in mapping.items():
        if not isinstance(key, str):
            raise GankitError(f"{where}: config keys must be strings, got {key!r}")
        if key == PROVENANCE_KEY:
            if not user:
                cfg.provenance = _provenance(value, where)
        elif key in SECTIONS and isinstance(value, dict):
            for sub, v in value.items():
                dotted = f"{key}.{sub}"
                if dotted not in by_dotted:
                    raise _unknown(dotted, [o for o in by_dotted if o.startswith(key + ".")], where)
                put(by_dotted[dotted], v)
        elif key in by_key:
            put(by_key[key], value)
        else:
            raise _unknown(key, sorted(by_key) + list(SECTIONS), where)
    return cfg


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML mapping, turning every I/O or syntax problem into a clear error."""
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise GankitError(f"config file {p} does not exist") from None
    except OSError as e:
        raise GankitError(f"cannot read config file {p}: {e.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise GankitError(f"config file {p} is not valid YAML{at}: {getattr(e, 'problem', e)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise GankitError(f"config file {p} must hold a mapping of keys to values, not {type(data).__name__}")
    return data


def build_config(
    yaml_path: str | os.PathLike | None = None,
    overrides: dict[str, Any] | None = None,
    base: Config | None = None,
) -> Config:
    """Defaults (or a copy of ``base``) <- YAML file <- ``overrides`` (flat keys, already typed),
    checked by the schema; the keys set are recorded in ``provenance.user_set``. Apply
    ``gankit.resolve.resolve`` to the result before training with it."""
    cfg = copy.deepcopy(base) if base is not None else Config()
    if yaml_path is not None:
        apply_mapping(cfg, load_yaml(yaml_path), str(yaml_path), user=True)
    if overrides:
        apply_mapping(cfg, overrides, "command line", user=True)
    try:
        return validate(cfg)
    except GankitError as e:  # say where the offending value may have come from
        where = " + ".join(w for w in (yaml_path and str(yaml_path), overrides and "command line") if w)
        raise GankitError(f"{where}: {e}" if where else str(e)) from None


def config_from_dict(data: dict[str, Any], where: str) -> Config:
    """Rebuild a saved config (a run's config.yaml or a checkpoint's metadata): it was resolved
    when the run began, so only the schema checks it; its ``provenance:`` is restored. A key it
    lacks because it was saved before that key existed takes the key's ``absent`` value (what
    such runs did), not today's default, so an old run resumes as it trained."""
    cfg = apply_mapping(Config(), data, where)
    present = {k for k, v in data.items() if not isinstance(v, dict)}
    present |= {k for v in data.values() if isinstance(v, dict) for k in v}
    for opt in options_by_key().values():
        if opt.absent and opt.key not in present and opt.name not in present:
            setattr(getattr(cfg, opt.section), opt.name, opt.absent[0])
    return validate(cfg)


__all__ = ["apply_mapping", "build_config", "coerce", "config_from_dict", "load_yaml", "parse_cli_value"]
