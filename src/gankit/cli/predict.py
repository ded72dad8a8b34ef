"""``gankit predict RUN SEQUENCE --horizon H --out pred.gif``: a next-frame run (Mathieu, Couprie &
LeCun 2016) rolled out on a sequence, written as an animated GIF of input, prediction and (when
known) truth side by side."""

from __future__ import annotations

import argparse

from gankit.errors import GankitError, display_path


def cmd_predict(ns: argparse.Namespace) -> int:
    from gankit.data.base import to_float
    from gankit.predicting import load_predictor, sequence_for, strips, write_gif

    if not str(ns.out).lower().endswith(".gif"):
        raise GankitError(f"--out {display_path(ns.out)}: give a .gif file (the prediction is an animation)")
    lp = load_predictor(ns.source, ns.device)
    horizon = ns.horizon or int(lp.meta["horizon"])
    if not 1 <= horizon <= 1000:
        raise GankitError(f"--horizon must be 1 to 1000, got {horizon}")
    frames = sequence_for(lp, ns.sequence)  # (T, C, H, W) uint8
    context = lp.context
    pred = lp.predict(to_float(frames[None, :context]), horizon)[0]
    write_gif(strips(frames, context, pred), ns.out, ns.ms, ns.scale)
    known = len(frames) >= context + horizon
    print(f"{display_path(ns.out)}: {context + horizon} frames ({context} in, {horizon} predicted) of input | "
          f"prediction{' | truth' if known else ''}, from step {lp.step}")
    return 0


def cmd_eval_nextframe(ns: argparse.Namespace) -> int:
    """``gankit eval RUN`` of a next-frame run: its rollouts on held-out sequences per horizon,
    beside the copy-last-frame baseline."""
    import json

    from gankit.metrics.nextframe import SCORES, higher_is_better
    from gankit.predicting import evaluate_predictor, load_predictor

    if ns.real or ns.fake:
        raise GankitError("a next-frame run is scored against its own held-out sequences; leave out --real/--fake")
    lp = load_predictor(ns.source, ns.device)
    values = evaluate_predictor(lp, ns.n)
    if ns.json:
        print(json.dumps({"step": lp.step, **values}))
        return 0
    n, horizon = int(values.pop("n")), int(lp.meta["horizon"])
    print(f"G's rollouts on {n} held-out sequences at step {lp.step} ({lp.context} frames in), per horizon; "
          "(copy-last frame) in brackets")
    for s in SCORES:
        row = "  ".join(f"{values[f'{s}@{h}']:.4g} ({values[f'copy_last_{s}@{h}']:.4g})" for h in range(1, horizon + 1))
        print(f"  {s:<6}{'↑' if higher_is_better(s) else '↓'} {row}")
    return 0


def add_predict_parser(sub: argparse._SubParsersAction, device_help: str) -> None:
    pr = sub.add_parser(
        "predict", help="roll a next-frame run (--model nextframe) out on a sequence: an animated GIF",
        description="Predict the next frames of SEQUENCE with the G of RUN: its first context frames in, "
                    "then G rolled out on its own predictions for --horizon frames. The GIF shows input | "
                    "prediction | truth side by side (truth where the sequence holds those frames).")
    pr.add_argument("source", metavar="RUN_DIR|CHECKPOINT")
    pr.add_argument("sequence", metavar="SEQUENCE",
                    help="a folder of frames (name order), a video file, or test:N (the run's held-out "
                         "sequence N of a built-in set)")
    pr.add_argument("--horizon", type=int, default=0, help="frames to predict (default: the run's horizon)")
    pr.add_argument("--out", required=True, metavar="FILE.gif", help="the animated GIF to write")
    pr.add_argument("--ms", type=int, default=200, help="milliseconds per frame (200)")
    pr.add_argument("--scale", type=int, default=2, help="enlarge the pixels this many times (2)")
    pr.add_argument("--device", default="auto", help=device_help)
    pr.set_defaults(func=cmd_predict)


__all__ = ["add_predict_parser", "cmd_eval_nextframe", "cmd_predict"]
