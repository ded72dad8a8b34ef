"""Captioned images for text -> image (GAN-INT-CLS, Reed et al. 2016): the built-in
``captioned-fashion`` set, and a folder in Hugging Face imagefolder's layout (``metadata.jsonl``).

``captioned-fashion``: each item is a Fashion-MNIST image (Xiao, Rasul & Vollgraf 2017) placed on
a black 48x48 canvas with three attributes, and a caption that names the item and all three:

- position: one of 9 (a 3x3 layout: top left, top, top right, left, centre, right, bottom left,
  bottom, bottom right); the item's frame touches the canvas edges it names;
- size: small (the 28x28 item scaled to 20x20) or large (28x28);
- brightness: dark or bright (the item scaled so its pixels above 0.1 average 0.25 or 0.6).

Captions come from templates and synonyms ("a small dark sneaker in the top left corner",
"running shoe, top-left, small, dim"). Some of each are held out of training, and so are some
combinations of class and attribute, which gives four splits:

- ``train``: Fashion-MNIST training images, seen combinations, seen wordings;
- ``test-seen``: test images, seen combinations, seen wordings;
- ``test-heldout-combos``: test images, only combinations never trained on (for each class one
  position and one size x brightness pair: "a bag in the centre" never appears in training);
- ``test-heldout-wordings``: test images, seen combinations, each caption with at least one held-
  out template or word ("trainers", "purse", "tiny", "brilliant", "photo of a ...").

Everything is drawn from a fixed seed (``DATA_SEED``), so every run sees the same set; the canvases
are cached as uint8 (``<cache>/captioned/<key>.npy`` with a JSON of the captions and attributes).

A folder of your own: image files (searched recursively) and a ``metadata.jsonl`` beside them,
one JSON object per line with ``file_name`` (the image's path relative to the folder) and
``text`` (its caption); an image may have several lines. A line that is not UTF-8, not JSON,
lacks either key, has an empty caption or names an image that is not there stops the load with a
one-line message naming the file and the line.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from gankit.config import DataConfig
from gankit.data.base import DataTraits, InMemoryData
from gankit.errors import GankitError, display_path, short_repr

NAME = "captioned-fashion"
CANVAS = 48
SIZES = (20, 28)  # small, large: the item's frame side in pixels
BRIGHTNESS = (0.25, 0.6)  # dark, bright: the mean of the item's pixels above FOREGROUND
FOREGROUND = 0.1  # a pixel above this (of 1) belongs to the item
DATA_SEED = 0
TEST_ITEMS = 3000  # items in each test split
MAX_ITEMS = 10**6
SPLITS = ("train", "test-seen", "test-heldout-combos", "test-heldout-wordings")
HELDOUT_SPLITS = SPLITS[1:]
CACHE_FORMAT = "gankit-captioned-v2"

POSITIONS = ("top left", "top", "top right", "left", "centre", "right", "bottom left", "bottom",
             "bottom right")
SIZE_NAMES = ("small", "large")
BRIGHTNESS_NAMES = ("dark", "bright")
ATTRIBUTES = ("class", "position", "size", "brightness")

# Words: (seen in training, held out of it), for each class / size / brightness.
CLASS_WORDS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("t-shirt", "tee"), ("tee shirt",)),
    (("pair of trousers", "pair of pants"), ("pair of jeans",)),
    (("pullover", "sweater"), ("knitted sweater",)),
    (("dress", "frock"), ("gown",)),
    (("coat", "overcoat"), ("jacket",)),
    (("sandal", "summer sandal"), ("strappy sandal",)),
    (("shirt", "button-up shirt"), ("blouse",)),
    (("sneaker", "running shoe"), ("trainers", "athletic shoe")),
    (("bag", "handbag"), ("purse",)),
    (("ankle boot", "boot"), ("bootie",)),
)
SIZE_WORDS = ((("small", "little"), ("tiny",)), (("large", "big"), ("huge",)))
BRIGHTNESS_WORDS = ((("dark", "dim"), ("shadowy",)), (("bright", "light"), ("brilliant",)))
# Positions have no held-out words: whole-sentence embeddings of "upper left" and "top left"
# differ less than those of "top left" and "middle left" (all-MiniLM-L6-v2), so a held-out
# position word would test the encoder, not the GAN.
POSITION_PHRASES = (
    ("in the top left corner", "at the top left"), ("at the top", "at the top centre"),
    ("in the top right corner", "at the top right"), ("on the left", "at the middle left"),
    ("in the centre", "in the middle"), ("on the right", "at the middle right"),
    ("in the bottom left corner", "at the bottom left"), ("at the bottom", "at the bottom centre"),
    ("in the bottom right corner", "at the bottom right"),
)
POSITION_SHORT = ("top-left", "top", "top-right", "left", "centre", "right", "bottom-left", "bottom",
                  "bottom-right")
TEMPLATES = ("a {size} {bright} {item} {pos}", "{pos}, a {size} {bright} {item}",
             "a {bright} {item}, {size}, {pos}", "{item}, {short}, {size}, {bright}",
             "{short}: {size} {bright} {item}", "a {item} {pos}, {size} and {bright}",
             "{size} and {bright}, a {item} {pos}")
HELDOUT_TEMPLATES = ("{pos} sits a {bright} {size} {item}", "photo of a {item}: {size}, {bright}, {short}")

# Held-out combinations: for class c, every item at position HELDOUT_POSITION[c], and every item of
# size x brightness HELDOUT_LOOK[c] (index 2 * size + brightness): 12 of the 36 per class.
HELDOUT_POSITION = tuple((4 * c) % 9 for c in range(10))
HELDOUT_LOOK = tuple(c % 4 for c in range(10))

CAPTIONED = DataTraits(classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                                "Sneaker", "Bag", "Ankle boot"))


def heldout_parts(cls: Tensor, position: Tensor, size: Tensor, brightness: Tensor) -> tuple[Tensor, Tensor]:
    """Whether each item is at its class's held-out position, and whether at its held-out size x
    brightness (two bool tensors, the inputs' shape)."""
    hp = torch.tensor(HELDOUT_POSITION)[cls]
    hl = torch.tensor(HELDOUT_LOOK)[cls]
    return position == hp, 2 * size + brightness == hl


def is_heldout_combo(cls: Tensor, position: Tensor, size: Tensor, brightness: Tensor) -> Tensor:
    """Whether each item's class x attributes is a held-out combination (bool, same shape)."""
    place, look = heldout_parts(cls, position, size, brightness)
    return place | look


@dataclass
class CaptionedData:
    """Items (image, caption): ``images`` (N, C, H, W) uint8 and ``captions`` (N strings); for the
    built-in set also ``attrs`` (N, 4) int64: class, position (0-8), size (0 small, 1 large) and
    brightness (0 dark, 1 bright). An image with several captions is several items."""

    images: Tensor
    captions: list[str]
    name: str
    attrs: Tensor | None = None
    split: str = "train"
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.captions) != len(self.images):
            raise GankitError(f"{self.name}: {len(self.images)} images but {len(self.captions)} captions")

    def __len__(self) -> int:
        return len(self.captions)

    def head(self, n: int) -> CaptionedData:
        """The first ``n`` items."""
        return CaptionedData(self.images[:n], self.captions[:n], self.name,
                             None if self.attrs is None else self.attrs[:n], self.split, list(self.notes))

    def as_images(self) -> InMemoryData:
        """The images alone (with the classes as labels, where known): what a GAN trains on."""
        labels = self.attrs[:, 0].clone() if self.attrs is not None else None
        return InMemoryData(self.images, self.name, labels=labels,
                            classes=list(CAPTIONED.classes or ()) if labels is not None else None,
                            notes=list(self.notes), traits=CAPTIONED if labels is not None else DataTraits())


# --------------------------------------------------------------------------- composing canvases


def normalise_brightness(items: Tensor, target: Tensor) -> Tensor:
    """Float items (N, 1, h, w) in [0, 1] scaled so the mean of each one's pixels above
    ``FOREGROUND`` is ``target`` (N,) (clipped at 1)."""
    fg = items > FOREGROUND
    mean = (items * fg).sum((1, 2, 3)) / fg.sum((1, 2, 3)).clamp(min=1)
    scale = target / mean.clamp(min=1e-3)
    return (items * scale.view(-1, 1, 1, 1)).clamp(0, 1)


def offsets(side: int) -> tuple[int, int, int]:
    """The frame's first row (or column) for the three places along one axis."""
    return 0, (CANVAS - side) // 2, CANVAS - side


def compose(items: Tensor, position: Tensor, size: Tensor, brightness: Tensor) -> Tensor:
    """Fashion-MNIST items uint8 (N, 1, 28, 28) -> canvases uint8 (N, 1, 48, 48), each item
    scaled to its size, its brightness set, and placed at its position."""
    out = torch.zeros(len(items), 1, CANVAS, CANVAS)
    x = items.float() / 255
    for s, side in enumerate(SIZES):
        idx = (size == s).nonzero().flatten()
        if not len(idx):
            continue
        scaled = x[idx] if side == 28 else F.interpolate(x[idx], size=(side, side), mode="bilinear",
                                                          antialias=True, align_corners=False).clamp(0, 1)
        scaled = normalise_brightness(scaled, torch.tensor(BRIGHTNESS)[brightness[idx]])
        for p in range(9):
            sel = (position[idx] == p).nonzero().flatten()
            top, left = offsets(side)[p // 3], offsets(side)[p % 3]
            out[idx[sel], :, top:top + side, left:left + side] = scaled[sel]
    return (out * 255).round().to(torch.uint8)


# --------------------------------------------------------------------------- captions


def _article(text: str) -> str:
    return re.sub(r"\ba (?=[aeiou])", "an ", text)


def caption(rng: np.random.Generator, cls: int, position: int, size: int, brightness: int,
            heldout: bool) -> str:
    """One caption of an item. Seen wordings only, or (``heldout``) one with at least one held-out
    template or word."""

    def pick(words: tuple[tuple[str, ...], tuple[str, ...]]) -> tuple[str, bool]:
        pool = words[0] + (words[1] if heldout else ())
        w = pool[rng.integers(len(pool))]
        return w, w in words[1]

    while True:
        templates = TEMPLATES + (HELDOUT_TEMPLATES if heldout else ())
        template = templates[rng.integers(len(templates))]
        item, h1 = pick(CLASS_WORDS[cls])
        sz, h2 = pick(SIZE_WORDS[size])
        br, h3 = pick(BRIGHTNESS_WORDS[brightness])
        pos = POSITION_PHRASES[position][rng.integers(2)]
        new = template in HELDOUT_TEMPLATES or h1 or h2 or h3
        if new == heldout:
            break
    text = template.format(size=sz, bright=br, item=item, pos=pos, short=POSITION_SHORT[position])
    return _article(text[0].lower() + text[1:])


HELDOUT_WORDS = tuple(w for words in (*CLASS_WORDS, *SIZE_WORDS, *BRIGHTNESS_WORDS) for w in words[1])
_HELDOUT_WORD = re.compile(r"\b(" + "|".join(re.escape(w) for w in HELDOUT_WORDS) + r")\b")
_HELDOUT_TEMPLATE = re.compile(r"( sits an? |^photo of an? )")


def heldout_wording(text: str) -> bool:
    """Whether a caption uses a held-out word or template (none of the training captions does)."""
    return bool(_HELDOUT_WORD.search(text) or _HELDOUT_TEMPLATE.search(text))


def attribute_words(attrs: Tensor) -> list[str]:
    """Short captions of items (N, 4) for grid rows: 'small dark sneaker, top left'."""
    names = [c.lower() for c in CAPTIONED.classes or ()]
    return [f"{SIZE_NAMES[int(s)]} {BRIGHTNESS_NAMES[int(b)]} {names[int(c)]}, {POSITIONS[int(p)]}"
            for c, p, s, b in attrs.tolist()]


def draw_items(split: str, labels: Tensor, seed: int = DATA_SEED) -> tuple[Tensor, list[str]]:
    """Attributes (N, 4) and captions of items whose classes are ``labels`` (N,), for ``split``."""
    if split not in SPLITS:
        raise GankitError(f"unknown split {short_repr(split)}; one of {', '.join(SPLITS)}")
    salt = SPLITS.index(split)
    g = torch.Generator().manual_seed(seed * 1000 + salt)
    n = len(labels)
    position = torch.randint(9, (n,), generator=g)
    size = torch.randint(2, (n,), generator=g)
    brightness = torch.randint(2, (n,), generator=g)
    if split == "test-heldout-combos":  # each class's 12 held-out combinations, uniformly
        combos = [[(p, s, b) for p in range(9) for s in range(2) for b in range(2)
                   if bool(is_heldout_combo(torch.tensor(c), torch.tensor(p), torch.tensor(s), torch.tensor(b)))]
                  for c in range(10)]
        pick = torch.randint(len(combos[0]), (n,), generator=g)
        chosen = torch.tensor([combos[int(c)][int(k)] for c, k in zip(labels, pick, strict=True)]).view(n, 3)
        position, size, brightness = chosen.unbind(1)
    else:  # seen combinations: redraw the held-out ones
        bad = is_heldout_combo(labels, position, size, brightness)
        while bool(bad.any()):
            k = int(bad.sum())
            position[bad] = torch.randint(9, (k,), generator=g)
            size[bad] = torch.randint(2, (k,), generator=g)
            brightness[bad] = torch.randint(2, (k,), generator=g)
            bad = is_heldout_combo(labels, position, size, brightness)
    attrs = torch.stack([labels, position, size, brightness], 1).long()
    rng = np.random.default_rng([seed, salt])
    heldout = split == "test-heldout-wordings"
    captions = [caption(rng, c, p, s, b, heldout) for c, p, s, b in attrs.tolist()]
    return attrs, captions


# --------------------------------------------------------------------------- the built-in set


def _source_images(split: str, root: str | None) -> tuple[Tensor, Tensor, str]:
    from gankit.data.fashion_mnist import FILES, find_root, load_arrays

    part = "train" if split == "train" else "test"
    images, labels = load_arrays(part, root)
    folder = find_root(root)
    stamp = []
    for stem in FILES[part]:
        for name in (stem + ".gz", stem):
            if (folder / name).exists():
                st = (folder / name).stat()
                stamp.append(f"{name}:{st.st_size}:{st.st_mtime_ns}")
                break
    return images, labels, ",".join(stamp)


def captioned_fashion(split: str = "train", n: int = 60_000, root: str | None = None,
                      cache_dir: str | os.PathLike | None = None) -> CaptionedData:
    """The built-in captioned set's ``split``: ``n`` training items (image i is Fashion-MNIST's
    training image i mod 60,000), or ``TEST_ITEMS`` items of a test split (Fashion-MNIST's test
    images 0-2999 for test-seen, 3000-5999 for the held-out combinations, 6000-8999 for the
    held-out wordings)."""
    if split not in SPLITS:
        raise GankitError(f"unknown split {short_repr(split)} of {NAME}; one of {', '.join(SPLITS)}")
    if not 1 <= n <= MAX_ITEMS:
        raise GankitError(f"{NAME} has 1 to {MAX_ITEMS} training items, not {n}")
    images, labels, stamp = _source_images(split, root)
    if split == "train":
        index = torch.arange(n) % len(images)
    else:
        start = HELDOUT_SPLITS.index(split) * TEST_ITEMS
        index = torch.arange(start, start + TEST_ITEMS)
        n = TEST_ITEMS
    key = hashlib.sha256(json.dumps([CACHE_FORMAT, split, n, DATA_SEED, stamp]).encode()).hexdigest()[:32]
    folder = Path(cache_dir) / "captioned" if cache_dir is not None else None
    hit = _cache_read(folder, key, n) if folder is not None else None
    if hit is not None:
        canvases, attrs, captions = hit
    else:
        attrs, captions = draw_items(split, labels[index])
        canvases = compose(images[index], attrs[:, 1], attrs[:, 2], attrs[:, 3])
        if folder is not None:
            _cache_write(folder, key, canvases, attrs, captions)
    note = (f"{NAME} ({split}): {n} captioned 48x48 items from Fashion-MNIST"
            + (", from cache" if hit is not None else ""))
    return CaptionedData(canvases, captions, NAME, attrs, split, [note])


def _cache_read(folder: Path, key: str, n: int) -> tuple[Tensor, Tensor, list[str]] | None:
    try:
        meta = json.loads((folder / f"{key}.json").read_text(encoding="utf-8"))
        array = np.load(folder / f"{key}.npy", allow_pickle=False)
        if (meta.get("format") != CACHE_FORMAT or array.dtype != np.uint8
                or array.shape != (n, 1, CANVAS, CANVAS) or len(meta["captions"]) != n):
            return None
        attrs = torch.tensor(meta["attrs"], dtype=torch.int64)
        if attrs.shape != (n, 4):
            return None
        return torch.from_numpy(np.ascontiguousarray(array)), attrs, [str(c) for c in meta["captions"]]
    except Exception:  # missing, unreadable or damaged: composed again
        return None


def _cache_write(folder: Path, key: str, canvases: Tensor, attrs: Tensor, captions: list[str]) -> None:
    from gankit.fsutil import atomic_write

    try:
        atomic_write(folder / f"{key}.npy", lambda f: np.save(f, canvases.numpy(), allow_pickle=False))
        meta = {"format": CACHE_FORMAT, "attrs": attrs.tolist(), "captions": captions}
        atomic_write(folder / f"{key}.json", lambda f: f.write(json.dumps(meta).encode()))
    except OSError:  # an unwritable cache: composed again next time
        pass


# --------------------------------------------------------------------------- a folder of your own

METADATA = "metadata.jsonl"
MAX_CAPTION = 2000  # characters; the encoder reads at most 256 tokens anyway


def has_captions(source: str) -> bool:
    """Whether ``source`` is a folder holding a metadata.jsonl."""
    return os.path.isfile(os.path.join(os.path.expanduser(source), METADATA))


def read_metadata(path: Path) -> list[tuple[int, str, str]]:
    """(line number, file_name, text) of each non-blank line of a metadata.jsonl; GankitError
    naming the file and the line for the first bad one."""
    shown = display_path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise GankitError(f"cannot read {shown}: {e.strerror}") from None
    rows = []
    for number, line in enumerate(raw.split(b"\n"), 1):
        where = f"{shown} line {number}"
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as e:
            raise GankitError(f"{where}: not UTF-8 text (byte 0x{line[e.start]:02x} at column {e.start + 1}); "
                              "save the file as UTF-8") from None
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise GankitError(f"{where}: not valid JSON ({e.msg} at column {e.colno}); each line must be "
                              'one object like {"file_name": "a.png", "text": "a caption"}') from None
        if not isinstance(obj, dict) or not isinstance(obj.get("file_name"), str) or "text" not in obj:
            raise GankitError(f'{where}: needs an object with "file_name" (a string) and "text", got '
                              f"{short_repr(obj)}")
        caption_text = obj["text"]
        if not isinstance(caption_text, str):
            raise GankitError(f'{where}: "text" must be a string (the caption), got {short_repr(caption_text)}')
        if not caption_text.strip():
            raise GankitError(f"{where}: the caption (\"text\") of {short_repr(obj['file_name'])} is empty; "
                              "give every image a caption, or remove the line")
        if len(caption_text) > MAX_CAPTION:
            raise GankitError(f"{where}: the caption is {len(caption_text)} characters long, over the limit of "
                              f"{MAX_CAPTION}")
        rows.append((number, obj["file_name"], " ".join(caption_text.split())))
    if not rows:
        raise GankitError(f"{shown} holds no captions; write one JSON object per line with "
                          '"file_name" and "text"')
    return rows


def load_captioned_folder(source: str, size: tuple[int, int], channels: int | None = None,
                          cache_dir: str | os.PathLike | None = None, workers: int | None = None) -> CaptionedData:
    """A folder of images with captions in its metadata.jsonl (Hugging Face imagefolder's layout):
    every line an item; images not named by any line are left out (and counted in the notes)."""
    from gankit.data.folder import load_image_folder

    root = Path(os.path.expanduser(source))
    meta_path = root / METADATA
    if not meta_path.is_file():
        raise GankitError(f"{display_path(root)} has no {METADATA}: a text -> image run needs captions, one JSON "
                          'object per line, {"file_name": "a.png", "text": "a caption"} (Hugging Face '
                          "imagefolder's layout)")
    rows = read_metadata(meta_path)
    found = load_image_folder(root, size, channels, cache_dir=cache_dir, workers=workers)
    index = {f: i for i, f in enumerate(found.files)}
    skipped = dict(found.skipped)
    picks = []
    for number, name, _ in rows:
        rel = Path(name).as_posix().removeprefix("./")
        if rel not in index:
            why = f"was skipped: {skipped[rel]}" if rel in skipped else f"names no image in {display_path(root)}"
            raise GankitError(f"{display_path(meta_path)} line {number}: file_name {short_repr(name)} {why}; "
                              "fix the line or add the image")
        picks.append(index[rel])
    used = len(set(picks))
    notes = found.summary().splitlines()
    notes.append(f"{display_path(meta_path)}: {len(rows)} captions of {used} images"
                 + (f"; {len(found.files) - used} images have no caption and are left out"
                    if used < len(found.files) else ""))
    images = found.images[torch.tensor(picks)]
    return CaptionedData(images, [r[2] for r in rows], display_path(root.name or str(root)), notes=notes)




def cache_root(data_cfg: DataConfig) -> Path:
    """Where decoded data, the text encoder and caption embeddings are cached: data.cache_dir, else
    $GANKIT_CACHE, else ~/.cache/gankit."""
    from gankit.data import default_cache_dir

    return Path(os.path.expanduser(data_cfg.cache_dir)) if data_cfg.cache_dir is not None else default_cache_dir()


def load_captioned(data_cfg: DataConfig, caption_items: int = 60_000, split: str = "train") -> CaptionedData:
    """The captioned data ``data.source`` names: ``captioned-fashion`` (its ``split``), or a folder
    with a metadata.jsonl (one split: ``split`` is ignored)."""
    source = data_cfg.source
    if source == NAME:
        if data_cfg.size() not in (None, (CANVAS, CANVAS)):
            raise GankitError(f"data.source={NAME} is {CANVAS}x{CANVAS}; leave data.image_size out (or {CANVAS})")
        if data_cfg.channels not in (None, 1):
            raise GankitError(f"data.source={NAME} is gray; leave data.channels out (or 1)")
        return captioned_fashion(split, caption_items, data_cfg.data_root, cache_root(data_cfg))
    if not (os.sep in source or source.startswith(".") or Path(source).exists()):
        raise GankitError(f"data.source {short_repr(source)} is neither {NAME} nor a folder of images with "
                          f"captions ({METADATA})")
    return load_captioned_folder(source, data_cfg.size() or (64, 64), data_cfg.channels, cache_root(data_cfg),
                                 data_cfg.workers)


__all__ = ["ATTRIBUTES", "CANVAS", "CAPTIONED", "NAME", "SPLITS", "CaptionedData", "attribute_words",
           "cache_root", "captioned_fashion", "compose", "draw_items", "has_captions", "heldout_wording",
           "heldout_parts", "is_heldout_combo",
           "load_captioned", "load_captioned_folder", "read_metadata"]
