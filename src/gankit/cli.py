"""The ``gankit`` command: train, sample, report, list.

Every user mistake ends in one line, ``gankit: error: ...``, saying what to do, and exit status 2.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from gankit.config import Option, build_config, options, parse_cli_value
from gankit.errors import GankitError

EXIT_USAGE = 2


def _add_config_flags(p: argparse.ArgumentParser) -> None:
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
    from gankit.models import MODELS

    registries = {"model.arch": MODELS, "train.loss": LOSSES}
    reg = registries.get(opt.dotted)
    if opt.dotted == "model.arch":  # the GANs and the image translators (gankit.models.translators)
        from gankit.models.translators import TRANSLATORS

        return MODELS.names() + TRANSLATORS.names()
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


def _overrides(ns: argparse.Namespace) -> dict[str, Any]:
    keys = {o.key for o in options()}
    return {k: v for k, v in vars(ns).items() if k in keys}


def build_parser() -> argparse.ArgumentParser:
    from gankit import __version__

    p = argparse.ArgumentParser(
        prog="gankit", description="Train, watch and sample generative adversarial networks.")
    p.add_argument("--version", action="version", version=f"gankit {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train a GAN (defaults: DCGAN on Fashion-MNIST)",
                       description="Train a GAN. Every flag can also live in --config FILE.yaml; "
                                   "flags override the file.")
    t.add_argument("--config", metavar="FILE.yaml", help="YAML file of settings (flat keys or sections)")
    t.add_argument("--resume", metavar="RUN_DIR",
                   help="continue the run in RUN_DIR from its last checkpoint, exactly")
    _add_config_flags(t)
    t.set_defaults(func=cmd_train)

    s = sub.add_parser("sample", help="draw samples from a trained G")
    s.add_argument("source", metavar="RUN_DIR|CHECKPOINT")
    s.add_argument("-n", type=int, default=64, help="number of samples or interpolation frames (64)")
    s.add_argument("--out", required=True, metavar="FILE.png|DIR",
                   help="a .png file gets one grid (or strip); any other path is a folder of N PNGs")
    s.add_argument("--seed", type=int, default=0, help="seed of the latent vectors (0)")
    s.add_argument("--interpolate", action="store_true",
                   help="a strip of N frames walking the latent space between two random z")
    s.add_argument("--class", dest="cls", metavar="NAME|INDEX",
                   help="a conditional run: all samples of this class (default: a grid with one row "
                        "per class, ceil(N / classes) samples each, one latent per column)")
    s.add_argument("--device", default="cpu", help="cpu | cuda (cpu)")
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
    e.add_argument("--metrics", help="comma-separated: " + ", ".join(_metric_names())
                   + " (default: all the features allow; modes for 2-D runs)")
    e.add_argument("--n", type=int, default=10_000, help="generated samples (10000)")
    e.add_argument("--features", default="fmnist", help="fmnist | inception:PATH (fmnist)")
    e.add_argument("--image-size", help="N or HxW to decode folders at (28 for fmnist, 299 for inception)")
    e.add_argument("--seed", type=int, default=12345, help="seed of the latent vectors (12345)")
    e.add_argument("--device", default="cpu", help="cpu | cuda (cpu)")
    e.add_argument("--per-class", action="store_true",
                   help="a conditional run: FID of each class against its real images, and the fmnist "
                        "classifier's accuracy on each class asked for (Fashion-MNIST classes)")
    e.add_argument("--n-per-class", type=int, default=1000, help="samples per class with --per-class (1000)")
    e.add_argument("--json", action="store_true", help="print the result as JSON")
    e.set_defaults(func=cmd_eval)

    dr = sub.add_parser("doctor", help="diagnose a run: diminished gradient, mode collapse, "
                        "non-convergence, divergence, with the cures to try",
                        description="Replay RUN_DIR/metrics.jsonl through the same rules the trainer "
                                    "applies live, for a finished or running run.")
    dr.add_argument("run_dir", metavar="RUN_DIR")
    dr.set_defaults(func=cmd_doctor)

    tr = sub.add_parser(
        "translate", help="apply a trained image translator (pix2pix, cyclegan) to a folder of images",
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
    tr.add_argument("--device", default="cpu", help="cpu | cuda (cpu)")
    tr.set_defaults(func=cmd_translate)

    ls = sub.add_parser("list", help="the catalogue: models, losses, datasets, metrics, features")
    ls.set_defaults(func=cmd_list)
    return p


def cmd_train(ns: argparse.Namespace) -> int:
    from gankit.api import train_config

    overrides = _overrides(ns)
    if ns.resume:
        if ns.config:
            raise GankitError("--config cannot be combined with --resume: the run keeps its own config")
        train_config(None, resume=ns.resume, overrides=overrides)
    else:
        train_config(build_config(ns.config, overrides))  # resolved there, once
    return 0


def cmd_sample(ns: argparse.Namespace) -> int:
    from gankit.translating import is_translator_checkpoint

    if is_translator_checkpoint(ns.source):
        raise GankitError(f"{ns.source} is an image translator, which draws no samples from noise; apply it "
                          f"with `gankit translate {ns.source} INPUT_DIR --out OUT_DIR`")
    import math

    import torch

    from gankit.images import save_each, save_grid
    from gankit.models import sample_prior
    from gankit.models.conditional import class_names, class_rows, default_labels, parse_class
    from gankit.sampling import generate, interpolate_latents, load_generator

    if ns.n < 1:
        raise GankitError(f"-n must be at least 1, got {ns.n}")
    lg = load_generator(ns.source, ns.device)
    m = lg.config.model
    K = lg.num_classes
    if ns.cls is not None and not K:
        raise GankitError(f"--class needs a conditional run (--conditional); {ns.source} is not one")
    g = torch.Generator().manual_seed(ns.seed)
    n, nrow, rows, y = ns.n, ns.n if ns.interpolate else None, None, None
    if ns.interpolate:
        ends = sample_prior(m.prior, 2, m.latent_dim, generator=g)
        z = interpolate_latents(ends[0], ends[1], n, m.prior)
    elif K and ns.cls is None and lg.shape.is_image:
        # one row per class, the same latent down each column: what changes across a row is the
        # style z, down a column the class y
        nrow = math.ceil(n / K)
        y = class_rows(K, nrow, max_rows=K)
        z = sample_prior(m.prior, nrow, m.latent_dim, generator=g)[torch.arange(len(y)) % nrow]
        n, rows = len(y), class_names(K, lg.classes)
    else:
        z = sample_prior(m.prior, n, m.latent_dim, generator=g)
    if K and y is None:
        y = torch.full((n,), parse_class(ns.cls, K, lg.classes)) if ns.cls is not None \
            else default_labels(n, K)
    x = generate(lg.G, z.to(ns.device), None if y is None else y.to(ns.device)).cpu()
    out = Path(ns.out)
    try:
        if not lg.shape.is_image:
            _save_points(lg, x, out)
        elif out.suffix.lower() == ".png":
            out.parent.mkdir(parents=True, exist_ok=True)
            save_grid(x, out, nrow=nrow, row_labels=rows)
        else:
            save_each(x, out)
    except OSError as e:
        raise GankitError(f"cannot write {out}: {e.strerror}; choose another --out") from None
    what = f" of class {class_names(K, lg.classes)[int(y[0])]}" if ns.cls is not None and y is not None else ""
    print(f"{n} {'frames' if ns.interpolate else 'samples'}{what} from step {lg.step} -> {out}")
    return 0


def _save_points(lg: Any, x: Any, out: Path) -> None:
    from gankit.fsutil import atomic_write_bytes, atomic_write_text
    from gankit.report import plot_field
    from gankit.sampling import d_probability_field, points_extent

    pts = x.numpy()
    if out.suffix.lower() == ".png":
        extent = lg.extent or points_extent(pts)
        prob = d_probability_field(lg.D, extent)
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out, plot_field(pts[:0], pts, prob, extent, title=f"{len(pts)} samples"))
    else:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "points.csv", "x,y\n" + "".join(f"{a:.6g},{b:.6g}\n" for a, b in pts))


def _metric_names() -> list[str]:
    from gankit.metrics import METRICS

    return METRICS.names()


def cmd_eval(ns: argparse.Namespace) -> int:
    from gankit.translating import is_translator_checkpoint

    if ns.source and not (ns.real or ns.fake) and is_translator_checkpoint(ns.source):
        return cmd_eval_translator(ns)
    import json

    from gankit.config import parse_image_size
    from gankit.metrics import evaluate_folders, evaluate_generator, parse_metrics
    from gankit.rundir import RunDir

    metrics = parse_metrics(ns.metrics) if ns.metrics else None
    if ns.n < 2:
        raise GankitError(f"--n must be at least 2, got {ns.n}")
    if ns.real or ns.fake:
        if not (ns.real and ns.fake) or ns.source:
            raise GankitError("compare two folders with --real DIR --fake DIR (and no run directory)")
        size = parse_image_size(ns.image_size) if ns.image_size else None
        res = evaluate_folders(ns.real, ns.fake, metrics, ns.features, size, ns.device)
        run, step = None, None
    else:
        if not ns.source:
            raise GankitError("give a run directory or checkpoint, or --real DIR --fake DIR")
        from gankit.sampling import load_generator

        lg = load_generator(ns.source, ns.device)
        if ns.per_class:
            return _eval_per_class(ns, lg)
        res = evaluate_generator(lg.G, lg.config, ns.n, metrics, ns.features, ns.device, ns.seed)
        step = lg.step
        run = RunDir(lg.run_dir) if lg.run_dir else None
    if ns.json:
        print(json.dumps({"step": step, **res.values, "n_fake": res.n_fake, "n_real": res.n_real,
                          "features": res.features, "seconds": round(res.seconds, 2)}))
    else:
        where = f" at step {step}" if step is not None else ""
        print(f"{res.n_fake} generated vs {res.n_real} real{where}, features {res.features}, "
              f"{res.seconds:.1f} s")
        for k, v in res.values.items():
            print(f"  {k:<12} {v:.6g}")
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
        print(json.dumps({"step": step, **res.values, "eval_n": res.n, "split": res.split,
                          "seconds": round(res.seconds, 2)}))
    else:
        print(f"{res.n} inputs of the {res.split} split at step {step}, {res.seconds:.1f} s")
        for k, v in res.values.items():
            print(f"  {k:<16} {v:.6g}")
    run = RunDir.of_checkpoint(ckpt.path)
    if run is not None:
        run.append({"step": step, **res.values, "eval_n": res.n})
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
        raise GankitError(f"INPUT_DIR {ns.input_dir} is not a folder; give the folder of images to translate")
    found = load_image_folder(ns.input_dir, (h, w), c)  # corrupt files are skipped and listed
    print(found.summary(), file=sys.stderr)
    out = Path(ns.out)
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
                    raise GankitError(f"cannot write {target}: {e.strerror}; choose another --out") from None
    print(f"{len(found.files)} images translated {ns.direction} at step {lt.step} -> {out}")
    return 0


def cmd_report(ns: argparse.Namespace) -> int:
    from gankit.report import build_report
    from gankit.rundir import RunDir

    print(build_report(RunDir(ns.run_dir), ns.out))
    return 0


def cmd_doctor(ns: argparse.Namespace) -> int:
    from gankit.diagnosis import FAILURES, diagnose_run
    from gankit.rundir import RunDir
    from gankit.verdict import equilibrium

    run = RunDir(ns.run_dir)
    if not run.is_run():
        raise GankitError(f"{run.path} is not a gankit run (no config.yaml); give a run directory")
    findings, events, last = diagnose_run(run)
    if "step" not in last:
        print(f"{run.path}: nothing logged yet")
        return 0
    print(f"{run.path}: step {last['step']}")
    if "d_real" in last:  # the report's reading too (gankit.verdict)
        print(f"  D(x) = {last['d_real']:.3f}, D(G(z)) = {last['d_fake']:.3f}")
        print(f"  {equilibrium(last['d_real'], last['d_fake']).sentence}")
    if "grad_g" in last:
        print(f"  |grad G| = {last['grad_g']:.3g}, |grad D| = {last['grad_d']:.3g}")
    signals = [f"{k} {last[k]:.3g}" + (f" of {last[k + '_total']:.0f}" if k + "_total" in last else "")
               for k in ("diversity", "modes", "hq", "classes") if k in last]
    if signals:
        print("  samples: " + ", ".join(signals) + " (diversity relative to the real data's)")
    for e in events:
        print(f"  step {e['step']}: {e.get('event')}: {e.get('message', '')}")
    if not findings:
        print("  no failure seen: no diminished gradient, mode collapse or non-convergence")
    for f in findings:
        status = "still present" if f.kind in last["active"] else "since cleared"
        print(f"  {f.line()} ({status})")
    if last["active"]:
        print("now: " + "; ".join(FAILURES[k].title for k in last["active"]))
    return 0


def cmd_list(ns: argparse.Namespace) -> int:
    from gankit.data import DATASETS
    from gankit.losses import LOSSES
    from gankit.metrics import FEATURES, METRICS
    from gankit.models import CONDITIONINGS, MODELS

    for reg in (MODELS, CONDITIONINGS, LOSSES, DATASETS, METRICS, FEATURES):
        print(f"{reg.plural}:")
        for e in reg.entries():
            print(f"  {e.name:<16} {e.help}")
    print("datasets also: PATH to a folder of images")
    from gankit.data.paired import PAIRED_TASKS, class_pair_names
    from gankit.models.translators import TRANSLATORS

    print("translators (gankit train --model NAME; gankit translate):")
    for e in TRANSLATORS.entries():
        print(f"  {e.name:<16} {e.help}")
    print("translation tasks (--data):")
    print(f"  {PAIRED_TASKS[0]:<16} pix2pix: Fashion-MNIST edges -> items")
    print(f"  {PAIRED_TASKS[1]:<16} pix2pix: a Fashion-MNIST item by day (gray) -> at night (dark, blue)")
    print(f"  {'A2B':<16} cyclegan: two Fashion-MNIST classes as the domains, e.g. sneaker2sandal; "
          f"classes: {', '.join(class_pair_names())}")
    print("  also: --data DIR (pix2pix: side-by-side A|B images), --data A_DIR --partner B_DIR")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gankit`` console script."""
    parser = build_parser()
    ns = parser.parse_args(argv)
    try:
        return ns.func(ns)
    except GankitError as e:
        print(f"gankit: error: {flags_for_keys(str(e))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as e:
        print(f"gankit: interrupted{': ' + str(e) if str(e) else ''}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
