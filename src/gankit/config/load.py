"""Building a config: defaults <- a YAML file (``--config``) <- overrides (flags, keyword
arguments), each layer overriding the one before, then the schema's checks.

A YAML file may be flat (``lr_g: 0.001``) or grouped by section (``train: {lr_g: 0.001}``). Unknown
keys and wrong types are errors that name the key and the file. What the user set is recorded in
``Config.provenance``; the rules that need the registries (a model's recipe, a loss's implied
values, the names of registered components) are applied by ``gankit.resolve.resolve``.

Every YAML file gankit reads (``--config``, a run's ``config.yaml``) goes through ``load_yaml``,
which refuses, in one line naming the file and before building anything large: a file over
``MAX_YAML_BYTES``, one that is not UTF-8 text, nesting deeper than ``MAX_YAML_DEPTH``, more than
``MAX_YAML_ALIASES`` aliases, and documents that expand (aliases counted as copies) to more than
``MAX_YAML_NODES`` values, so a "billion laughs" of a few hundred bytes fails in milliseconds.
Messages show at most ``gankit.errors.SHORT`` characters of a value.

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
from yaml.events import AliasEvent

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
from gankit.errors import GankitError, display_path, short_repr

PROVENANCE_KEY = "provenance"

MAX_YAML_BYTES = 1 << 20
"""1 MiB: a run's config.yaml is about 3 KB; the pure-Python parser reads 1 MiB in under a second."""
MAX_YAML_DEPTH = 20
"""Nesting levels (a config needs 4: sections, provenance, its lists): deeper is refused before
Python's recursion limit is near."""
MAX_YAML_ALIASES = 100
"""``*alias`` references in one file: a config needs none; a few anchors for shared values pass."""
MAX_YAML_NODES = 10_000
"""Values in one document, each alias counted as a copy of what it names (a full config with its
provenance has about 300)."""


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
            f"{where}: {opt.dotted} must be {type_name(opt.type)}, got {short_repr(value)} "
            f"({type(value).__name__})"
        )
    if opt.type is float:
        try:
            return float(value)
        except OverflowError:  # an integer beyond any float: the schema's check names the key
            raise GankitError(f"{where}: {opt.dotted} must be a finite number, got "
                              f"{short_repr(value)}") from None
    return value


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
    except ValueError:  # also an integer of more than 4300 digits
        raise GankitError(f"{opt.dotted} must be {type_name(opt.type)}, got {short_repr(text)}") from None
    return text


def parse_assignments(pairs: list[str]) -> dict[str, Any]:
    """``["lr_g=2e-4", "loss=rpgan", "mbstd=true"]`` -> flat overrides for ``build_config``: numbers
    read as their flags read them, booleans as YAML reads them (true/false, yes/no), the rest as
    text; the schema then checks the values, and the keys (an unknown one is named with its
    nearest spellings). Dashes in a key are read as underscores, as flags spell them."""
    opts, out = options_by_key(), {}
    for pair in pairs:
        key, eq, text = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not eq or not key:
            raise GankitError(f"{short_repr(pair)} is not KEY=VALUE (e.g. lr_g=2e-4)")
        opt = opts.get(key)
        if opt is not None and opt.type is bool:
            out[key] = yaml.safe_load(text) if text else None
        else:
            out[key] = parse_cli_value(opt, text) if opt is not None else text
    return out


def _unknown(key: str, known: list[str], where: str) -> GankitError:
    # The names are quoted: they are YAML spellings, which the CLI leaves as they are (not flags).
    near = difflib.get_close_matches(key, known, n=3) if len(key) <= 100 else []  # cost: len(key)
    hint = (f"; did you mean {' or '.join(map(repr, near))}?" if near
            else f"; known keys: {', '.join(map(repr, known))}")
    return GankitError(f"{where}: unknown config key {short_repr(key)}{hint}")


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
            raise GankitError(f"{where}: config keys must be strings, got {short_repr(key)}")
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


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, composing at most ``MAX_YAML_DEPTH`` levels, ``MAX_YAML_ALIASES``
    aliases and ``MAX_YAML_NODES`` values (an alias counted as the values it names)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = self.aliases = self.nodes = 0
        self.sizes: dict[int, int] = {}  # id(node) -> values it holds, aliases expanded

    def _count(self, n: int, mark: Any) -> None:
        self.nodes += n
        if self.nodes > MAX_YAML_NODES:
            raise _Refused(f"holds more than {MAX_YAML_NODES} values (aliases counted as copies of what "
                           "they name)", mark)

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(AliasEvent):
            event = self.peek_event()
            self.aliases += 1
            if self.aliases > MAX_YAML_ALIASES:
                raise _Refused(f"uses more than {MAX_YAML_ALIASES} aliases (*name)", event.start_mark)
            node = self.anchors.get(event.anchor)
            if node is not None:
                self._count(self.sizes.get(id(node), 1), event.start_mark)
            return super().compose_node(parent, index)
        mark = self.peek_event().start_mark
        self.depth += 1
        if self.depth > MAX_YAML_DEPTH:
            raise _Refused(f"is nested more than {MAX_YAML_DEPTH} levels deep", mark)
        before = self.nodes
        try:
            node = super().compose_node(parent, index)
        finally:
            self.depth -= 1
        self._count(1, mark)
        self.sizes[id(node)] = self.nodes - before
        return node


class _Refused(Exception):
    """A YAML document over one of the loader's limits (what it exceeds, and where)."""

    def __init__(self, what: str, mark: Any) -> None:
        super().__init__(what)
        self.what, self.mark = what, mark


def _at(mark: Any) -> str:
    return f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML mapping, turning every I/O, encoding, syntax or size problem into one line
    naming the file (see the module's limits)."""
    p = Path(path)
    name = display_path(p)
    try:
        with open(p, "rb") as f:
            raw = f.read(MAX_YAML_BYTES + 1)  # never more, whatever the file (or device) holds
    except FileNotFoundError:
        raise GankitError(f"config file {name} does not exist") from None
    except OSError as e:
        raise GankitError(f"cannot read config file {name}: {e.strerror or e}") from None
    if len(raw) > MAX_YAML_BYTES:
        raise GankitError(f"config file {name} is over the limit of {MAX_YAML_BYTES / 2**20:g} MiB (a config "
                          "is a few KB); give a YAML file of settings")
    if b"\0" in raw:
        raise GankitError(f"config file {name} is binary (it holds NUL bytes), not YAML text; "
                          "give a YAML file of settings")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise GankitError(f"config file {name} is not UTF-8 text (byte 0x{raw[e.start]:02x} at offset "
                          f"{e.start}); give a YAML file of settings, saved as UTF-8") from None
    loader = None
    try:
        loader = _BoundedLoader(text)  # the reader checks the characters here
        data = loader.get_single_data()
    except _Refused as e:
        raise GankitError(f"config file {name} {e.what}{_at(e.mark)}; a config is a mapping of "
                          "settings: write the values out") from None
    except yaml.reader.ReaderError as e:
        raise GankitError(f"config file {name} is not YAML text: character #x{e.character:04x} at "
                          f"offset {e.position} is not allowed" if isinstance(e.character, int) else
                          f"config file {name} is not YAML text ({e.reason})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = str(getattr(e, "problem", None) or e).splitlines()[0]
        raise GankitError(f"config file {name} is not valid YAML{_at(mark)}: {problem}") from None
    except (ValueError, OverflowError) as e:  # an integer of more than 4300 digits, a 13th month
        what = ("an integer of more than 4300 digits" if "digits" in str(e)
                else short_repr(str(e).splitlines()[0] if str(e) else type(e).__name__))
        raise GankitError(f"config file {name} holds a value YAML cannot read: {what}; check its "
                          "numbers and dates") from None
    finally:
        if loader is not None:
            loader.dispose()
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise GankitError(f"config file {name} must hold a mapping of keys to values, not {type(data).__name__}")
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
        apply_mapping(cfg, load_yaml(yaml_path), display_path(yaml_path), user=True)
    if overrides:
        apply_mapping(cfg, overrides, "command line", user=True)
    try:
        return validate(cfg)
    except GankitError as e:  # say where the offending value may have come from
        where = " + ".join(w for w in (yaml_path and display_path(yaml_path), overrides and "command line") if w)
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


__all__ = [
    "MAX_YAML_ALIASES", "MAX_YAML_BYTES", "MAX_YAML_DEPTH", "MAX_YAML_NODES", "apply_mapping",
    "build_config", "coerce", "config_from_dict", "load_yaml", "parse_assignments", "parse_cli_value",
]
