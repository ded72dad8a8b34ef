"""Clothing emoji from Debian packages, and the built-in unpaired task ``fashion2emoji``.

The target domain of the Domain Transfer Network (Taigman, Polyak & Wolf 2017) in gankit: emoji of
the ten Fashion-MNIST classes, drawn from four emoji sets that Debian packages (nothing is
downloaded):

============  ==========================  ===========================================================
style         Debian package              what is read
============  ==========================  ===========================================================
``noto``      fonts-noto-color-emoji      NotoColorEmoji.ttf, a CBDT colour font (its one bitmap size,
                                          109 px: ``ImageFont.truetype(path, 109)``, drawn with
                                          ``embedded_color=True``)
``symbola``   fonts-symbola               Symbola_hint.ttf, black outline glyphs: drawn as a mask and
                                          filled with a random light colour
``gemojione`` ruby-gemojione              EmojiOne 2 PNGs (64 px), named by code point (1F455.png)
``emojify``   libjs-emojify               emojify.js PNGs (64 px), named by short name (tshirt.png)
============  ==========================  ===========================================================

The class -> emoji mapping (``CLASS_EMOJI``): Unicode has no emoji for a pullover or a sneaker as
such, and the older sets (gemojione, emojify) have no coat, so some classes take the nearest
garment, and a class may have several glyphs (every style draws the ones it has):

====  ===========  ======================================================================
 0    T-shirt/top  👕 U+1F455 t-shirt
 1    Trouser      👖 U+1F456 jeans
 2    Pullover     👚 U+1F45A woman's clothes (a top with sleeves: the nearest to a pullover)
 3    Dress        👗 U+1F457 dress
 4    Coat         🧥 U+1F9E5 coat, 🥼 U+1F97C lab coat (noto, symbola: the newer glyphs),
                   👘 U+1F458 kimono (a long robe with sleeves: the coat of the older sets)
 5    Sandal       👡 U+1F461 woman's sandal, 👠 U+1F460 high-heeled shoe (Fashion-MNIST's
                   sandals include strappy heels)
 6    Shirt        👔 U+1F454 necktie (a collared shirt with a tie)
 7    Sneaker      👟 U+1F45F running shoe (emojify: its ``shoe.png``, a white sneaker),
                   👞 U+1F45E man's shoe (a low shoe)
 8    Bag          👜 U+1F45C handbag, 👛 U+1F45B purse, 👝 U+1F45D clutch bag
 9    Ankle boot   👢 U+1F462 woman's boot, 🥾 U+1F97E hiking boot (noto)
====  ===========  ======================================================================

No two classes share a glyph. Each style holds only 14-17 of these glyphs, so the set is made by
augmentation (``render_emoji``), deterministic from a seed: every image picks a class (the classes
in equal numbers), one of its glyphs in one style (uniformly over the (glyph, style) pairs there
are), and then a random scale (the glyph's longer side 70-95 % of the image), rotation (+-10
degrees), position (anywhere it fits), horizontal flip, and colour jitter (brightness x 0.75-1.25,
saturation x 0.6-1.4, a hue rotation of +-25 degrees; symbola's outlines take a random light
colour). The glyph is drawn on black, as Fashion-MNIST's items are: the fixed feature function f
of the DTN (the fmnist classifier) reads both domains, and sees an emoji in gray as a bright item
on a dark ground, as it was trained. Rendering is supersampled 2x, then box-filtered.

``fashion2emoji`` (split "train": Fashion-MNIST's 60,000 training photos and 6,000 emoji of seed
0; "test": its 10,000 test photos and 2,000 emoji of seed 1) is cached under the cache folder
(``$GANKIT_CACHE``) and rebuilt whenever the packages' files change.
"""

from __future__ import annotations

import glob
import hashlib
import io
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from gankit.errors import GankitError, display_path

if TYPE_CHECKING:
    from gankit.data.paired import UnpairedData

RENDER_VERSION = 1  # bump when the rendering changes: the caches and the emoji classifier follow it
DEFAULT_SIZE = 32
SPLITS = {"train": (0, 600), "test": (1, 200)}  # split -> (seed, images per class)


@dataclass(frozen=True)
class Style:
    """One installed emoji set: its Debian package and where its glyphs are."""

    name: str
    package: str
    path: str  # a font file, or a folder of PNG files
    kind: str  # "color-font", "outline-font", "png-codepoint", "png-name"


STYLES: tuple[Style, ...] = (
    Style("noto", "fonts-noto-color-emoji", "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf", "color-font"),
    Style("symbola", "fonts-symbola", "/usr/share/fonts/truetype/ancient-scripts/Symbola_hint.ttf", "outline-font"),
    Style("gemojione", "ruby-gemojione",
          "/usr/share/rubygems-integration/all/gems/gemojione-*/assets/png", "png-codepoint"),
    Style("emojify", "libjs-emojify", "/usr/share/javascript/emojify.js/images/emoji", "png-name"),
)
PACKAGES = " ".join(s.package for s in STYLES)


@dataclass(frozen=True)
class Glyph:
    char: str
    emojify: str | None = None  # emojify.js's file name (None: not in that set)


# Fashion-MNIST class index -> its emoji (see the module docstring for the choices)
CLASS_EMOJI: tuple[tuple[Glyph, ...], ...] = (
    (Glyph("\U0001F455", "tshirt"),),
    (Glyph("\U0001F456", "jeans"),),
    (Glyph("\U0001F45A", "womans_clothes"),),
    (Glyph("\U0001F457", "dress"),),
    (Glyph("\U0001F9E5"), Glyph("\U0001F97C"), Glyph("\U0001F458", "kimono")),
    (Glyph("\U0001F461", "sandal"), Glyph("\U0001F460", "high_heel")),
    (Glyph("\U0001F454", "necktie"),),
    (Glyph("\U0001F45F", "shoe"), Glyph("\U0001F45E", "mans_shoe")),
    (Glyph("\U0001F45C", "handbag"), Glyph("\U0001F45B", "purse"), Glyph("\U0001F45D", "pouch")),
    (Glyph("\U0001F462", "boot"), Glyph("\U0001F97E")),
)
NUM_CLASSES = len(CLASS_EMOJI)
BASE = 64  # side of the square every glyph is normalised to before augmentation
NOTO_SIZE = 109  # the only bitmap size of Noto Color Emoji's CBDT strikes


def _found(style: Style) -> Style | None:
    """``style`` with its path resolved (a ``*`` in it: the newest version installed), or None."""
    if "*" in style.path:
        matches = sorted(glob.glob(style.path))
        return Style(style.name, style.package, matches[-1], style.kind) if matches else None
    return style if Path(style.path).exists() else None


def installed_styles() -> tuple[list[Style], list[Style]]:
    """(the styles whose files are here, their paths resolved; the ones missing)."""
    found = [(s, _found(s)) for s in STYLES]
    return [f for _, f in found if f is not None], [s for s, f in found if f is None]


def missing_message(missing: list[Style]) -> str:
    pk = " ".join(s.package for s in missing)
    return (f"no clothing emoji found: fashion2emoji draws them from Debian packages, none of which is "
            f"installed here ({', '.join(display_path(s.path) for s in missing)} missing); install "
            f"them with `apt-get install {pk}` (or give your own target images: --data PHOTO_DIR "
            "--partner EMOJI_DIR)")


# --------------------------------------------------------------------------- base glyphs


def _square(rgba: np.ndarray) -> Tensor | None:
    """uint8 (H, W, 4) -> premultiplied float (4, BASE, BASE): cropped to the alpha's bounding box,
    centred on a transparent square, resized with antialiasing; None if nothing is drawn."""
    a = rgba[..., 3]
    ys, xs = np.nonzero(a > 8)
    if len(ys) == 0:
        return None
    crop = rgba[ys.min():ys.max() + 1, xs.min():xs.max() + 1].astype(np.float32) / 255
    h, w = crop.shape[:2]
    side = max(h, w)
    sq = np.zeros((side, side, 4), np.float32)
    top, left = (side - h) // 2, (side - w) // 2
    sq[top:top + h, left:left + w] = crop
    t = torch.from_numpy(sq).permute(2, 0, 1)
    t = torch.cat([t[:3] * t[3:], t[3:]])  # premultiplied: resizing does not bleed colour into the ground
    t = F.interpolate(t[None], size=(BASE, BASE), mode="bilinear", antialias=True, align_corners=False)[0]
    return t.clamp_(0, 1)


def _font_glyphs(style: Style, chars: list[str]) -> dict[str, Tensor]:
    from PIL import Image, ImageDraw, ImageFont

    try:
        font = ImageFont.truetype(style.path, size=NOTO_SIZE if style.kind == "color-font" else 96)
    except OSError as e:
        raise GankitError(f"cannot read the emoji font {display_path(style.path)} ({e}); reinstall it with "
                          f"`apt-get install --reinstall {style.package}`") from None

    def draw(ch: str) -> np.ndarray:
        im = Image.new("RGBA", (160, 160), (0, 0, 0, 0))
        if style.kind == "color-font":
            ImageDraw.Draw(im).text((8, 8), ch, font=font, embedded_color=True)
        else:  # an outline glyph: its ink becomes the mask, filled white (coloured when augmented)
            ImageDraw.Draw(im).text((8, 8), ch, font=font, fill=(255, 255, 255, 255))
        return np.asarray(im)

    notdef = draw("\U0010FFFD")  # a private-use code point: what this font draws for a missing glyph
    out = {}
    for ch in chars:
        pic = draw(ch)
        if np.array_equal(pic, notdef):
            continue
        t = _square(pic)
        if t is not None:
            out[ch] = t
    return out


def _png_glyphs(style: Style, glyphs: list[Glyph]) -> dict[str, Tensor]:
    from PIL import Image

    out = {}
    found = sorted(glob.glob(style.path))  # the path may name the gem's version with a wildcard
    folder = Path(found[-1]) if found else Path(style.path)
    for g in glyphs:
        name = f"{ord(g.char):X}.png" if style.kind == "png-codepoint" else (g.emojify and g.emojify + ".png")
        if not name:
            continue
        p = folder / name
        if not p.is_file():
            continue
        try:
            with Image.open(p) as im:
                pic = np.asarray(im.convert("RGBA"))
        except OSError as e:
            raise GankitError(f"cannot read the emoji {display_path(p)} ({e}); reinstall it with "
                              f"`apt-get install --reinstall {style.package}`") from None
        t = _square(pic)
        if t is not None:
            out[g.char] = t
    return out


@dataclass
class Bases:
    """Every (glyph, style) pair found: premultiplied RGBA (G, 4, BASE, BASE), class (G,), style (G,)."""

    images: Tensor
    labels: Tensor
    styles: Tensor
    style_names: list[str]
    missing: list[Style]


def load_bases(styles: list[Style] | None = None) -> Bases:
    """The glyphs of ``CLASS_EMOJI`` in every installed style (or in ``styles``)."""
    if styles is None:
        styles, missing = installed_styles()
    else:
        missing = []
    if not styles:
        raise GankitError(missing_message(missing))
    glyphs = [g for cls in CLASS_EMOJI for g in cls]
    images, labels, style_ix = [], [], []
    for si, style in enumerate(styles):
        found = (_font_glyphs(style, [g.char for g in glyphs]) if style.kind.endswith("font")
                 else _png_glyphs(style, glyphs))
        for c, cls in enumerate(CLASS_EMOJI):
            for g in cls:
                if g.char in found:
                    images.append(found[g.char])
                    labels.append(c)
                    style_ix.append(si)
    labels_t = torch.tensor(labels, dtype=torch.int64)
    absent = [c for c in range(NUM_CLASSES) if not (labels_t == c).any()]
    if absent:
        raise GankitError(f"the emoji sets here ({', '.join(s.name for s in styles)}) draw no glyph for class(es) "
                          f"{absent}; install {PACKAGES} (apt-get install)")
    return Bases(torch.stack(images), labels_t, torch.tensor(style_ix), [s.name for s in styles], missing)


# --------------------------------------------------------------------------- augmentation


def _hue_matrices(angle: Tensor) -> Tensor:
    """(N,) radians -> (N, 3, 3): rotations of RGB about the gray axis (Rodrigues' formula)."""
    k = torch.full((3,), 1 / math.sqrt(3), dtype=torch.float32)
    K = torch.tensor([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    eye = torch.eye(3)
    s, c = angle.sin()[:, None, None], angle.cos()[:, None, None]
    return eye + s * K + (1 - c) * (K @ K)


def augment(bases: Bases, n_per_class: int, size: int, seed: int, chunk: int = 512) -> tuple[Tensor, Tensor]:
    """``n_per_class`` x 10 augmented emoji on black: uint8 (N, 3, size, size), labels (N,),
    deterministic from ``seed`` (see the module docstring for the draws)."""
    g = torch.Generator().manual_seed(seed)
    n = n_per_class * NUM_CLASSES
    labels = torch.arange(n) % NUM_CLASSES
    # a (glyph, style) pair of each image's class, uniformly
    u = torch.rand(n, generator=g)
    pick = torch.empty(n, dtype=torch.int64)
    for c in range(NUM_CLASSES):
        of_c = (bases.labels == c).nonzero().squeeze(1)
        m = labels == c
        pick[m] = of_c[(u[m] * len(of_c)).long().clamp_(max=len(of_c) - 1)]
    scale = 0.70 + 0.25 * torch.rand(n, generator=g)
    theta = (torch.rand(n, generator=g) * 2 - 1) * math.radians(10)
    room = 1 - scale  # in normalised coordinates [-1, 1] the glyph may move this far either way
    shift = (torch.rand(n, 2, generator=g) * 2 - 1) * room[:, None]
    flip = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
    bright = 0.75 + 0.5 * torch.rand(n, generator=g)
    sat = 0.6 + 0.8 * torch.rand(n, generator=g)
    hue = (torch.rand(n, generator=g) * 2 - 1) * math.radians(25)
    # symbola's outlines: a random light colour (hue anywhere, saturation <= 0.6, value >= 0.7)
    ink_h, ink_s, ink_v = torch.rand(n, generator=g), 0.6 * torch.rand(n, generator=g), \
        0.7 + 0.3 * torch.rand(n, generator=g)
    outline = torch.tensor([name == "symbola" for name in bases.style_names])[bases.styles[pick]]
    # output -> input coordinates: in = F (1/s) R(-theta) (out - shift)
    cos, sin = theta.cos(), theta.sin()
    A = torch.stack([torch.stack([cos, sin], 1), torch.stack([-sin, cos], 1)], 1) / scale[:, None, None]
    A[:, 0, :] *= flip[:, None]
    affine = torch.cat([A, -(A @ shift[:, :, None])], 2)  # (n, 2, 3)
    ink = torch.from_numpy(_hsv_to_rgb(ink_h.numpy(), ink_s.numpy(), ink_v.numpy())).float()  # (n, 3)
    mats = _hue_matrices(hue)
    out = torch.empty(n, 3, size, size, dtype=torch.uint8)
    for i in range(0, n, chunk):
        sl = slice(i, i + chunk)
        src = bases.images[pick[sl]]
        grid = F.affine_grid(affine[sl], [len(src), 4, 2 * size, 2 * size], align_corners=False)
        x = F.avg_pool2d(F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False), 2)
        rgb, alpha = x[:, :3], x[:, 3:]
        rgb = torch.where(outline[sl, None, None, None], ink[sl, :, None, None] * alpha, rgb)
        gray = (0.299 * rgb[:, 0:1] + 0.587 * rgb[:, 1:2] + 0.114 * rgb[:, 2:3])
        rgb = gray + sat[sl, None, None, None] * (rgb - gray)
        rgb = torch.einsum("nij,njhw->nihw", mats[sl], rgb) * bright[sl, None, None, None]
        rgb = torch.minimum(rgb.clamp(min=0), alpha)  # premultiplied: never brighter than its coverage
        out[sl] = (rgb * 255).round_().to(torch.uint8)
    return out, labels


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    i = np.floor(h * 6).astype(np.int64) % 6
    f = h * 6 - np.floor(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    table = np.stack([np.stack(c, 1) for c in ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))])
    return table[i, np.arange(len(h))]


# --------------------------------------------------------------------------- the set, cached


def _fingerprint(styles: list[Style]) -> list[list[object]]:
    """What the rendering reads, so a changed package rebuilds the cache: each style's path and
    the size and modification time of its font file or PNG folder."""
    out: list[list[object]] = []
    for s in styles:
        st = os.stat(s.path)
        out.append([s.name, s.path, st.st_size, int(st.st_mtime)])
    return out


def render_emoji(n_per_class: int, size: int = DEFAULT_SIZE, seed: int = 0, channels: int = 3,
                 cache_dir: str | os.PathLike | None = None) -> tuple[Tensor, Tensor, list[str]]:
    """``n_per_class`` augmented emoji of each class from every installed style: (uint8 images
    (N, channels, size, size), labels (N,), notes for the user). Cached under ``cache_dir``
    (default: gankit's cache folder) by the arguments and the packages' files."""
    from gankit.data import default_cache_dir

    if size < 4 or size > 1024:
        raise GankitError(f"emoji are rendered at 4 to 1024 pixels, not {size}; set data.image_size")
    styles, missing = installed_styles()
    if not styles:
        raise GankitError(missing_message(missing))
    notes = [f"emoji: {', '.join(s.name for s in styles)}" + (
        f"; not installed: {', '.join(s.name for s in missing)} (apt-get install "
        f"{' '.join(s.package for s in missing)} for more variety)" if missing else "")]
    key = {"version": RENDER_VERSION, "n": n_per_class, "size": size, "seed": seed, "channels": channels,
           "styles": _fingerprint(styles)}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = cache / "emoji" / f"{digest}.npz"
    try:
        with np.load(path, allow_pickle=False) as z:
            images, labels = torch.from_numpy(z["images"].copy()), torch.from_numpy(z["labels"].copy())
        if images.shape == (n_per_class * NUM_CLASSES, channels, size, size) and images.dtype == torch.uint8:
            return images, labels, notes
    except (OSError, ValueError, KeyError, EOFError):
        pass  # not cached yet, or damaged: render it again
    images, labels = augment(load_bases(styles), n_per_class, size, seed)
    if channels == 1:
        images = (0.299 * images[:, 0:1].float() + 0.587 * images[:, 1:2].float()
                  + 0.114 * images[:, 2:3].float()).round_().to(torch.uint8)
    try:
        from gankit.fsutil import atomic_write_bytes

        buf = io.BytesIO()
        np.savez(buf, images=images.numpy(), labels=labels.numpy())
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, buf.getvalue())
    except OSError:
        pass  # an unwritable cache only costs the rendering next time
    return images, labels, notes


def fashion2emoji(split: str = "train", root: str | None = None, size: tuple[int, int] | None = None,
                  channels: int | None = None, cache_dir: str | os.PathLike | None = None,
                  items: int = 0) -> UnpairedData:
    """The built-in unpaired task: A = Fashion-MNIST photos (``split``; its first ``items`` if > 0),
    B = augmented clothing emoji of the same ten classes, both ``size`` (default 32x32).
    ``channels`` None: photos gray (1), emoji RGB (3); 1 or 3: both so."""
    from gankit.data.fashion_mnist import load_arrays, resize_cover
    from gankit.data.paired import UnpairedData

    h, w = size or (DEFAULT_SIZE, DEFAULT_SIZE)
    if h != w:
        raise GankitError(f"fashion2emoji's emoji are square: data.image_size {h}x{w} is not; give one side")
    seed, per_class = SPLITS[split]
    photos, labels_A = load_arrays(split, root)
    if items:
        photos, labels_A = photos[:items], labels_A[:items]
    photos = resize_cover(photos, (h, w))
    if channels == 3:
        photos = photos.expand(-1, 3, -1, -1).contiguous()
    emoji, labels_B, notes = render_emoji(per_class, h, seed, 1 if channels == 1 else 3, cache_dir)
    return UnpairedData(photos, emoji, "fashion2emoji", ("photo", "emoji"), notes,
                        labels_A=labels_A, labels_B=labels_B, target_classifier="emoji")


__all__ = ["CLASS_EMOJI", "DEFAULT_SIZE", "NUM_CLASSES", "PACKAGES", "RENDER_VERSION", "STYLES", "Bases", "Glyph",
           "Style", "augment", "fashion2emoji", "installed_styles", "load_bases", "render_emoji"]
