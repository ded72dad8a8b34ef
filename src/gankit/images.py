"""Image helpers: convert gankit's float images to uint8, tile them into grids, write PNGs.

Inside gankit an image batch is a float tensor of shape (N, C, H, W) with values in [-1, 1]
and C in {1, 3}. These helpers turn such batches into uint8 pixels and PNG files. PNGs are
written atomically (temp file in the same folder, then ``os.replace``), so a reader such as
the HTML report never sees a half-written file.
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from gankit.fsutil import (
    UMASK,
    atomic_write_bytes,
    clean_stale_temps,
    fsync_dir,
    temp_prefix,
    writing,
)

__all__ = ["label_rows", "make_grid", "png_bytes", "save_each", "save_grid", "save_png", "to_uint8"]


def check_images(images: torch.Tensor) -> None:
    """Raise TypeError/ValueError unless ``images`` is a float (N, C, H, W) batch with C in {1, 3}:
    gankit's image convention (values in [-1, 1])."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor, got {type(images).__name__}")
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(
            f"expected images of shape (N, C, H, W) with C in {{1, 3}}, got {tuple(images.shape)}"
        )
    if not images.is_floating_point():
        raise ValueError(
            f"expected float images in [-1, 1], got dtype {images.dtype} "
            "(convert uint8 pixels p with p / 127.5 - 1)"
        )


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Map float images in [-1, 1] to uint8 pixels in [0, 255], same shape, on the CPU.

    The mapping is ``round((x + 1) * 127.5)`` clamped to [0, 255], with ``torch.round``
    (round half to even): -1 -> 0, 0 -> 128 (127.5 rounds to even 128), 1 -> 255. Values
    outside [-1, 1] are clamped; NaN maps to 128 (as if 0), +inf to 255 and -inf to 0.
    Works on any device; the result is always a CPU tensor.
    """
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"to_uint8 expects a torch.Tensor, got {type(images).__name__}")
    x = torch.nan_to_num(images.detach().float(), nan=0.0, posinf=1.0, neginf=-1.0)
    out = ((x + 1.0) * 127.5).round_().clamp_(0.0, 255.0).to(torch.uint8)
    return out.cpu()


def _check_batch(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor, got {type(images).__name__}")
    if images.ndim != 4:
        raise ValueError(f"expected images of shape (N, C, H, W), got shape {tuple(images.shape)}")
    if images.shape[1] not in (1, 3):
        raise ValueError(
            f"expected 1 or 3 channels, got {images.shape[1]} (shape {tuple(images.shape)})"
        )
    if images.shape[0] < 1:
        raise ValueError("expected at least one image, got an empty batch")


def make_grid(
    images: torch.Tensor,
    nrow: int | None = None,
    padding: int = 2,
    pad_value: int = 255,
) -> np.ndarray:
    """Tile a batch of float images in [-1, 1] into one uint8 picture.

    Args:
        images: (N, C, H, W) float tensor, C in {1, 3}.
        nrow: images per row; default ``ceil(sqrt(N))``. The grid has ``min(nrow, N)``
            columns and ``ceil(N / nrow)`` rows; unused cells in the last row stay pad colour.
        padding: pixels between tiles and around the border.
        pad_value: grey level (0..255) of the padding.

    Returns:
        uint8 array of shape (H_grid, W_grid, 3) for RGB or (H_grid, W_grid) for grey, where
        ``H_grid = rows * (H + padding) + padding`` and ``W_grid = cols * (W + padding) + padding``.
        Tile k sits at row ``k // cols``, column ``k % cols``, its top-left pixel at
        ``(padding + r * (H + padding), padding + c * (W + padding))``.
    """
    _check_batch(images)
    n, c, h, w = images.shape
    if nrow is None:
        nrow = math.ceil(math.sqrt(n))
    if nrow < 1:
        raise ValueError(f"nrow must be >= 1, got {nrow}")
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    if not 0 <= pad_value <= 255:
        raise ValueError(f"pad_value must be in 0..255, got {pad_value}")
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    pixels = to_uint8(images).permute(0, 2, 3, 1).numpy()  # (N, H, W, C)
    grid = np.full(
        (rows * (h + padding) + padding, cols * (w + padding) + padding, c),
        pad_value,
        dtype=np.uint8,
    )
    for k in range(n):
        r, col = divmod(k, cols)
        top = padding + r * (h + padding)
        left = padding + col * (w + padding)
        grid[top : top + h, left : left + w] = pixels[k]
    return grid[:, :, 0] if c == 1 else grid


def _to_pil(array: np.ndarray) -> Image.Image:
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"expected a uint8 array, got dtype {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)):
        raise ValueError(f"expected an HxW or HxWx3 array, got shape {array.shape}")
    return Image.fromarray(np.ascontiguousarray(array))


# The formats a single image file is written in, by the file name's extension (anything else is
# PNG). JPEG at quality 95: sample grids are for looking at, not for scoring.
IMAGE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP"}


def png_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 HxW (grey) or HxWx3 (RGB) array as PNG and return the file bytes."""
    return image_bytes(array, "PNG")


def image_bytes(array: np.ndarray, fmt: str) -> bytes:
    """Encode a uint8 HxW (grey) or HxWx3 (RGB) array in ``fmt`` (a Pillow format name)."""
    buf = io.BytesIO()
    _to_pil(array).save(buf, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buf.getvalue()


def format_of(path: str | os.PathLike) -> str | None:
    """The image format a file name asks for (``.jpg`` -> JPEG), or None for no image suffix."""
    return IMAGE_FORMATS.get(Path(path).suffix.lower())


def save_png(array: np.ndarray, path: str | os.PathLike) -> None:
    """Write a uint8 HxW or HxWx3 array to ``path`` as PNG, atomically.

    The bytes go to a hidden temp file in the same folder which is then renamed over
    ``path`` with ``os.replace``; readers see either the old file or the complete new one.
    The parent folder is created if needed.
    """
    atomic_write_bytes(path, png_bytes(array))


#: Where a TrueType font for row labels is looked for first (Debian's fonts-dejavu-core).
SYSTEM_FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


@functools.lru_cache(maxsize=8)
def label_font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans at ``size`` pixels: the system's copy, else matplotlib's (a dependency, so it is
    always there), else Pillow's built-in scalable font. Pillow's old bitmap default is 11 px
    whatever the tiles, and blurs into "Ank.e boo:" once a grid is enlarged."""
    with contextlib.suppress(OSError):
        return ImageFont.truetype(str(SYSTEM_FONT), size)
    with contextlib.suppress(OSError, ImportError):
        import matplotlib  # only here: importing it costs a training run a few tenths of a second

        return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), size)
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the bitmap font only
        return ImageFont.load_default()


def label_size(row_height: int) -> int:
    """Pixel size of the row labels for tiles ``row_height`` pixels high: half a tile, so a name
    stays as legible as the tiles at any zoom, and never under 10 px (tiny tiles), nor over 28."""
    return min(28, max(10, round(row_height * 0.5)))


def label_rows(grid: np.ndarray, labels: list[str], row_height: int, padding: int = 2) -> np.ndarray:
    """Widen a grid from :func:`make_grid` with a white margin on the left naming each row
    (``labels[r]`` beside row r, tiles ``row_height`` pixels high): class-per-row and
    input/output/target grids say what each row is. The names are set in DejaVu Sans at
    :func:`label_size` pixels (:func:`label_font`), so the margin grows with the tiles."""
    font = label_font(label_size(row_height))
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    gap = max(3, round(getattr(font, "size", 9) / 3))  # white space either side of the names
    margin = int(max(probe.textlength(t, font=font) for t in labels)) + padding + 2 * gap if labels else 0
    rgb = grid.ndim == 3
    out = np.full((grid.shape[0], grid.shape[1] + margin, *grid.shape[2:]), 255, dtype=np.uint8)
    out[:, margin:] = grid
    img = _to_pil(out)
    draw = ImageDraw.Draw(img)
    truetype = isinstance(font, ImageFont.FreeTypeFont)
    for r, text in enumerate(labels):
        top = padding + r * (row_height + padding)
        fill = (0, 0, 0) if rgb else 0
        if truetype:  # anchor "lm": the text's left end, its middle on the row's middle
            draw.text((padding + gap, top + row_height / 2), text, fill=fill, font=font, anchor="lm")
        else:
            bbox = draw.textbbox((0, 0), text, font=font)
            y = top + max(0, (row_height - (bbox[3] - bbox[1])) // 2) - bbox[1]
            draw.text((padding + gap, y), text, fill=fill, font=font)
    return np.asarray(img)


def save_grid(images: torch.Tensor, path: str | os.PathLike, nrow: int | None = None,
              row_labels: list[str] | None = None) -> None:
    """Tile ``images`` (float (N, C, H, W) in [-1, 1]) with :func:`make_grid` and save it in the
    format its extension names (PNG otherwise), atomically; ``row_labels`` names the rows in a
    margin on the left (:func:`label_rows`)."""
    grid = make_grid(images, nrow=nrow)
    if row_labels:
        grid = label_rows(grid, row_labels, images.shape[2])
    atomic_write_bytes(path, image_bytes(grid, format_of(path) or "PNG"))


def save_each(
    images: torch.Tensor, directory: str | os.PathLike, prefix: str = "sample"
) -> list[Path]:
    """Save each image of a float (N, C, H, W) batch as its own PNG.

    Files are named ``f"{prefix}-{i:05d}.png"`` for i = 0..N-1 inside ``directory``. Returns the
    written paths in order.

    All N are written first into a hidden temporary folder beside ``directory``
    (``.NAME.<pid>.XXXX.tmp``, fsynced), so a save that is killed or fails (a full disk) never
    leaves fewer files than asked under the name: a new ``directory`` is that folder renamed into
    place, whole. Into a folder that exists already (its other files are kept) the N files are then
    moved, one rename each: only a save killed during those renames leaves part of the set. A
    killed save's temporary folder is removed by the next ``save_each`` beside it; a full disk
    raises ``gankit.fsutil.DiskFull`` naming ``directory``.
    """
    _check_batch(images)
    directory = Path(directory)
    parent, name = directory.parent, directory.name or "samples"
    pixels = to_uint8(images).permute(0, 2, 3, 1).numpy()
    names = [f"{prefix}-{i:05d}.png" for i in range(len(pixels))]
    with writing(directory):
        parent.mkdir(parents=True, exist_ok=True)
        clean_stale_temps(parent, name)
        tmp = Path(tempfile.mkdtemp(dir=parent, prefix=temp_prefix(name), suffix=".tmp"))
        try:
            os.chmod(tmp, 0o777 & ~UMASK)  # mkdtemp's folder is the owner's only
            for file, pic in zip(names, pixels, strict=True):
                with open(tmp / file, "wb") as f:
                    f.write(png_bytes(pic))
                    f.flush()
                    os.fsync(f.fileno())
            fsync_dir(tmp)
            try:
                if os.path.lexists(directory):
                    raise FileExistsError(directory)
                os.rename(tmp, directory)  # the whole set appears at once
            except OSError:  # an existing folder: move the files in
                directory.mkdir(parents=True, exist_ok=True)
                for file in names:
                    os.replace(tmp / file, directory / file)
                tmp.rmdir()
            fsync_dir(parent)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return [directory / file for file in names]
