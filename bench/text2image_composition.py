"""Whose failure is a class drawn at a place it never trained at: the sentence encoder's, or G's?

Two readings of a text -> image run on the built-in captioned-fashion set:

1. A linear probe (logistic regression on the training captions' embeddings, centred and scaled as
   G reads them) for the class and the place, scored on the held-out combinations' captions: if it
   reads them, the embedding carries both, linearly.
2. For each class at its held-out place, G given three embeddings of one template: the caption's
   own, the sum e(class at a seen place) + e(another class at the held-out place) - e(that other
   class at the seen place) (all three seen in training), and the class at the seen place. If the
   sum draws no better than the caption's own embedding, the embedding is not what G fails on.

3. With ``--g-fusion split`` (the where reads a few directions of the code, the rest of G the
   others): for the same captions, G given the where of the held-out caption and the rest of the
   code of the class at a seen place, and the other way round. If the where placed the item and
   the rest said only what to draw, the first would draw the class at the held-out place.

Usage:  python bench/text2image_composition.py RUN [--per-look 6] [--threads 1]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

from gankit.data.captioned import (
    BRIGHTNESS_WORDS,
    CLASS_WORDS,
    HELDOUT_LOOK,
    HELDOUT_POSITION,
    POSITION_PHRASES,
    SIZE_WORDS,
    cache_root,
    load_captioned,
)
from gankit.data.text_encoder import embed_captions
from gankit.metrics.text2image import read_items
from gankit.models.text2image import FusedGenerator, TextGenerator, TextNorm, generate, noise
from gankit.text_sampling import load_text_generator

NOISES = 10  # G's draws per caption


def caption(cls: int, place: int, size: int, bright: int) -> str:
    """The first training template with each attribute's first training word."""
    return (f"a {SIZE_WORDS[size][0][0]} {BRIGHTNESS_WORDS[bright][0][0]} {CLASS_WORDS[cls][0][0]} "
            f"{POSITION_PHRASES[place][0]}")


def probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor) -> float:
    """Accuracy on (test_x, test_y) of a logistic regression fitted on (train_x, train_y)."""
    k = int(train_y.max()) + 1
    W = torch.zeros(train_x.shape[1], k, requires_grad=True)
    b = torch.zeros(k, requires_grad=True)
    opt = torch.optim.LBFGS([W, b], max_iter=200)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(train_x @ W + b, train_y) + 1e-4 * W.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return float(((test_x @ W + b).argmax(1) == test_y).float().mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path)
    p.add_argument("--per-look", type=int, default=6, help="captions per class and seen look")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    lg = load_text_generator(a.run)
    root = cache_root(lg.config.data)

    train = load_captioned(lg.config.data, lg.config.text.caption_items, "train")
    combos = load_captioned(lg.config.data, lg.config.text.caption_items, "test-heldout-combos").head(3000)
    assert train.attrs is not None and combos.attrs is not None
    e_train, e_combos = embed_captions(train.captions, root), embed_captions(combos.captions, root)
    norm = TextNorm(e_train.shape[1], e_train.shape[1])
    norm.set_stats(e_train)
    x_train, x_combos = norm(e_train), norm(e_combos)
    for col, name in ((0, "class"), (1, "place")):
        acc = probe(x_train, train.attrs[:, col], x_combos, combos.attrs[:, col])
        print(f"linear probe, {name} of the held-out combinations' captions: {acc:.1%}")

    g = torch.Generator().manual_seed(0)
    own, seen_here, other_here, other_seen, want = [], [], [], [], []
    for cls in range(10):
        held = HELDOUT_POSITION[cls]
        for look in range(4):
            if look == HELDOUT_LOOK[cls]:
                continue
            size, bright = divmod(look, 2)
            for _ in range(a.per_look):
                while True:  # another class and a place, every other caption of them seen in training
                    other = int(torch.randint(10, (1,), generator=g))
                    place = int(torch.randint(9, (1,), generator=g))
                    if (other != cls and HELDOUT_POSITION[other] != held and HELDOUT_LOOK[other] != look
                            and place not in (held, HELDOUT_POSITION[other], HELDOUT_POSITION[cls])):
                        break
                own.append(caption(cls, held, size, bright))
                seen_here.append(caption(cls, place, size, bright))
                other_here.append(caption(other, held, size, bright))
                other_seen.append(caption(other, place, size, bright))
                want.append(cls)
    e_own, e_seen, e_oh, e_os = (embed_captions(c, root) for c in (own, seen_here, other_here, other_seen))
    e_sum = e_seen + e_oh - e_os
    cos = float(F.cosine_similarity(e_own, e_sum).mean())
    target = torch.tensor(want).repeat(NOISES)
    z, eps = noise(len(target), lg.G, lg.config.model.prior, 1)
    print(f"step {lg.step}, {len(own)} captions of a class at its held-out place, {NOISES} draws each "
          f"(the sum is {cos:.2f} cosine from the caption's own embedding):")
    for name, phi in (("the caption's own embedding", e_own), ("the sum of three seen ones", e_sum),
                      ("the class at a seen place", e_seen)):
        _, cls_fake, _ = read_items(generate(lg.G, phi.repeat(NOISES, 1), z, eps))
        print(f"  {name:30s} class {(cls_fake == target).float().mean():.1%}")
    if isinstance(lg.G.net, FusedGenerator) and lg.G.net.split is not None:
        held = torch.tensor([HELDOUT_POSITION[c] for c in want]).repeat(NOISES)
        swapped(lg.G, e_own.repeat(NOISES, 1), e_seen.repeat(NOISES, 1), z, eps, target, held)


@torch.no_grad()
def swapped(G: TextGenerator, e_held: torch.Tensor, e_seen: torch.Tensor, z: torch.Tensor, eps: torch.Tensor,
            target: torch.Tensor, held: torch.Tensor) -> None:
    """A split G's where and the rest of its code taken from two captions (see the docstring)."""
    net = G.net
    assert isinstance(net, FusedGenerator) and net.split is not None
    G.eval()
    c_held, c_seen = (G.ca(G.norm(e), eps)[0] for e in (e_held, e_seen))
    (where_h, rest_h), (where_s, rest_s) = net.split(c_held), net.split(c_seen)
    cos, whole = (float(F.cosine_similarity(a, b).mean()) for a, b in ((rest_h, rest_s), (c_held, c_seen)))
    print(f"split code: the class at its held-out and at a seen place, the rest of their codes {cos:.2f} "
          f"cosine apart, the whole codes {whole:.2f}")
    for name, (a, b) in (("held-out caption", (where_h, rest_h)), ("seen caption", (where_s, rest_s)),
                         ("where held-out, rest seen", (where_h, rest_s)), ("where seen, rest held-out", (where_s, rest_h))):
        m, cls_fake, _ = read_items(net.draw(z, a, b))
        print(f"  {name:30s} class {(cls_fake == target).float().mean():.1%}, "
              f"at the held-out place {(m.position == held).float().mean():.1%}")


if __name__ == "__main__":
    main()
