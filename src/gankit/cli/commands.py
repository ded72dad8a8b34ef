"""``gankit train``, ``sample``, ``report``, ``doctor``, ``lab`` and ``list``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gankit.cli.flags import config_overrides
from gankit.config import build_config
from gankit.errors import GankitError, display_path
from gankit.fsutil import DiskFull, clean_stale_temps


def cmd_train(ns: argparse.Namespace) -> int:
    from gankit.api import train_config

    changes = config_overrides(ns)
    if ns.resume:
        if ns.config:
            raise GankitError("--config cannot be combined with --resume: the run keeps its own config")
        train_config(None, resume=ns.resume, overrides=changes)
    else:
        train_config(build_config(ns.config, changes))  # resolved there, once
    return 0


def cmd_sample(ns: argparse.Namespace) -> int:
    from gankit.cli.text2image import cmd_sample_text, wants_text
    from gankit.translating import is_translator_checkpoint

    if wants_text(ns):  # --text, or a text -> image run (gankit.cli.text2image)
        return cmd_sample_text(ns)
    if ns.unknown_words:
        raise GankitError("--unknown-words is for text -> image runs (with --text); "
                          f"{display_path(ns.source)} is not one")
    from gankit.cli.views import cmd_sample_views, wants_views

    if wants_views(ns):  # --input/--angles, or a novel-view run (gankit.cli.views)
        return cmd_sample_views(ns)

    if is_translator_checkpoint(ns.source):
        raise GankitError(f"{ns.source} is an image translator, which draws no samples from noise; apply it "
                          f"with `gankit translate {ns.source} INPUT_DIR --out OUT_DIR`")
    from gankit.predicting import is_nextframe_checkpoint

    if is_nextframe_checkpoint(ns.source):
        raise GankitError(f"{ns.source} is a next-frame predictor, which draws no samples from noise; roll it "
                          f"out with `gankit predict {ns.source} SEQUENCE --out pred.gif`")
    import math

    import torch

    from gankit.images import format_of, save_each, save_grid
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
    clean_stale_temps(out.parent, out.name)  # what a killed `gankit sample` to this --out left
    try:
        if not lg.shape.is_image:
            _save_points(lg, x, out)
        elif format_of(out):  # one image file, in the format its extension names
            out.parent.mkdir(parents=True, exist_ok=True)
            save_grid(x, out, nrow=nrow, row_labels=rows)
        else:
            save_each(x, out)  # written whole into a hidden folder first, then put in place
    except DiskFull:
        raise
    except OSError as e:
        raise GankitError(f"cannot write {display_path(out)}: {e.strerror}; choose another --out") from None
    what = f" of class {class_names(K, lg.classes)[int(y[0])]}" if ns.cls is not None and y is not None else ""
    print(f"{n} {'frames' if ns.interpolate else 'samples'}{what} from step {lg.step} -> {display_path(out)}")
    return 0


def _save_points(lg: Any, x: Any, out: Path) -> None:
    import io

    import numpy as np
    from PIL import Image

    from gankit.fsutil import atomic_write_bytes, atomic_write_text
    from gankit.images import format_of, image_bytes
    from gankit.report import plot_field
    from gankit.sampling import d_probability_field, points_extent

    pts = x.numpy()
    fmt = format_of(out)
    if fmt:  # D's field and the points, as one image in the format the extension names
        extent = lg.extent or points_extent(pts)
        prob = d_probability_field(lg.D, extent)
        out.parent.mkdir(parents=True, exist_ok=True)
        png = plot_field(pts[:0], pts, prob, extent, title=f"{len(pts)} samples")
        with Image.open(io.BytesIO(png)) as im:
            data = png if fmt == "PNG" else image_bytes(np.asarray(im.convert("RGB")), fmt)
        atomic_write_bytes(out, data)
    else:
        out.mkdir(parents=True, exist_ok=True)
        clean_stale_temps(out, "points.csv")
        atomic_write_text(out / "points.csv", "x,y\n" + "".join(f"{a:.6g},{b:.6g}\n" for a, b in pts))


def cmd_report(ns: argparse.Namespace) -> int:
    from gankit.report import build_report
    from gankit.rundir import RunDir

    out = Path(ns.out) if ns.out else RunDir(ns.run_dir).report_path
    clean_stale_temps(out.parent, out.name)  # what a killed `gankit report` left
    print(display_path(str(build_report(RunDir(ns.run_dir), ns.out))))
    return 0


def cmd_doctor(ns: argparse.Namespace) -> int:
    from gankit.diagnosis import FAILURES, diagnose_run
    from gankit.rundir import RunDir
    from gankit.verdict import equilibrium

    run = RunDir(ns.run_dir)
    if not run.is_run():
        raise GankitError(f"{display_path(run.path)} is not a gankit run (no config.yaml); give a run directory")
    from gankit.tasks import task_cures

    findings, events, last = diagnose_run(run, task_cures(run.config()))
    if "step" not in last:
        print(f"{display_path(run.path)}: nothing logged yet")
        return 0
    print(f"{display_path(run.path)}: step {last['step']}")
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
    from gankit.tasks import TASKS

    print("tasks (what --model trains):")
    for e in TASKS.entries():
        print(f"  {e.name:<16} {e.help}; --model {', '.join(e.obj.models())}")
    for reg in (MODELS, CONDITIONINGS, LOSSES, DATASETS, METRICS, FEATURES):
        print(f"{reg.plural}:")
        for e in reg.entries():
            print(f"  {e.name:<16} {e.help}")
    print("datasets also: PATH to a folder of images; for --model gan-int-cls (text -> image) one with a "
          "metadata.jsonl, a {\"file_name\": ..., \"text\": ...} object per line")
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
    print(f"  {'fashion2emoji':<16} dtn, cyclegan: Fashion-MNIST photos -> clothing emoji (Debian's emoji sets)")
    print("  also: --data DIR (pix2pix: side-by-side A|B images), --data A_DIR --partner B_DIR")
    from gankit.data.video import VIDEOS

    print("video sets (gankit train --model nextframe --data NAME; gankit predict):")
    for e in VIDEOS.entries():
        print(f"  {e.name:<16} {e.help}")
    print("  also: --data DIR of videos: one folder of frames or one video file per sequence")
    from gankit.data.views import VIEW_SETS

    print("view sets (--model novel-view --data NAME; rendered by POV-Ray, cached):")
    for e in VIEW_SETS.entries():
        print(f"  {e.name:<16} {e.help}")
    print("  also: --data DIR, one folder of views per object, angles in file names (az030_el10.png) or a "
          "metadata.jsonl")
    return 0


def cmd_lab(ns: argparse.Namespace) -> int:
    """``gankit lab``: the live web app (``gankit.lab``), on the loopback unless ``--host``."""
    import sys

    from gankit.lab import serve

    if ns.export:
        from gankit.report.page import export_html

        print(f"lab page: {display_path(export_html(ns.runs_dir, ns.export))}", file=sys.stderr)
        return 0
    if not 0 <= ns.port <= 65535:
        raise GankitError(f"--port must be 0 to 65535, got {ns.port}")
    host = ns.host or "127.0.0.1"
    if ns.host and ns.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"gankit: warning: --host {ns.host}: the lab is reachable from other machines; anyone who has "
              "the address with its token can pause, change and stop your runs, and anyone who reaches the "
              "port can watch them (plain HTTP: put it behind an SSH tunnel instead where you can)",
              file=sys.stderr)
    try:
        serve(ns.runs_dir, host, ns.port)
    except ImportError as e:
        raise GankitError(f"gankit lab needs starlette and uvicorn ({e.name} is missing): "
                          "pip install 'gankit[lab]'") from None
    return 0
