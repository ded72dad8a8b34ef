"""Train a feature function f for the DTN that reads both domains, photos and emoji (``--dtn-f PATH``).

Usage:  python bench/train_dtn_f.py --mode dann|joint [--epochs 3] [--seed 0] [--threads 1] --out PATH

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
- ``joint``: supervised on both: the photos' labels and the training emoji's labels (fashion2emoji's
  train split, seed 0). An upper reference: f then knows the emoji classes, which the DTN's
  unsupervised setting does not give it.

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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=("dann", "joint"), required=True)
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
            x = torch.cat([photos[idx], emoji[eidx]])
            flip = torch.rand(len(x), generator=g) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
            h, logits = f.features_and_logits(x)
            n = len(idx)
            loss = F.cross_entropy(logits[:n], photo_y[idx])
            if a.mode == "joint":
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
