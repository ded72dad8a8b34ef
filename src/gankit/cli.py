"""The ``gankit`` command: train, sample, report, list.

Every user mistake ends in one line, ``gankit: error: ...``, saying what to do, and exit status 2.
"""

from __future__ import annotations

import argparse
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
        default = f" (default: {opt.default!r})" if opt.default not in ("", None) else ""
        if opt.type is bool:
            g.add_argument(opt.flag, dest=opt.key, action=argparse.BooleanOptionalAction,
                           default=argparse.SUPPRESS, help=opt.help + default)
        else:
            names = _catalogue(opt)
            metavar = "{" + ",".join(names) + "}" if names else opt.type.__name__.upper()
            g.add_argument(opt.flag, dest=opt.key, type=_typed(opt), default=argparse.SUPPRESS,
                           metavar=metavar, help=opt.help + default)


def _catalogue(opt: Option) -> list[str] | None:
    """The registry's names for fields that name a registered component (shown in --help)."""
    from gankit.losses import LOSSES
    from gankit.models import MODELS

    registries = {"model.arch": MODELS, "train.loss": LOSSES}
    reg = registries.get(opt.dotted)
    return reg.names() if reg else (list(opt.choices) if opt.choices else None)


def _typed(opt: Option) -> Any:
    def convert(text: str) -> Any:
        try:
            return parse_cli_value(opt, text)
        except GankitError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    convert.__name__ = opt.type.__name__
    return convert


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
    e.add_argument("--json", action="store_true", help="print the result as JSON")
    e.set_defaults(func=cmd_eval)

    dr = sub.add_parser("doctor", help="diagnose a run: diminished gradient, mode collapse, "
                        "non-convergence, divergence, with the cures to try",
                        description="Replay RUN_DIR/metrics.jsonl through the same rules the trainer "
                                    "applies live, for a finished or running run.")
    dr.add_argument("run_dir", metavar="RUN_DIR")
    dr.set_defaults(func=cmd_doctor)

    ls = sub.add_parser("list", help="the catalogue: models, losses, datasets, metrics, features")
    ls.set_defaults(func=cmd_list)
    return p


def cmd_train(ns: argparse.Namespace) -> int:
    from gankit.train import train

    overrides = _overrides(ns)
    if ns.resume:
        if ns.config:
            raise GankitError("--config cannot be combined with --resume: the run keeps its own config")
        train(None, resume=ns.resume, overrides=overrides)  # type: ignore[arg-type]
    else:
        train(build_config(ns.config, overrides))
    return 0


def cmd_sample(ns: argparse.Namespace) -> int:
    import torch

    from gankit.images import save_each, save_grid
    from gankit.models import sample_prior
    from gankit.sampling import generate, interpolate_latents, load_generator

    if ns.n < 1:
        raise GankitError(f"-n must be at least 1, got {ns.n}")
    lg = load_generator(ns.source, ns.device)
    m = lg.config.model
    g = torch.Generator().manual_seed(ns.seed)
    if ns.interpolate:
        ends = sample_prior(m.prior, 2, m.latent_dim, generator=g)
        z = interpolate_latents(ends[0], ends[1], ns.n, m.prior)
    else:
        z = sample_prior(m.prior, ns.n, m.latent_dim, generator=g)
    x = generate(lg.G, z.to(ns.device)).cpu()
    out = Path(ns.out)
    try:
        if not lg.shape.is_image:
            _save_points(lg, x, out)
        elif out.suffix.lower() == ".png":
            out.parent.mkdir(parents=True, exist_ok=True)
            save_grid(x, out, nrow=ns.n if ns.interpolate else None)
        else:
            save_each(x, out)
    except OSError as e:
        raise GankitError(f"cannot write {out}: {e.strerror}; choose another --out") from None
    print(f"{ns.n} {'frames' if ns.interpolate else 'samples'} from step {lg.step} -> {out}")
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
    import json

    from gankit.config import parse_image_size
    from gankit.metrics import evaluate_folders, evaluate_generator, parse_metrics
    from gankit.train.rundir import MetricsLog

    metrics = parse_metrics(ns.metrics) if ns.metrics else None
    if ns.n < 2:
        raise GankitError(f"--n must be at least 2, got {ns.n}")
    if ns.real or ns.fake:
        if not (ns.real and ns.fake) or ns.source:
            raise GankitError("compare two folders with --real DIR --fake DIR (and no run directory)")
        size = parse_image_size(ns.image_size) if ns.image_size else None
        res = evaluate_folders(ns.real, ns.fake, metrics, ns.features, size, ns.device)
        run_log, step = None, None
    else:
        if not ns.source:
            raise GankitError("give a run directory or checkpoint, or --real DIR --fake DIR")
        from gankit.sampling import load_generator

        lg = load_generator(ns.source, ns.device)
        res = evaluate_generator(lg.G, lg.config, ns.n, metrics, ns.features, ns.device, ns.seed)
        step = lg.step
        run_log = lg.run_dir / "metrics.jsonl" if lg.run_dir else None
    if ns.json:
        print(json.dumps({"step": step, **res.values, "n_fake": res.n_fake, "n_real": res.n_real,
                          "features": res.features, "seconds": round(res.seconds, 2)}))
    else:
        where = f" at step {step}" if step is not None else ""
        print(f"{res.n_fake} generated vs {res.n_real} real{where}, features {res.features}, "
              f"{res.seconds:.1f} s")
        for k, v in res.values.items():
            print(f"  {k:<12} {v:.6g}")
    if run_log is not None:
        MetricsLog(run_log).append({"step": step, **res.values, "eval_n": res.n_fake,
                                    "eval_features": res.features})
    return 0


def cmd_report(ns: argparse.Namespace) -> int:
    from gankit.report import build_report

    print(build_report(ns.run_dir, ns.out))
    return 0


def cmd_doctor(ns: argparse.Namespace) -> int:
    from pathlib import Path

    from gankit.diagnosis import FAILURES, diagnose_run

    run = Path(ns.run_dir)
    if not (run / "config.yaml").is_file():
        raise GankitError(f"{run} is not a gankit run (no config.yaml); give a run directory")
    findings, events, last = diagnose_run(run)
    if "step" not in last:
        print(f"{run}: nothing logged yet")
        return 0
    print(f"{run}: step {last['step']}")
    if "d_real" in last:
        gap = last["d_real"] - last["d_fake"]
        verdict = ("near the equilibrium D(x) = D(G(z)) = 0.5: D can barely tell real from fake"
                   if abs(gap) < 0.1 and abs(last["d_real"] - 0.5) < 0.15 else
                   "D still tells real from fake" if gap > 0 else "D rates the fakes above the real data")
        print(f"  D(x) = {last['d_real']:.3f}, D(G(z)) = {last['d_fake']:.3f}: {verdict}")
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
    from gankit.models import MODELS

    for reg in (MODELS, LOSSES, DATASETS, METRICS, FEATURES):
        print(f"{reg.plural}:")
        for e in reg.entries():
            print(f"  {e.name:<16} {e.help}")
    print("datasets also: PATH to a folder of images")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gankit`` console script."""
    parser = build_parser()
    ns = parser.parse_args(argv)
    try:
        return ns.func(ns)
    except GankitError as e:
        print(f"gankit: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as e:
        print(f"gankit: interrupted{': ' + str(e) if str(e) else ''}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
