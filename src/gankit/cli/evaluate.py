"""``gankit eval`` (a run, a conditional run's classes, a translator, or two folders) and
``gankit translate``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from gankit.errors import GankitError, display_path
from gankit.fsutil import clean_stale_temps


def metric_names() -> list[str]:
    from gankit.metrics import METRICS

    return METRICS.names()


def cmd_eval(ns: argparse.Namespace) -> int:
    from gankit.translating import is_translator_checkpoint

    if ns.source and not (ns.real or ns.fake) and is_translator_checkpoint(ns.source):
        return cmd_eval_translator(ns)
    from gankit.predicting import is_nextframe_checkpoint

    if ns.source and is_nextframe_checkpoint(ns.source):  # next frame: gankit.cli.predict
        from gankit.cli.predict import cmd_eval_nextframe

        return cmd_eval_nextframe(ns)
    from gankit.text_sampling import is_text_checkpoint

    if ns.source and is_text_checkpoint(ns.source):  # text -> image: gankit.cli.text2image
        from gankit.cli.text2image import cmd_eval_text

        return cmd_eval_text(ns)
    if ns.unknown_words:
        raise GankitError("--unknown-words is for text -> image runs; this is not one")
    from gankit.view_sampling import is_view_checkpoint

    if ns.source and not (ns.real or ns.fake) and is_view_checkpoint(ns.source):  # gankit.cli.views
        from gankit.cli.views import cmd_eval_views

        return cmd_eval_views(ns)
    import json

    from gankit.config import parse_image_size
    from gankit.metrics import evaluate_folders, evaluate_generator, higher_is_better, parse_metrics
    from gankit.rundir import RunDir

    metrics = parse_metrics(ns.metrics) if ns.metrics else None
    if ns.n < 2:
        raise GankitError(f"--n must be at least 2, got {ns.n}")
    if ns.real or ns.fake:
        if not (ns.real and ns.fake) or ns.source:
            raise GankitError("compare two folders with --real DIR --fake DIR (and no run directory)")
        size = parse_image_size(ns.image_size) if ns.image_size else None
        res = evaluate_folders(ns.real, ns.fake, metrics, ns.features, size, ns.device, progress=True)
        run, step = None, None
    else:
        if not ns.source:
            raise GankitError("give a run directory or checkpoint, or --real DIR --fake DIR")
        from gankit.sampling import load_generator

        lg = load_generator(ns.source, ns.device)
        if ns.per_class:
            return _eval_per_class(ns, lg)
        res = evaluate_generator(lg.G, lg.config, ns.n, metrics, ns.features, ns.device, ns.seed,
                                 progress=True)
        step = lg.step
        run = RunDir(lg.run_dir) if lg.run_dir else None
    for warning in res.warnings:
        print(f"gankit: warning: {warning}", file=sys.stderr)
    if ns.json:
        print(json.dumps({"step": step, **res.values, "n_fake": res.n_fake, "n_real": res.n_real,
                          "features": res.features, "seconds": round(res.seconds, 2),
                          "warnings": res.warnings}))
    else:
        where = f" at step {step}" if step is not None else ""
        print(f"{res.n_fake} generated vs {res.n_real} real{where}, features {res.features}, "
              f"{res.seconds:.1f} s (↑ higher is better, ↓ lower)")
        for k, v in res.values.items():
            print(f"  {k:<12} {v:<12.6g} {'↑' if higher_is_better(k) else '↓'}")
    if run is not None:
        run.append({"step": step, **res.values, "eval_n": res.n_fake, "eval_features": res.features})
    return 0


def _eval_per_class(ns: argparse.Namespace, lg: Any) -> int:
    """``gankit eval RUN --per-class``: each class's FID and classifier accuracy."""
    import json
    import time

    from gankit.metrics import evaluate_per_class
    from gankit.models.conditional import class_names
    from gankit.rundir import RunDir

    if not lg.num_classes:
        raise GankitError(f"--per-class needs a conditional run (--conditional); {ns.source} is not one")
    if ns.n_per_class < 2:
        raise GankitError(f"--n-per-class must be at least 2, got {ns.n_per_class}")
    t0 = time.perf_counter()
    names = class_names(lg.num_classes, lg.classes)
    values = evaluate_per_class(lg.G, lg.config, names, ns.n_per_class, ns.features, ns.device, ns.seed)
    if ns.json:
        print(json.dumps({"step": lg.step, **values, "n_per_class": ns.n_per_class}))
    else:
        print(f"{ns.n_per_class} generated per class at step {lg.step}, features {ns.features}, "
              f"{time.perf_counter() - t0:.1f} s")
        print(f"  {'class':<16} {'fid':>8} {'accuracy':>9}")
        for c in names:
            acc = values.get(f"acc/{c}")
            print(f"  {c:<16} {values[f'fid/{c}']:8.3f} " + (f"{acc:9.3f}" if acc is not None else f"{'-':>9}"))
        print(f"  {'mean':<16} {values['class_fid']:8.3f} "
              + (f"{values['class_acc']:9.3f}" if "class_acc" in values else f"{'-':>9}"))
    if lg.run_dir is not None:
        RunDir(lg.run_dir).append({"step": lg.step, **values, "n_per_class": ns.n_per_class})
    return 0


def cmd_eval_translator(ns: argparse.Namespace) -> int:
    """``gankit eval RUN`` for pix2pix / cyclegan: L1, PSNR, SSIM, classifier accuracy, cycle error
    on the task's held-out inputs (at most --n), printed and appended to metrics.jsonl."""
    import json

    from gankit.checkpoint import load_checkpoint
    from gankit.rundir import RunDir
    from gankit.translating import evaluate_translator

    if ns.metrics or ns.features != "fmnist" or ns.per_class:
        raise GankitError(f"{ns.source} is an image translator: it is scored by L1, PSNR, SSIM, the fmnist "
                          "classifier's accuracy and the cycle error; leave out --metrics, --features "
                          "and --per-class")
    res = evaluate_translator(ns.source, ns.n, ns.device)
    ckpt = load_checkpoint(ns.source, with_train_state=False)
    step = ckpt.step
    if ns.json:
        print(json.dumps({"step": step, **res.values, "eval_n": res.n,
                          **({"eval_n_BtoA": res.n_BtoA} if res.n_BtoA is not None else {}), "split": res.split,
                          "seconds": round(res.seconds, 2)}))
    else:
        other = f" ({res.n_BtoA} the other way)" if res.n_BtoA is not None else ""
        print(f"{res.n} inputs of the {res.split} split{other} at step {step}, {res.seconds:.1f} s")
        for k, v in res.values.items():
            print(f"  {k:<16} {v:.6g}")
    run = RunDir.of_checkpoint(ckpt.path)
    if run is not None:
        run.append({"step": step, **res.values, "eval_n": res.n,
                    **({"eval_n_BtoA": res.n_BtoA} if res.n_BtoA is not None else {})})
    return 0


def cmd_translate(ns: argparse.Namespace) -> int:
    """``gankit translate RUN INPUT_DIR --out OUT_DIR``: one PNG per readable input image."""
    from collections import Counter

    import torch

    from gankit.data.base import to_float
    from gankit.data.folder import load_image_folder
    from gankit.images import save_png, to_uint8
    from gankit.translating import load_translator, translate_images

    if ns.batch_size < 1:
        raise GankitError(f"--batch-size must be at least 1, got {ns.batch_size}")
    lt = load_translator(ns.source, ns.device)
    G = lt.generator(ns.direction)
    c, h, w = lt.meta["shape_A" if ns.direction == "AtoB" else "shape_B"]
    if not Path(ns.input_dir).is_dir():
        raise GankitError(f"INPUT_DIR {display_path(ns.input_dir)} is not a folder; give the folder of "
                          "images to translate")
    found = load_image_folder(ns.input_dir, (h, w), c)  # corrupt files are skipped and listed
    print(found.summary(), file=sys.stderr)
    out = Path(ns.out)
    clean_stale_temps(out)  # the half-written files of a killed `gankit translate` into this folder
    # x.jpg -> x.png; where two inputs would share that name (x.jpg, x.png), both keep theirs + .png
    stems = Counter(str(Path(f).with_suffix("")) for f in found.files)
    names = [str(Path(f).with_suffix(".png")) if stems[str(Path(f).with_suffix(""))] == 1 else f + ".png"
             for f in found.files]
    with torch.inference_mode():
        for i in range(0, len(found.files), ns.batch_size):
            x = to_float(found.images[i:i + ns.batch_size]).to(ns.device)
            pixels = to_uint8(translate_images(G, x)).permute(0, 2, 3, 1).numpy()  # (n, H, W, C)
            for name, pic in zip(names[i:i + ns.batch_size], pixels, strict=True):
                target = out / name
                try:
                    save_png(pic, target)
                except OSError as e:
                    raise GankitError(f"cannot write {display_path(target)}: {e.strerror}; choose another "
                                      "--out") from None
    print(f"{len(found.files)} images translated {ns.direction} at step {lt.step} -> {display_path(out)}")
    return 0
