"""The documentation against the code: docs/cli.md names every flag of every command and every
config key (and no flag that does not exist), the links of README.md and docs/ resolve, stale
statements stay gone, and the user guide's Python examples run (with tiny step counts).

docs/cli.md is generated from the argparse parsers and the config schema:
``.venv/bin/python tests/test_docs.py`` rewrites it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CLI_MD = REPO / "docs" / "cli.md"
# the pages this suite keeps honest (BENCHMARKS.md is a lab notebook, quoted as measured)
OUR_DOCS = ["README.md", "docs/guide.md", "docs/cli.md", "docs/failures.md"]


# --------------------------------------------------------------------------- generating docs/cli.md


def _md(text: str) -> str:
    """Text for a Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _command_help(parser: argparse.ArgumentParser) -> dict[str, str]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest: a.help or "" for a in sub._choices_actions}


POSITIONALS = {  # argparse keeps no help for these; what each is
    "source": "a run directory (its last checkpoint) or one checkpoint folder (RUN_DIR/checkpoints/step-N)",
    "run_dir": "a run directory",
    "runs_dir": "a folder of run directories (searched three levels deep)",
    "input_dir": "a folder of images, searched recursively",
    "sequence": "a folder of frames (name order), a video file, or test:N (the run's held-out sequence N)",
}


def _code(text: str) -> str:
    """A code span for a Markdown table cell (GitHub splits cells at any unescaped |)."""
    return "`" + text.replace("|", "\\|") + "`"


def _action_row(a: argparse.Action) -> str:
    if a.option_strings:
        flags = ", ".join(_code(o) for o in a.option_strings)
        if a.nargs != 0:
            metavar = a.metavar or ("{" + ",".join(a.choices) + "}" if a.choices else a.dest.upper())
            flags = ", ".join(_code(f"{o} {metavar}") for o in a.option_strings)
        if getattr(a, "required", False):
            flags += " (required)"
        what = a.help or ""
    else:
        flags = _code(a.metavar or a.dest) + (" (optional)" if a.nargs == "?" else "")
        what = POSITIONALS.get(a.dest, "")
    silent = a.default is None or a.default is False or a.default is argparse.SUPPRESS
    default = "" if silent or not a.option_strings else _code(str(a.default))
    return f"| {flags} | {default} | {_md(what)} |"


def _train_rows() -> list[str]:
    from gankit.cli.flags import _catalogue
    from gankit.config import options

    out: list[str] = []
    section = None
    for opt in options():
        if opt.section != section:
            section = opt.section
            out += ["", f"**{section}** (YAML section `{section}`)", "",
                    "| flag | YAML key | default | what |", "|---|---|---|---|"]
        if opt.type is bool:
            flag = f"`{opt.flag}`, `--no-{opt.flag[2:]}`"
        else:
            names = _catalogue(opt)
            metavar = "{" + ",".join(names) + "}" if names else opt.type.__name__.upper()
            flag = _code(f"{opt.flag} {metavar}{'[,...]' if opt.many else ''}")
        if opt.default is None:
            default = "unset"
        elif opt.type is bool:
            default = "on" if opt.default else "off"
        else:
            default = f"`{opt.default}`"
        unset = " An empty value (`\"\"`) unsets it." if opt.optional else ""
        out.append(f"| {flag} | `{opt.dotted}` | {default} | {_md(opt.help)}.{unset} |")
    return out


HEADER = """\
# Command line and configuration reference

<!-- Generated from the argparse parsers (src/gankit/cli) and the config schema
(src/gankit/config/schema.py) by `.venv/bin/python tests/test_docs.py`; tests/test_docs.py fails
when a flag or config key is missing here. Edit the generator, not this file. -->

`gankit COMMAND --help` prints the same, for one command. The user guide ([guide.md](guide.md))
explains what these do together; [failures.md](failures.md) which flags cure which failure.

## Conventions

- Flags are spelled in full: `--step 5` is not taken for `--steps`; a flag gankit does not know is
  named with the ones it may have meant.
- A user mistake ends in one line, `gankit: error: ...`, and exit status 2; Ctrl-C in 130.
- Every flag of `gankit train` is also a key of a YAML config (`--config FILE.yaml`): flat
  (`lr_g: 0.001`) or in its section (`train: {lr_g: 0.001}`), as a run's `config.yaml` writes it.
  Flags override the file. The same keys are the keyword arguments of `gankit.fit(...)`
  (`lr_g=0.001`).
- On/off settings have a flag and its negation (`--spectral-norm`, `--no-spectral-norm`).
- A setting shown as *unset* is decided once the data and the networks are known (the image size
  from the data, the width from the architecture, ...); the run's `config.yaml` records the value
  chosen and why, under `provenance:`.
- Environment: `GANKIT_FASHION_MNIST` (the folder of Fashion-MNIST's IDX files, like
  `--data-root`), `GANKIT_CACHE` (the cache of decoded folders and reference statistics, like
  `--cache-dir`; default `~/.cache/gankit`). `scripts/env.sh` preloads jemalloc (`LD_PRELOAD`),
  as `./run.sh` and `./test.sh` do.
"""


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


def render_cli_md() -> str:
    from gankit.cli import build_parser
    from gankit.train.rundir import RESUMABLE_KEYS

    parser = build_parser()
    subs = _subparsers(parser)
    helps = _command_help(parser)
    lines = [HEADER, "## Commands", "", "| command | what |", "|---|---|"]
    lines += [f"| [`gankit {name}`](#gankit-{name}) | {_md(helps.get(name, ''))} |" for name in subs]
    lines += ["", "`gankit --version` prints the version; `gankit -h`, `gankit COMMAND -h` the help."]
    for name, sub in subs.items():
        lines += ["", f"## gankit {name}", "", "```", sub.format_usage().strip(), "```", ""]
        lines += [" ".join((sub.description or _sentence(helps.get(name, ""))).split()), ""]
        if name == "train":
            lines += ["| flag | default | what |", "|---|---|---|"]
            lines += [_action_row(a) for a in sub._actions
                      if a.dest in ("config", "resume")]
            lines += ["", "Every other flag is a config key, here by section:"]
            lines += _train_rows()
            from gankit.config import options_by_key

            by_key = options_by_key()
            lines += ["", "### Resume", "",
                      "`gankit train --resume RUN_DIR` continues the run with its own config.yaml; "
                      "only these keys may change (how long and how visibly it runs, and how far "
                      "next-frame G's training clips roll out; not what the model is): " + ", ".join(f"`{by_key[k].flag}`" for k in sorted(RESUMABLE_KEYS))
                      + ". `--config` cannot be combined with `--resume`."]
        else:
            rows = [_action_row(a) for a in sub._actions if not isinstance(a, argparse._HelpAction)]
            if rows:
                lines += ["| argument | default | what |", "|---|---|---|", *rows]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- cli.md tests


def _all_flags() -> dict[str, set[str]]:
    from gankit.cli import build_parser

    out: dict[str, set[str]] = {}
    for name, sub in _subparsers(build_parser()).items():
        flags: set[str] = set()
        for a in sub._actions:
            flags.update(o for o in a.option_strings if o not in ("-h", "--help"))
            if isinstance(a, argparse.BooleanOptionalAction):
                flags.update(a.option_strings)
        out[name] = flags
    return out


def _section(text: str, command: str) -> str:
    m = re.search(rf"^## gankit {command}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert m, f"docs/cli.md has no section '## gankit {command}'"
    return m.group(1)


def test_cli_md_names_every_flag_of_every_command() -> None:
    text = CLI_MD.read_text()
    missing = []
    for command, flags in _all_flags().items():
        body = _section(text, command)
        missing += [f"gankit {command} {f}" for f in sorted(flags)
                    if not re.search(rf"`{re.escape(f)}[` ]", body)]
    assert not missing, (f"docs/cli.md does not mention {missing}; regenerate it: "
                         ".venv/bin/python tests/test_docs.py")


def test_cli_md_names_every_config_key() -> None:
    from gankit.config import options

    text = CLI_MD.read_text()
    missing = [o.dotted for o in options() if f"`{o.dotted}`" not in text]
    assert not missing, f"docs/cli.md does not name the config keys {missing}; regenerate it"


def test_cli_md_names_no_flag_that_does_not_exist() -> None:
    text = CLI_MD.read_text()
    # --step: the conventions' example of a flag that is refused for not being spelled in full
    known = set().union(*_all_flags().values()) | {"--version", "--help", "--step"}
    named = set(re.findall(r"(?<![\w-])(--[a-z][\w-]*)", text))
    assert not named - known, f"docs/cli.md names flags gankit does not have: {sorted(named - known)}"


def test_cli_md_is_what_the_generator_writes_for_every_flag() -> None:
    """Each command's usage line in docs/cli.md is the parser's: a changed flag shows up here. The
    parser is built in a fresh process, as `gankit` builds it: in this one the tests may have
    registered a task of their own (tests/toy_task.py), whose model --model's list would name."""
    code = ("import json; from gankit.cli import build_parser; from tests.test_docs import _subparsers; "
            "print(json.dumps({n: s.format_usage() for n, s in _subparsers(build_parser()).items()}))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "src")])})
    assert r.returncode == 0, r.stderr[-2000:]
    text = " ".join(CLI_MD.read_text().split())  # the wrapping follows the terminal's width
    for name, usage in json.loads(r.stdout).items():
        assert " ".join(usage.split()) in text, f"gankit {name}'s usage changed: regenerate docs/cli.md"


# the flags of other programs the pages show (torchrun), and the conventions' misspelt example
OTHER_FLAGS = {"--standalone", "--nproc-per-node", "--step"}


@pytest.mark.parametrize("page", OUR_DOCS)
def test_pages_name_only_flags_that_exist(page: str) -> None:
    known = set().union(*_all_flags().values()) | {"--version", "--help"} | OTHER_FLAGS
    named = set(re.findall(r"(?<![\w-])(--[a-z][\w-]*)", (REPO / page).read_text()))
    assert not named - known, f"{page} names flags gankit does not have: {sorted(named - known)}"


@pytest.mark.parametrize("page", OUR_DOCS)
def test_every_gankit_command_shown_parses(page: str) -> None:
    """Each `gankit ...` line of a code block is a command line gankit accepts (flags, choices,
    types), whether or not a test runs it."""
    from gankit.cli import build_parser
    from tests.test_readme import blocks

    parser = build_parser()
    bad = []
    for b in blocks(REPO / page):
        if b.lang not in ("bash", "sh"):
            continue
        for line in b.code.splitlines():
            words = shlex.split(line.split("#", 1)[0])
            if "gankit" not in words:
                continue
            argv = words[words.index("gankit") + 1:]
            try:
                parser.parse_args(argv)
            except Exception as e:  # the CLI's UsageError, or SystemExit
                bad.append(f"{line.strip()}: {e}")
    assert not bad, f"{page}: commands gankit refuses: {bad}"


# --------------------------------------------------------------------------- links and words


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {_anchor(h) for h in re.findall(r"^#+ (.+)$", text, re.M)}


@pytest.mark.parametrize("page", OUR_DOCS + ["docs/ARCHITECTURE.md", "docs/BENCHMARKS.md", "docs/DISTRIBUTED.md"])
def test_links_resolve(page: str) -> None:
    path = REPO / page
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)|src=\"([^\"]+)\"", text):
        target = next(t for t in target if t)
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        if not dest.exists() or (anchor and dest.suffix == ".md" and anchor not in _anchors(dest)):
            broken.append(target)
    assert not broken, f"{page}: broken links {broken}"


STALE = [
    (r"three failures", "gankit watches for four failures"),
    (r"not yet wired", "conditional and translation models are on the command line"),
    (r"every default written out", "config.yaml holds the values used and a provenance section"),
    (r"\bseeds\b", "an in-house word"),
    (r"\bissue \d+", "an in-house reference"),
]


@pytest.mark.parametrize("page", OUR_DOCS)
def test_no_stale_statements(page: str) -> None:
    text = (REPO / page).read_text()
    found = [f"{pat!r} ({why})" for pat, why in STALE if re.search(pat, text, re.I)]
    assert not found, f"{page} says {found}"


# --------------------------------------------------------------------------- the guide's Python


def test_the_guides_python_examples_run(tmp_path: Path) -> None:
    from tests.conftest import FMNIST, HAS_FMNIST

    if not HAS_FMNIST:
        pytest.skip(f"Fashion-MNIST not installed at {FMNIST}")
    from tests.test_readme import blocks, run_block

    runnable = [b for b in blocks(REPO / "docs" / "guide.md") if b.lang == "python" and b.test]
    assert len(runnable) >= 3
    for b in runnable:
        run_block(b, tmp_path)
    assert (tmp_path / "runs" / "nb" / "checkpoints" / "last").exists()
    assert (tmp_path / "runs" / "e" / "config.yaml").exists()


if __name__ == "__main__":  # regenerate docs/cli.md
    os.environ["COLUMNS"] = "80"  # argparse wraps the usage lines to the terminal: the same file anywhere
    sys.path.insert(0, str(REPO))
    CLI_MD.write_text(render_cli_md())
    print(f"wrote {CLI_MD}")
