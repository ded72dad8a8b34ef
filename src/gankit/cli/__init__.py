"""The ``gankit`` command: train, sample, report, eval, doctor, translate, predict, lab, list.

Every user mistake ends in one line, ``gankit: error: ...``, saying what to do, and exit status 2.
The library's messages name config keys (``train.lr_g``); here they are shown as flags (``--lr-g``).
Nothing in a message reaches the terminal raw: control characters (ESC, BEL, CR, ...) and bytes of
file names that are not UTF-8 are printed as escapes (``gankit.errors.escape_text``), and a line is
cut at ``MAX_LINE`` characters.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import sys
from typing import Any, NoReturn

from gankit.cli.commands import cmd_doctor, cmd_lab, cmd_list, cmd_report, cmd_sample, cmd_train
from gankit.cli.evaluate import cmd_eval, cmd_translate, metric_names
from gankit.cli.flags import add_config_flags, flags_for_keys
from gankit.cli.predict import add_predict_parser
from gankit.errors import GankitError, escape_text
from gankit.fsutil import DiskFull, disk_full_reason, is_disk_full, written_path

EXIT_USAGE = 2
MAX_LINE = 2000
"""The most characters of one line of an error message (a value given whole is cut before it)."""
DEVICE_HELP = "auto (a GPU if torch sees one, else the CPU, as gankit train) | cpu | cuda | cuda:N"


class UsageError(Exception):
    """A command line argparse could not take (its message, one line)."""


class Parser(argparse.ArgumentParser):
    """argparse, but a flag must be spelled in full (``--step`` is not ``--steps``) and a mistake
    raises ``UsageError`` instead of printing the whole usage block: ``main`` says it in one line,
    with the flags it may have meant."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def did_you_mean(parser: argparse.ArgumentParser, argv: list[str], message: str) -> str:
    """``message`` with the flags of the command in ``argv`` that an unknown flag may have meant:
    those it begins (``--lr`` -> ``--lr-g``, ``--lr-d``, ...) or that are spelled like it."""
    command = next((a for a in argv if not a.startswith("-")), None)
    sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    target = sub.choices.get(command, parser) if sub is not None and command else parser
    known = [o for a in target._actions for o in a.option_strings if o.startswith("--")]
    hints = []
    for word in re.findall(r"(--[\w-]+)", message):
        if word in known or len(word) > 100:  # difflib's cost grows with the word
            continue
        near = [o for o in known if o.startswith(word + "-")] or difflib.get_close_matches(word, known, n=3)
        if near:
            hints.append(f"did you mean {' or '.join(near[:4])} (for {word})?")
    return message + ("; " + " ".join(hints) if hints else "") + (
        f" (gankit {command} --help lists the flags)" if command in (sub.choices if sub else {}) else "")


def say_error(message: str, prefix: str = "gankit: error: ") -> None:
    """Print an error to stderr, escaped: its own line breaks kept (a list of skipped files), every
    other control character, and any line beyond ``MAX_LINE`` characters, made harmless."""
    lines = escape_text(message, keep="\n").split("\n")
    text = "\n".join(line if len(line) <= MAX_LINE else line[: MAX_LINE - 1] + "…" for line in lines)
    print(prefix + text, file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    from gankit import __version__

    p = Parser(prog="gankit", description="Train, watch and sample generative adversarial networks.")
    p.add_argument("--version", action="version", version=f"gankit {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train a GAN (defaults: DCGAN on Fashion-MNIST)",
                       description="Train a GAN. Every flag can also live in --config FILE.yaml; "
                                   "flags override the file.")
    t.add_argument("--config", metavar="FILE.yaml", help="YAML file of settings (flat keys or sections)")
    t.add_argument("--resume", metavar="RUN_DIR",
                   help="continue the run in RUN_DIR from its last checkpoint, exactly")
    add_config_flags(t)
    t.set_defaults(func=cmd_train)

    s = sub.add_parser("sample", help="draw samples from a trained G, or turn a photo round (novel-view)")
    s.add_argument("source", metavar="RUN_DIR|CHECKPOINT")
    s.add_argument("-n", type=int, default=64, help="number of samples or interpolation frames (64)")
    s.add_argument("--out", required=True, metavar="FILE.png|FILE.jpg|DIR",
                   help="a .png, .jpg, .jpeg, .webp or .bmp file gets one grid (or strip) in that format; "
                        "any other path is a folder of N PNGs")
    s.add_argument("--seed", type=int, default=0, help="seed of the latent vectors (0)")
    s.add_argument("--interpolate", action="store_true",
                   help="a strip of N frames walking the latent space between two random z")
    s.add_argument("--class", dest="cls", metavar="NAME|INDEX",
                   help="a conditional run: all samples of this class (default: a grid with one row "
                        "per class, ceil(N / classes) samples each, one latent per column)")
    s.add_argument("--text", action="append", metavar="CAPTION",
                   help="a text -> image run (--model gan-int-cls): N images of this caption; repeat it "
                        "for one row per caption, the same noise down each column")
    s.add_argument("--unknown-words", choices=("rewrite", "nearest", "keep"),
                   help="a text -> image run, a caption with words no training caption used: rewrite: "
                        "each becomes the training word (or nothing) that keeps the caption's meaning "
                        "closest; nearest: that, then the training caption nearest it; keep: given to G "
                        "as typed (default: the run's text.unknown_words); what G is given is printed")
    s.add_argument("--input", metavar="FILE",
                   help="a novel-view run (--model novel-view): the photo of an object to turn round, "
                        "taken to be seen at azimuth 0 and the run's usual elevation")
    s.add_argument("--angles", metavar="START:STOP:STEP|A,B,...",
                   help="a novel-view run: the azimuths in degrees, one frame each (0:360:30: 12 frames, "
                        "360 excluded); --out FILE.gif gets an animated turntable")
    s.add_argument("--device", default="auto", help=DEVICE_HELP)
    s.set_defaults(func=cmd_sample)

    r = sub.add_parser("report", help="(re)build RUN_DIR/report.html, also while the run trains")
    r.add_argument("run_dir", metavar="RUN_DIR")
    r.add_argument("--out", metavar="FILE.html", help="where to write it (RUN_DIR/report.html)")
    r.set_defaults(func=cmd_report)

    e = sub.add_parser(
        "eval", help="measure samples: FID, KID, IS, precision/recall, density/coverage, classes, modes",
        description="Evaluate a run or checkpoint against its training data, or two folders of images. "
                    "Nothing is downloaded: features come from gankit's shipped Fashion-MNIST classifier "
                    "(fmnist) or from an Inception weights file you provide (inception:PATH).")
    e.add_argument("source", nargs="?", metavar="RUN_DIR|CHECKPOINT")
    e.add_argument("--real", metavar="DIR", help="folder of real images (with --fake, instead of a run)")
    e.add_argument("--fake", metavar="DIR", help="folder of generated images")
    e.add_argument("--metrics", help="comma-separated: " + ", ".join(metric_names())
                   + " (default: all the features allow; modes for 2-D runs)")
    e.add_argument("--n", type=int, default=10_000, help="generated samples (10000)")
    e.add_argument("--features", default="fmnist", help="fmnist | inception:PATH (fmnist)")
    e.add_argument("--image-size", help="N or HxW to decode folders at (28 for fmnist, 299 for inception)")
    e.add_argument("--seed", type=int, default=12345, help="seed of the latent vectors (12345)")
    e.add_argument("--device", default="auto", help=DEVICE_HELP)
    e.add_argument("--per-class", action="store_true",
                   help="a conditional run: FID of each class against its real images, and the fmnist "
                        "classifier's accuracy on each class asked for (Fashion-MNIST classes)")
    e.add_argument("--n-per-class", type=int, default=1000, help="samples per class with --per-class (1000)")
    e.add_argument("--json", action="store_true", help="print the result as JSON")
    e.add_argument("--unknown-words", choices=("rewrite", "nearest", "keep"),
                   help="a text -> image run: how its held-out wordings' new words are read, as `gankit "
                        "sample --unknown-words` (default: the run's text.unknown_words)")
    e.set_defaults(func=cmd_eval)

    dr = sub.add_parser("doctor", help="diagnose a run: diminished gradient, mode collapse, "
                        "non-convergence, divergence, with the cures to try",
                        description="Replay RUN_DIR/metrics.jsonl through the same rules the trainer "
                                    "applies live, for a finished or running run.")
    dr.add_argument("run_dir", metavar="RUN_DIR")
    dr.set_defaults(func=cmd_doctor)

    tr = sub.add_parser(
        "translate", help="apply a trained image translator (pix2pix, cyclegan, dtn) to a folder of images",
        description="Translate every image of INPUT_DIR (searched recursively; files that cannot be used "
                    "are skipped and listed) with the generator of RUN, and write one PNG per input to "
                    "OUT_DIR under the same relative name. Inputs are scaled to cover the run's image size "
                    "and centre-cropped.")
    tr.add_argument("source", metavar="RUN_DIR|CHECKPOINT")
    tr.add_argument("input_dir", metavar="INPUT_DIR")
    tr.add_argument("--out", required=True, metavar="OUT_DIR", help="folder for the translated PNGs")
    tr.add_argument("--direction", default="AtoB", choices=("AtoB", "BtoA"),
                    help="AtoB (default), or BtoA for a cyclegan run (its G_BA)")
    tr.add_argument("--batch-size", type=int, default=64, help="images per forward pass (64)")
    tr.add_argument("--device", default="auto", help=DEVICE_HELP)
    tr.set_defaults(func=cmd_translate)

    add_predict_parser(sub, DEVICE_HELP)
    lb = sub.add_parser(
        "lab", help="watch and steer runs live in a browser: curves, samples, 2-D fields, pause, rates",
        description="Serve a local web app over the runs under RUNS_DIR: live curves, sample grids with a "
                    "step slider, 2-D runs' probability field, warnings on a timeline, steering (pause, "
                    "resume, step D or G, learning rates, k, the loss, stop) through each run's control.jsonl, "
                    "a latent explorer, and new runs from presets. Binds 127.0.0.1; the "
                    "address printed at start carries the token that steering needs.")
    lb.add_argument("runs_dir", nargs="?", default="runs", metavar="RUNS_DIR",
                    help="the folder the runs are in (runs)")
    lb.add_argument("--port", type=int, default=8765, help="port to listen on (8765; 0: any free port)")
    lb.add_argument("--host", help="address to listen on (127.0.0.1); another one lets other machines in: "
                                   "a warning is printed")
    lb.add_argument("--export", metavar="FILE.html",
                    help="instead of serving: write the page of one run (RUNS_DIR is then a run directory) "
                         "as a self-contained HTML file, and exit")
    lb.set_defaults(func=cmd_lab)

    ls = sub.add_parser("list", help="the catalogue: models, losses, datasets, metrics, features")
    ls.set_defaults(func=cmd_list)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gankit`` console script."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    try:
        ns = parser.parse_args(argv)
    except UsageError as e:  # one line, not argparse's usage block
        say_error(did_you_mean(parser, argv, str(e)))
        return EXIT_USAGE
    try:
        if vars(ns).get("device"):  # sample, eval, translate: one default with train (auto)
            from gankit.train.state import resolve_device

            ns.device = str(resolve_device(ns.device))
        return ns.func(ns)
    except GankitError as e:
        say_error(flags_for_keys(str(e)))
        return EXIT_USAGE
    except KeyboardInterrupt as e:
        signum = getattr(e, "signum", 2)  # gankit.train.lifecycle.Stopped: SIGTERM's stop says so itself
        say_error(str(e), "gankit: " if signum != 2 else "gankit: interrupted" + (": " if str(e) else ""))
        return 128 + signum
    except Exception as e:  # a full disk that no message named yet (ENOSPC, EDQUOT): one line too
        if not is_disk_full(e):
            raise
        path = written_path(e)
        say_error(str(DiskFull(path, e)) if path else f"{disk_full_reason(e)} ({e}): free some space and run "
                                                      "it again")
        return EXIT_USAGE


def console() -> NoReturn:
    """The ``gankit`` console script and ``python -m gankit``: ``main``, then exit with its status.

    A rank of a ``torchrun`` launch (WORLD_SIZE > 1) leaves without the interpreter's finalisation,
    its streams flushed first: ranks on gloo were seen to abort there ("terminate called without an
    active exception", SIGABRT; a C++ thread of the process-group machinery destroyed while still
    joinable) after the run had finished and written its checkpoint and report, so that a complete
    run exited non-zero. Everything a command writes is closed by then (run files through context
    managers, checkpoints renamed into place, the process group destroyed)."""
    try:
        code = main() or 0
    except BrokenPipeError:  # `gankit list | head`: the reader left; no traceback, and nothing more
        # written at exit either (Python's documented way: stdout pointed at devnull)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 1
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    console()
