"""Train a feature function f for the DTN that reads both domains, photos and emoji (``--dtn-f PATH``).

Usage:  python bench/train_dtn_f.py --mode styled|dann|joint [--epochs 3] [--seed 0] [--threads 1] --out PATH

The Domain Transfer Network (Taigman, Polyak & Wolf 2017) assumes an f "which accepts inputs in either
domain". gankit's default f, the shipped Fashion-MNIST classifier, was trained on photos only: on gray
emoji it is right 51 % of the time (a shirt emoji, 👔, is only a torso and a tie, which it reads as a
bag), and the DTN inherits its confusions. This script starts from that classifier and fine-tunes it
(same network, ``gankit.metrics.fmnist_classifier.FMNISTClassifier``) so that it also reads emoji:

- ``dann``: unsupervised domain adaptation (Ganin & Lempitsky 2015): the photos' labels only, plus
  fashion2emoji's *unlabelled* training emoji; a small domain classifier on the 128-d features,
  trained through a gradient-reversal layer (its weight ramped 2 / (1 + exp(-10 p)) - 1 over the
  run), makes the features of the two domains alike. No emoji label is used: the DTN stays
  unsupervised in the target domain.
- ``styled``: the photos' labels only, no emoji at all: each photo is drawn as the emoji sets draw
  their glyphs (domain randomisation, Tobin et al. 2017): placed as fashion2emoji places a glyph
  (scaled to 0.70-0.95 of the frame, turned up to 10 degrees, shifted, flipped), then kept as it is,
  flattened to one tone with a little of its shading (the colour sets), or reduced to its outline
  (Symbola), at a random brightness. The shipped f, trained on centred photos, reads emoji as the
  photos' shapes only when they look like photos: it calls sneaker emoji sandals.
- ``joint``: supervised on both: the photos' labels and the training emoji's labels (fashion2emoji's
  train split, seed 0). f then knows the emoji classes, which the DTN's unsupervised setting does
  not give it. gankit ships its one-epoch result as ``--dtn-f fmnist-emoji``
  (``gankit/metrics/weights/dtn_f_fmnist_emoji.safetensors``: ``--mode joint --epochs 1 --threads 1
  --out`` that file rebuilds it, bit for bit on one machine).

Emoji enter as f sees any image (RGB -> BT.601 gray, 32 -> 28 px); the batches mix the domains, so
batch norm's statistics cover both. It prints f's accuracy on Fashion-MNIST's test photos and on
fashion2emoji's held-out emoji (test split, seed 1, never trained on) and writes the weights as
safetensors with that metadata. Deterministic on one machine and thread count.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save
from torch import Tensor, nn

from gankit.data.emoji import SPLITS, augment, load_bases
from gankit.data.fashion_mnist import load_arrays
from gankit.fsutil import atomic_write_bytes
from gankit.metrics.fmnist_classifier import (
    FEATURE_DIM,
    FMNISTClassifier,
    load_fmnist_classifier,
    prepare,
)


class _Reverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: float) -> Tensor:  # type: ignore[no-untyped-def, override]
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[no-untyped-def, override]
        return -ctx.weight * grad, None


def unit(x: Tensor) -> Tensor:
    return x.float().div_(127.5).sub_(1.0)


def accuracy(f: FMNISTClassifier, x: Tensor, y: Tensor) -> float:
    f.eval()
    with torch.inference_mode():
        pred = torch.cat([f(x[i:i + 1000]).argmax(1) for i in range(0, len(x), 1000)])
    return float((pred == y).double().mean())


def styled(x: Tensor, g: torch.Generator) -> Tensor:
    """Photos (N, 1, 28, 28) in [-1, 1] drawn as emoji are (see the module docstring)."""
    n = len(x)
    scale = 0.70 + 0.25 * torch.rand(n, generator=g)
    theta = (torch.rand(n, generator=g) * 2 - 1) * math.radians(10)
    shift = (torch.rand(n, 2, generator=g) * 2 - 1) * (1 - scale)[:, None]
    cos, sin = theta.cos(), theta.sin()
    A = torch.stack([torch.stack([cos, sin], 1), torch.stack([-sin, cos], 1)], 1) / scale[:, None, None]
    grid = F.affine_grid(torch.cat([A, -(A @ shift[:, :, None])], 2), list(x.shape), align_corners=False)
    v = F.grid_sample(x + 1, grid, padding_mode="zeros", align_corners=False) / 2  # [0, 1], black outside
    mask = (v > 0.05).float()
    area = mask.sum((1, 2, 3), keepdim=True).clamp(min=1)
    mean = (v * mask).sum((1, 2, 3), keepdim=True) / area
    flat = mask * (0.3 + 0.6 * torch.rand(n, 1, 1, 1, generator=g) + 0.4 * (v - mean))
    outline = (F.max_pool2d(mask, 3, 1, 1) + F.max_pool2d(-mask, 3, 1, 1)).clamp(0, 1) \
        * (0.7 + 0.3 * torch.rand(n, 1, 1, 1, generator=g))
    kind = torch.randint(3, (n, 1, 1, 1), generator=g)  # 0 as it is, 1 flattened, 2 outline
    out = torch.where(kind == 1, flat, torch.where(kind == 2, outline, v))
    out = out * (0.75 + 0.5 * torch.rand(n, 1, 1, 1, generator=g))
    return out.clamp(0, 1) * 2 - 1


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=("styled", "dann", "joint"), required=True)
    p.add_argument("--epochs", type=int, default=3, help="passes over the 60,000 training photos")
    p.add_argument("--batch-size", type=int, default=128, help="photos per batch (and as many emoji)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    t0 = time.perf_counter()
    photos, photo_y = load_arrays("train")
    photos = unit(photos)
    test_x, test_y = load_arrays("test")
    test_x = unit(test_x)
    bases = load_bases()
    emoji, emoji_y = augment(bases, SPLITS["train"][1], 32, SPLITS["train"][0])  # fashion2emoji's train set
    emoji = prepare(unit(emoji)).contiguous()  # as f reads them: gray, 28 x 28
    held, held_y = augment(bases, SPLITS["test"][1], 32, SPLITS["test"][0])
    held = prepare(unit(held)).contiguous()

    f = FMNISTClassifier()
    f.load_state_dict(load_fmnist_classifier().state_dict())
    domain = nn.Sequential(nn.Linear(FEATURE_DIM, 64), nn.ReLU(), nn.Linear(64, 1))
    params = list(f.parameters()) + (list(domain.parameters()) if a.mode == "dann" else [])
    opt = torch.optim.Adam(params, lr=a.lr)
    g = torch.Generator().manual_seed(a.seed)
    steps = a.epochs * math.ceil(len(photos) / a.batch_size)
    print(f"{a.mode}: from the shipped classifier; photos {accuracy(f, test_x, test_y):.4f}, held-out emoji "
          f"{accuracy(f, held, held_y):.4f}; {steps} steps", flush=True)
    step = 0
    for epoch in range(1, a.epochs + 1):
        f.train()
        order = torch.randperm(len(photos), generator=g)
        for i in range(0, len(order), a.batch_size):
            idx = order[i:i + a.batch_size]
            eidx = torch.randint(len(emoji), (len(idx),), generator=g)
            # the second half: emoji (dann, joint), or the same photos drawn as emoji are (styled)
            x = torch.cat([photos[idx], styled(photos[idx], g) if a.mode == "styled" else emoji[eidx]])
            flip = torch.rand(len(x), generator=g) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
            h, logits = f.features_and_logits(x)
            n = len(idx)
            loss = F.cross_entropy(logits[:n], photo_y[idx])
            if a.mode == "styled":
                loss = loss + F.cross_entropy(logits[n:], photo_y[idx])
            elif a.mode == "joint":
                loss = loss + F.cross_entropy(logits[n:], emoji_y[eidx])
            else:
                progress = step / steps
                weight = 2 / (1 + math.exp(-10 * progress)) - 1
                d = domain(_Reverse.apply(h, weight)).squeeze(1)
                target = torch.cat([torch.zeros(n), torch.ones(len(x) - n)])
                loss = loss + F.binary_cross_entropy_with_logits(d, target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
        print(f"epoch {epoch}/{a.epochs}: photos {accuracy(f, test_x, test_y):.4f}, held-out emoji "
              f"{accuracy(f, held, held_y):.4f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    acc_photo, acc_emoji = accuracy(f, test_x, test_y), accuracy(f, held, held_y)
    meta = {"model": "gankit.metrics.fmnist_classifier.FMNISTClassifier", "mode": a.mode,
            "test_accuracy": f"{acc_photo:.4f}", "emoji_accuracy": f"{acc_emoji:.4f}", "epochs": str(a.epochs),
            "seed": str(a.seed), "threads": str(torch.get_num_threads()), "torch_version": torch.__version__,
            "command": shlex.join(["python", *sys.argv])}
    state = {k: v.detach().contiguous() for k, v in f.state_dict().items()}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(a.out, save(state, metadata=meta))
    print(f"f ({a.mode}): Fashion-MNIST test photos {acc_photo:.4f}, held-out emoji (gray) {acc_emoji:.4f}; "
          f"{time.perf_counter() - t0:.0f} s; wrote {a.out}")


if __name__ == "__main__":
    main()
