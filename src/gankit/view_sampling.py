"""Applying a trained novel-view generator (``--model novel-view``): rebuilding G from a checkpoint
(no unpickling), reading a user's photo, and turning it round (``gankit sample RUN --input
obj.png --angles 0:360:30 --out turntable.gif``). Nothing here knows the training loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gankit.checkpoint import STATE, Checkpoint, checkpoint_is, load_checkpoint, load_module
from gankit.config import Config, config_from_dict
from gankit.data.base import to_float
from gankit.errors import GankitError, display_path
from gankit.models.views import ARCH, angle_code, build_views
from gankit.validate import Damaged

TASK = "views"
MAX_FRAMES = 3600


def is_view_checkpoint(path: str | Path) -> bool:
    """Whether the run directory or checkpoint at ``path`` is a novel-view run's: read from its
    state.json, or where that cannot be read from the run's config.yaml."""
    return checkpoint_is(path, lambda meta: meta.get("task") == TASK, lambda arch: arch == ARCH)


def check_views_meta(ckpt: Checkpoint) -> None:
    """``Damaged`` unless state.json's ``views`` says what G is rebuilt from: the view shape
    (C, H, W), and the elevation a photo is taken to be seen from."""
    v = ckpt.fields().object("views")
    assert v is not None  # absent: Damaged, naming the key
    v.integers("shape", lo=1, hi=1 << 16, min_len=3, max_len=3)
    v.number("source_elevation", lo=-90, hi=90)


@dataclass
class LoadedViewGenerator:
    """G of a novel-view checkpoint, in eval mode."""

    G: nn.Module
    config: Config
    step: int
    meta: dict[str, Any]  # state.json's "views": shape, data, source_elevation

    @property
    def size(self) -> tuple[int, int]:
        return int(self.meta["shape"][1]), int(self.meta["shape"][2])

    def turn(self, image: Tensor, azimuths: list[float], elevation: float | None = None) -> Tensor:
        """image (C, H, W) in [-1, 1], seen at azimuth 0 -> (len(azimuths), C, H, W) in [-1, 1]:
        G's view of it turned by each azimuth, at the run's usual elevation (or ``elevation``)."""
        el = float(self.meta["source_elevation"]) if elevation is None else elevation
        n = len(azimuths)
        src = torch.tensor([[0.0, el]]).expand(n, 2)
        tgt = torch.stack([torch.tensor(azimuths, dtype=torch.float32), torch.full((n,), el)], 1)
        device = next(self.G.parameters()).device
        with torch.no_grad():
            return self.G(image[None].expand(n, -1, -1, -1).to(device), angle_code(src, tgt).to(device)).float().cpu()


def load_view_generator(path: str | Path, device: str | torch.device = "cpu") -> LoadedViewGenerator:
    """Rebuild G from a novel-view run directory or checkpoint, verified first."""
    built: dict[Path, tuple[nn.Module, Config]] = {}

    def check(c: Checkpoint) -> None:
        if c.meta.get("task") != TASK:
            raise GankitError(f"{display_path(c.path)} is not a novel-view run (model.arch={ARCH}); --input and "
                              "--angles need one")
        check_views_meta(c)
        cfg = config_from_dict(c.meta["config"], str(c.path / STATE))
        try:
            G = build_views(tuple(c.meta["views"]["shape"]), cfg.model.width, cfg.views.view_g)["G"]  # type: ignore[arg-type]
        except (GankitError, ValueError, RuntimeError, TypeError) as e:
            raise Damaged(c.path / STATE, f"its views.shape builds no generator ({e})") from None
        load_module(c, "G", G)
        built[c.path] = (G, cfg)

    ckpt = load_checkpoint(path, with_train_state=False, check=check)
    G, cfg = built[ckpt.path]
    return LoadedViewGenerator(G.to(device).eval().requires_grad_(False), cfg, ckpt.step, dict(ckpt.meta["views"]))


def parse_angles(spec: str) -> list[float]:
    """``START:STOP:STEP`` (degrees, STOP excluded, as Python's range) or a comma list
    ``0,90,180`` -> the azimuths."""
    try:
        if ":" in spec:
            parts = [float(p) for p in spec.split(":")]
            if len(parts) != 3:
                raise ValueError
            start, stop, step = parts
            if step == 0 or not all(math.isfinite(p) for p in parts):
                raise ValueError
            count = math.ceil((stop - start) / step)
            out = [start + i * step for i in range(max(count, 0))]
        else:
            out = [float(p) for p in spec.split(",")]
    except ValueError:
        raise GankitError(f"--angles {spec!r}: give START:STOP:STEP in degrees (0:360:30) or a list (0,90,180)") \
            from None
    if not out or len(out) > MAX_FRAMES or not all(math.isfinite(a) for a in out):
        raise GankitError(f"--angles {spec!r} gives {len(out)} angles; give 1 to {MAX_FRAMES} finite angles")
    return out


def read_photo(path: str | Path, size: tuple[int, int]) -> Tensor:
    """An image file -> (3, H, W) in [-1, 1], scaled to cover ``size`` and centre-cropped."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    from gankit.data.fashion_mnist import resize_cover

    p = Path(path)
    try:
        with Image.open(p) as im:
            rgb = np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except FileNotFoundError:
        raise GankitError(f"{display_path(p)}: no such file") from None
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise GankitError(f"{display_path(p)}: cannot be read as an image ({type(e).__name__})") from None
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    return to_float(resize_cover(x, size))[0]


__all__ = ["LoadedViewGenerator", "check_views_meta", "is_view_checkpoint", "load_view_generator", "parse_angles",
           "read_photo"]
