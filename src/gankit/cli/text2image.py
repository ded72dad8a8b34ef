"""``gankit sample RUN --text CAPTION`` and ``gankit eval RUN`` for text -> image runs
(``--model gan-int-cls``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gankit.errors import GankitError, display_path

LABEL_CHARS = 40  # a caption naming a grid row is cut to this


def wants_text(ns: argparse.Namespace) -> bool:
    """Whether `gankit sample` is asked for text -> image: --text given, or a text -> image run."""
    from gankit.text_sampling import is_text_checkpoint

    return bool(getattr(ns, "text", None)) or is_text_checkpoint(ns.source)


def cmd_sample_text(ns: argparse.Namespace) -> int:
    """N images of each --text caption: a grid with one row per caption (a .png, ...) or a folder
    of PNGs (caption by caption)."""
    from gankit.fsutil import DiskFull, clean_stale_temps
    from gankit.images import format_of, save_each, save_grid
    from gankit.text_sampling import is_text_checkpoint, load_text_generator

    if not is_text_checkpoint(ns.source):
        raise GankitError(f"--text needs a text -> image run (gankit train --model gan-int-cls); "
                          f"{display_path(ns.source)} is not one")
    captions = [" ".join(t.split()) for t in ns.text or []]
    if not captions:
        raise GankitError(f"{display_path(ns.source)} makes images from text: give the caption with --text "
                          '"a small dark sneaker in the top left corner" (repeat --text for more rows)')
    if any(not c for c in captions):
        raise GankitError("--text is empty: give a caption, e.g. --text \"a large bright bag at the bottom\"")
    if ns.cls is not None or ns.interpolate:
        raise GankitError("--class and --interpolate are for noise-to-image runs; with --text the caption "
                          "says what to draw")
    if ns.n < 1:
        raise GankitError(f"-n must be at least 1, got {ns.n}")
    lg = load_text_generator(ns.source, ns.device)
    readings = lg.read(captions, ns.unknown_words)
    for r in readings:  # what G is given, when it is not what was typed
        if r.replaced:
            print(f"read {r.text!r} as {r.read_as!r} (words no training caption used: {r.describe()})")
    x = lg.sample([r.read_as for r in readings], ns.n, ns.seed, "keep")  # caption by caption
    out = Path(ns.out)
    clean_stale_temps(out.parent, out.name)
    try:
        if format_of(out):  # one row per caption, named when there are several
            out.parent.mkdir(parents=True, exist_ok=True)
            labels = [c if len(c) <= LABEL_CHARS else c[:LABEL_CHARS - 1] + "…" for c in captions]
            nrow = ns.n if len(captions) > 1 else min(ns.n, 8)
            save_grid(x, out, nrow=nrow, row_labels=labels if len(captions) > 1 else None)
        else:
            save_each(x, out)
    except DiskFull:
        raise
    except OSError as e:
        raise GankitError(f"cannot write {display_path(out)}: {e.strerror}; choose another --out") from None
    what = f"{captions[0]!r}" if len(captions) == 1 else f"{len(captions)} captions"
    print(f"{ns.n} samples of {what} from step {lg.step} -> {display_path(out)}")
    return 0


def cmd_eval_text(ns: argparse.Namespace) -> int:
    """`gankit eval RUN` of a text -> image run on captioned-fashion: the attribute scores on each
    test split (``--n`` items each, at most 3000), and the caption-agnostic baseline's."""
    from gankit.text_sampling import load_text_generator, score_builtin

    if ns.real or ns.fake or ns.metrics or ns.per_class:
        raise GankitError("a text -> image run is scored by its captions' attributes; --real, --fake, "
                          "--metrics and --per-class do not apply")
    lg = load_text_generator(ns.source, ns.device)
    n = max(2, min(ns.n, 3000))
    scores = score_builtin(lg, n, ns.device, ns.seed, unknown_words=ns.unknown_words)
    baseline = score_builtin(lg, n, ns.device, ns.seed, shuffle=True, unknown_words=ns.unknown_words)
    if ns.json:
        print(json.dumps({"step": lg.step, "n": n, **scores, "baseline": baseline}))
        return 0
    print(f"{n} captions per split at step {lg.step}; accuracy of what the pixels show (caption-agnostic "
          "baseline: the same G, the captions shuffled)", file=sys.stderr)
    for suffix, name in (("", "test-seen"), ("_combos", "held-out combinations"), ("_wordings", "held-out wordings")):
        cells = ", ".join(f"{a} {scores[f'{a}_acc{suffix}']:.1%} ({baseline[f'{a}_acc{suffix}']:.1%})"
                          for a in ("class", "position", "size", "brightness"))
        print(f"{name}: {cells}; fid {scores[f'fid{suffix}']:.2f}")
    return 0


__all__ = ["cmd_eval_text", "cmd_sample_text", "wants_text"]
