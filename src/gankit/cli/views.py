"""``gankit sample RUN --input obj.png --angles 0:360:30 --out turntable.gif``: a turntable of one
photo by a novel-view run (``--model novel-view``)."""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from gankit.errors import GankitError, display_path

GIF_MIN_SIDE = 128  # frames are scaled up (nearest neighbour) by a whole factor to at least this
GIF_FRAME_MS = 100


def wants_views(ns: argparse.Namespace) -> bool:
    """Whether `gankit sample` is asked for new angles: --input or --angles given, or a novel-view run."""
    from gankit.view_sampling import is_view_checkpoint

    return bool(getattr(ns, "input", None) or getattr(ns, "angles", None)) or is_view_checkpoint(ns.source)


def write_gif(frames: list, path: Path) -> None:
    """uint8 (H, W, 3) arrays -> an animated GIF that loops, written whole or not at all."""
    from PIL import Image

    from gankit.fsutil import atomic_write_bytes

    ims = [Image.fromarray(f) for f in frames]
    factor = max(1, -(-GIF_MIN_SIDE // max(ims[0].size)))
    ims = [im.resize((im.width * factor, im.height * factor), Image.Resampling.NEAREST) for im in ims]
    buf = io.BytesIO()
    ims[0].save(buf, format="GIF", save_all=True, append_images=ims[1:], duration=GIF_FRAME_MS, loop=0,
                disposal=1)
    atomic_write_bytes(path, buf.getvalue())


def cmd_sample_views(ns: argparse.Namespace) -> int:
    """G's views of the --input photo at each --angles azimuth: an animated .gif, one image
    (a strip, .png ...), or a folder of PNGs."""
    from gankit.fsutil import DiskFull, clean_stale_temps
    from gankit.images import format_of, save_each, save_grid, to_uint8
    from gankit.view_sampling import (
        is_view_checkpoint,
        load_view_generator,
        parse_angles,
        read_photo,
    )

    if not is_view_checkpoint(ns.source):
        raise GankitError(f"--input and --angles need a novel-view run (gankit train --model novel-view); "
                          f"{display_path(ns.source)} is not one")
    if not ns.input:
        raise GankitError(f"{display_path(ns.source)} turns a photo round: give it with --input obj.png "
                          "(and the azimuths with --angles 0:360:30)")
    if ns.cls is not None or ns.interpolate or getattr(ns, "text", None):
        raise GankitError("--class, --interpolate and --text are for other runs; a novel-view run takes "
                          "--input and --angles")
    azimuths = parse_angles(ns.angles or "0:360:30")
    lg = load_view_generator(ns.source, ns.device)
    photo = read_photo(ns.input, lg.size)
    x = lg.turn(photo, azimuths)
    out = Path(ns.out)
    clean_stale_temps(out.parent, out.name)
    try:
        if out.suffix.lower() == ".gif":
            out.parent.mkdir(parents=True, exist_ok=True)
            write_gif(list(to_uint8(x).permute(0, 2, 3, 1).numpy()), out)
        elif format_of(out):
            out.parent.mkdir(parents=True, exist_ok=True)
            save_grid(x, out, nrow=len(azimuths))
        else:
            save_each(x, out)
    except DiskFull:
        raise
    except OSError as e:
        raise GankitError(f"cannot write {display_path(out)}: {e.strerror}; choose another --out") from None
    print(f"{len(azimuths)} views of {display_path(ns.input)} from step {lg.step} -> {display_path(out)}")
    return 0


def cmd_eval_views(ns: argparse.Namespace) -> int:
    """``gankit eval RUN`` of a novel-view run: L1, SSIM and identity on at most --n pairs of its
    held-out objects' views, beside copy-the-source's (the angle accuracy: bench/views.py)."""
    import json

    from gankit.data.views import load_views
    from gankit.metrics.views import score_views
    from gankit.view_sampling import load_view_generator

    if ns.metrics or ns.features != "fmnist" or ns.per_class:
        raise GankitError(f"{display_path(ns.source)} is a novel-view run: it is scored by L1, SSIM and identity "
                          "on held-out objects; leave out --metrics, --features and --per-class")
    lg = load_view_generator(ns.source, ns.device)
    d = lg.config.data
    test = load_views(d.source, "test", lg.size[0], 0, d.cache_dir)
    values = score_views(lg.G, test, max(1, ns.n), ns.device)
    if ns.json:
        print(json.dumps({"step": lg.step, **values}))
        return 0
    print(f"held-out objects of {test.name} ({len(test.objects)}), step {lg.step}; copy-the-source in brackets",
          file=sys.stderr)
    print(", ".join(f"{k} {values[k]:.4f} ({values['copy_' + k]:.4f})" for k in ("l1", "ssim", "identity")))
    return 0


__all__ = ["cmd_eval_views", "cmd_sample_views", "wants_views", "write_gif"]
