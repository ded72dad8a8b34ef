"""Per-class reading of a text -> image run on the built-in captioned-fashion set: for the first N
captions of a test split, the share of G's items the `fmnist` classifier gives the class named,
beside the same reading of the real canvases (the classifier's own ceiling), and G's commonest
wrong class. On the held-out combinations it also splits the reading by what was held out for
that class: its position, its look (size x brightness), or both.

Usage:  python bench/text2image_classes.py RUN [--split test-seen] [--n 1000] [--threads 1]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from gankit.data.captioned import (
    CAPTIONED,
    HELDOUT_SPLITS,
    cache_root,
    heldout_parts,
    load_captioned,
)
from gankit.data.text_encoder import embed_captions
from gankit.metrics.text2image import read_items
from gankit.models.text2image import generate, noise
from gankit.text_sampling import load_text_generator

SEED = 12345  # score_builtin's noise seed of test-seen (any split's reading may use it)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path)
    p.add_argument("--split", default="test-seen", choices=HELDOUT_SPLITS)
    p.add_argument("--n", type=int, default=1000, help="captions read")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    lg = load_text_generator(a.run)
    data = load_captioned(lg.config.data, lg.config.text.caption_items, a.split).head(a.n)
    assert data.attrs is not None
    phi = embed_captions([r.read_as for r in lg.read(data.captions)], cache_root(lg.config.data))
    z, eps = noise(len(phi), lg.G, lg.config.model.prior, SEED)
    _, cls_fake, _ = read_items(generate(lg.G, phi, z, eps))
    _, cls_real, _ = read_items(data.images.float() / 127.5 - 1)
    want, names = data.attrs[:, 0], list(CAPTIONED.classes or ())
    print(f"step {lg.step}, {len(want)} {a.split} captions")
    print(f"{'class':12s} {'n':>4s} {'G':>6s} {'real':>6s}  G's commonest wrong reading")
    for c, name in enumerate(names):
        m = want == c
        wrong = cls_fake[m][cls_fake[m] != c]
        top = names[int(torch.bincount(wrong, minlength=len(names)).argmax())] if len(wrong) else "-"
        print(f"{name:12s} {int(m.sum()):4d} {(cls_fake[m] == c).float().mean():6.1%} "
              f"{(cls_real[m] == c).float().mean():6.1%}  {top}")
    print(f"{'all':12s} {len(want):4d} {(cls_fake == want).float().mean():6.1%} {(cls_real == want).float().mean():6.1%}")
    if a.split == "test-heldout-combos":
        held_pos, held_look = heldout_parts(*data.attrs.unbind(1))
        print("held out for the class:")
        for kind, m in (("its position only", held_pos & ~held_look), ("its look only", held_look & ~held_pos),
                        ("both", held_pos & held_look)):
            print(f"  {kind:18s} {int(m.sum()):4d} {(cls_fake[m] == want[m]).float().mean():6.1%} "
                  f"{(cls_real[m] == want[m]).float().mean():6.1%}")


if __name__ == "__main__":
    main()
