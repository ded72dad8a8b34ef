"""Views of objects at known angles, for novel-view synthesis (Tatarchenko et al. 2016; Zhou et
al. 2016): built-in sets rendered by POV-Ray (``gankit.data.povray``), or a user's folders.

A view set is flat: ``images`` (M, 3, H, W) uint8, the object of each view ``obj`` (M,) and its
``angles`` (M, 2) = (azimuth, elevation) in degrees; the views of an object are contiguous. A
training pair is two views of one object, the source and the target.

Built-in sets (``--data NAME``) are rendered once and cached under gankit's cache folder, keyed by
everything that makes them (objects, grid, size, seed, the renderer's version), with a progress
bar while rendering. Some objects are held out entirely: they are the ``test`` split.

- ``views``: 120 procedural objects and the 8 named example objects (teapot, six chess pieces,
  chair), 24 azimuths (every 15 degrees) x 2 elevations (10 and 35 degrees) at 32 px: 6,144
  views, rendered in about 40 s on one core (0.006 s a view, measured on a shared 2-core
  machine; ``--image-size 64`` renders the same grid at 64 px). Held out: every fifth
  procedural object and the bishop (25 objects).
- ``views-tiny``: 6 procedural objects, 4 azimuths x 1 elevation at 16 px, for tests (seconds).

A user's folder holds one sub-folder per object; each view's angle comes from a
``metadata.jsonl`` (lines ``{"file_name": "a.png", "azimuth": 30, "elevation": 10}``, in the
object's folder, or in the top one naming ``cup/a.png``) or else from its file name (``az030_el10.png``,
``azimuth-30.png``; elevation 0 when not named). Every view must be readable and of one size.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from gankit.data.povray import NAMED, Grid, object_body, render_objects
from gankit.errors import GankitError, display_path, short_repr
from gankit.registry import Registry

RENDER_VERSION = 2  # bump when the scenes change: the caches follow it
OBJECTS_PER_SHEET = 8  # objects one povray run renders (the progress bar moves by as many)


@dataclass
class ViewSet:
    """Views of objects: images (M, 3, H, W) uint8, ``obj`` (M,) int64 indexing ``objects``,
    ``angles`` (M, 2) float32 (azimuth, elevation) degrees; each object's views contiguous."""

    images: Tensor
    obj: Tensor
    angles: Tensor
    objects: list[str]
    name: str
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return self.images.shape[0]

    def starts_counts(self) -> tuple[Tensor, Tensor]:
        """(first view index, number of views) of each object, (O,) int64 each."""
        counts = torch.bincount(self.obj, minlength=len(self.objects))
        return torch.cumsum(counts, 0) - counts, counts

    def subset(self, keep: list[int], name: str) -> ViewSet:
        """The views of objects ``keep`` (indices into ``objects``), renumbered."""
        mask = torch.isin(self.obj, torch.tensor(keep, dtype=torch.int64))
        remap = torch.full((len(self.objects),), -1, dtype=torch.int64)
        remap[torch.tensor(keep, dtype=torch.int64)] = torch.arange(len(keep))
        return ViewSet(self.images[mask], remap[self.obj[mask]], self.angles[mask],
                       [self.objects[i] for i in keep], name, list(self.notes))


@dataclass(frozen=True)
class RenderedSet:
    """A built-in set: ``procedural`` seeded objects and the ``named`` example objects, each at
    every view of ``grid``; ``held_out(i, name)`` says whether object i is in the test split."""

    procedural: int
    named: tuple[str, ...]
    grid: Grid
    held_out_every: int  # procedural object i is held out when i % this == this - 1
    held_out_named: tuple[str, ...] = ()

    def objects(self) -> list[str]:
        return [f"proc-{i}" for i in range(self.procedural)] + list(self.named)

    def is_test(self, name: str) -> bool:
        if name.startswith("proc-"):
            k = self.held_out_every
            return int(name[5:]) % k == k - 1
        return name in self.held_out_named


VIEW_SETS: Registry[RenderedSet] = Registry("view set")
VIEW_SETS.register("views", RenderedSet(120, NAMED, Grid(24, (10.0, 35.0), 32), 5, ("bishop",)),
                   "novel views: 128 POV-Ray objects (120 procedural, teapot, chess pieces, chair), "
                   "24 azimuths x 2 elevations, 32 px; 25 held out")
VIEW_SETS.register("views-tiny", RenderedSet(6, (), Grid(4, (20.0,), 16), 3),
                   "novel views for tests: 6 procedural objects, 4 azimuths, 16 px; 2 held out")


def cache_key(spec: RenderedSet, size: int, seed: int) -> str:
    """What makes a rendered set, hashed: the cache file's name."""
    key = {"v": RENDER_VERSION, "procedural": spec.procedural, "named": list(spec.named),
           "azimuths": spec.grid.azimuths, "elevations": list(spec.grid.elevations), "size": size, "seed": seed}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]


def render_set(spec: RenderedSet, size: int | None = None, seed: int = 0, cache_dir: str | os.PathLike | None = None,
               progress: bool = True, name: str = "views") -> ViewSet:
    """Every view of every object of ``spec`` (at ``size`` px, default the grid's), from the
    cache when it holds them, else rendered (a progress bar per object) and cached."""
    from safetensors.torch import load_file, save
    from tqdm import tqdm

    from gankit.data import default_cache_dir
    from gankit.fsutil import atomic_write_bytes

    size = size or spec.grid.size
    grid = Grid(spec.grid.azimuths, spec.grid.elevations, size)
    objects = spec.objects()
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = root / "views" / f"{cache_key(spec, size, seed)}.safetensors"
    try:
        cached = load_file(str(path))
        images = cached["images"]
        if images.shape == (len(objects) * grid.views, 3, size, size) and images.dtype == torch.uint8:
            return _assemble(images, grid, objects, name, f"{name}: {len(objects)} objects x {grid.views} views "
                             f"at {size} px (cached {display_path(path)})")
    except (OSError, ValueError, KeyError, RuntimeError):
        pass  # not cached yet, or damaged: render again
    views = []
    with tqdm(total=len(objects), desc=f"rendering {name}", unit="obj", file=sys.stderr, disable=not progress,
              dynamic_ncols=True) as bar:
        for i in range(0, len(objects), OBJECTS_PER_SHEET):
            made = [object_body(o, seed) for o in objects[i:i + OBJECTS_PER_SHEET]]
            views.append(render_objects([b for b, _ in made], grid, [p for _, lib in made for p in lib]))
            bar.update(len(made))
    images = torch.cat(views)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, save({"images": images}, metadata={"objects": json.dumps(objects)}))
    except OSError:
        pass  # an unwritable cache only costs the rendering next time
    return _assemble(images, grid, objects, name, f"{name}: {len(objects)} objects x {grid.views} views at "
                     f"{size} px (rendered by POV-Ray, cached)")


def _assemble(images: Tensor, grid: Grid, objects: list[str], name: str, note: str) -> ViewSet:
    v = grid.views
    obj = torch.arange(len(objects)).repeat_interleave(v)
    return ViewSet(images, obj, grid.angles().repeat(len(objects), 1), objects, name, [note])


def builtin_views(source: str, split: str = "train", size: int | None = None, seed: int = 0,
                  cache_dir: str | os.PathLike | None = None, progress: bool = True) -> ViewSet:
    """A built-in set's ``split``: "train" its objects not held out, "test" the held-out ones,
    "all" every object."""
    spec = VIEW_SETS.get(source)
    full = render_set(spec, size, seed, cache_dir, progress, source)
    if split == "all":
        return full
    keep = [i for i, o in enumerate(full.objects) if spec.is_test(o) == (split == "test")]
    return full.subset(keep, source)


# --------------------------------------------------------------------------- a user's folders

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")
_AZ = re.compile(r"(?:^|[^a-z])(?:az|azimuth)[-_=]?(-?\d+(?:\.\d+)?)", re.IGNORECASE)
_EL = re.compile(r"(?:^|[^a-z])(?:el|elev|elevation)[-_=]?(-?\d+(?:\.\d+)?)", re.IGNORECASE)


def _metadata(folder: Path) -> dict[str, tuple[float, float]]:
    """``metadata.jsonl`` of ``folder``: file (relative to it) -> (azimuth, elevation)."""
    meta = folder / "metadata.jsonl"
    if not meta.is_file():
        return {}
    out = {}
    try:
        lines = meta.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise GankitError(f"{display_path(meta)}: cannot be read ({e})") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            name = row["file_name"] if "file_name" in row else row["file"]
            out[str(name)] = (float(row["azimuth"]), float(row.get("elevation", 0.0)))
        except (ValueError, KeyError, TypeError):
            raise GankitError(f"{display_path(meta)} line {n}: not a JSON object with \"file_name\" (or \"file\") "
                              "and \"azimuth\" (and optionally \"elevation\") in degrees") from None
    return out


def _angle_of(file: Path, meta: dict[str, tuple[float, float]], key: str) -> tuple[float, float]:
    if key in meta:
        return meta[key]
    az, el = _AZ.search(file.stem), _EL.search(file.stem)
    if az is None:
        raise GankitError(f"{display_path(file)}: no angle: name its azimuth in the file name (az030_el10.png) "
                          "or give it in a metadata.jsonl")
    return float(az.group(1)), float(el.group(1)) if el else 0.0


def load_view_folder(path: str | os.PathLike, size: int | None = None) -> ViewSet:
    """A folder with one sub-folder of views per object (see the module docstring). ``size``:
    scale every view to size x size (default: keep the views' common size)."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    root = Path(path)
    if not root.is_dir():
        raise GankitError(f"{display_path(root)} is not a folder of object folders")
    top = _metadata(root)
    images, obj, angles, objects = [], [], [], []
    first: tuple[Path, tuple[int, int]] | None = None
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        meta = {**{k.partition("/")[2]: v for k, v in top.items() if k.partition("/")[0] == folder.name},
                **_metadata(folder)}
        files = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            continue
        for f in files:
            angle = _angle_of(f, meta, f.name)
            try:
                with Image.open(f) as im:
                    rgb = im.convert("RGB")
            except (OSError, UnidentifiedImageError, ValueError) as e:
                raise GankitError(f"{display_path(f)}: cannot be read as an image ({type(e).__name__})") from None
            if first is None:
                first = (f, rgb.size)
            elif rgb.size != first[1]:
                raise GankitError(f"{display_path(f)} is {rgb.size[0]}x{rgb.size[1]}, but {display_path(first[0])} "
                                  f"is {first[1][0]}x{first[1][1]}: all views must have one size")
            if size is not None and rgb.size != (size, size):
                rgb = rgb.resize((size, size), Image.Resampling.BICUBIC)
            images.append(torch.from_numpy(np.asarray(rgb, dtype=np.uint8).copy()).permute(2, 0, 1))
            obj.append(len(objects))
            angles.append(angle)
        objects.append(folder.name)
    if not objects:
        raise GankitError(f"{display_path(root)} holds no object folders with views (one sub-folder of "
                          "images per object)")
    name = display_path(root.name)
    return ViewSet(torch.stack(images), torch.tensor(obj), torch.tensor(angles, dtype=torch.float32), objects, name,
                   [f"{name}: {len(objects)} objects, {len(images)} views"])


def load_views(source: str, split: str = "train", size: int | None = None, seed: int = 0,
               cache_dir: str | os.PathLike | None = None, progress: bool = True) -> ViewSet:
    """``data.source`` for novel-view synthesis: a built-in set (``views``, ``views-tiny``) or a
    folder of object folders. A folder's ``test`` split holds out every fifth object (its only
    objects when it has fewer than five)."""
    if source in VIEW_SETS:
        return builtin_views(source, split, size, seed, cache_dir, progress)
    if not source.strip() or not (os.sep in source or source.startswith(".") or Path(source).exists()):
        raise GankitError(f"data.source {short_repr(source)} is neither a view set ({', '.join(VIEW_SETS.names())}) "
                          "nor an existing folder of object folders")
    views = load_view_folder(source, size)
    if len(views.objects) < 5 or split == "all":
        return views
    keep = [i for i in range(len(views.objects)) if (i % 5 == 4) == (split == "test")]
    return views.subset(keep, views.name)


__all__ = ["VIEW_SETS", "RenderedSet", "ViewSet", "builtin_views", "cache_key", "load_view_folder", "load_views",
           "render_set"]
