"""Train gankit's Fashion-MNIST classifier and write the weights that ship with the package.

Usage:  python bench/train_fmnist_classifier.py [--epochs 18] [--seed 0] [--threads N] [--out PATH]

The network is :class:`gankit.metrics.fmnist_classifier.FMNISTClassifier` (its docstring says
what and why); the data is Fashion-MNIST (Xiao, Rasul & Vollgraf 2017) read by gankit's
``load_arrays`` from the local IDX files, held in memory as one float tensor in [-1, 1]. The
recipe: AdamW, a short linear warm-up then cosine decay of the learning rate to zero, batches
of 128 in a seeded random order, and light augmentation done on whole batches with torch ops
(random horizontal flip; random shift of up to 2 pixels, padding with the black background;
and, for a quarter of the images, a bilinear round trip 28 -> s -> 28 px with a random s in
29..64, the blur that images of other sizes get from gankit's resizing to s and the classifier's
input adapter back to 28: without it, a 28 -> 32 -> 28 round trip cost 5 points of accuracy).
The weights kept are those after the last epoch: the test set is only reported, never used to
choose anything. Fixed seed and data order make a run reproducible on the same machine and
thread count. It prints each epoch's train loss and test accuracy, writes
``src/gankit/metrics/weights/fmnist_cnn.safetensors`` with its metadata (test accuracy, epochs,
seed, torch version, command, time) and reloads the file to check it. About 6 minutes on 2 idle
CPU cores (much longer on busy ones); run it with jemalloc preloaded (``source scripts/env.sh``)
for that speed.
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save
from torch import Tensor

from gankit.data.fashion_mnist import load_arrays
from gankit.fsutil import atomic_write_bytes
from gankit.metrics.fmnist_classifier import WEIGHTS, FMNISTClassifier


def to_unit_range(images: Tensor) -> Tensor:
    """uint8 (N, 1, 28, 28) -> float32 in [-1, 1], gankit's image convention."""
    return images.float().div_(127.5).sub_(1.0)


def resize_round_trip(x: Tensor, size: int) -> Tensor:
    """28 px -> ``size`` px -> 28 px, both ways bilinear with antialiasing: what a 28 px image
    resized to ``size`` (gankit's data resizing) and back (the classifier's input adapter) is."""
    kw = {"mode": "bilinear", "antialias": True, "align_corners": False}
    return F.interpolate(F.interpolate(x, size=(size, size), **kw), size=x.shape[-2:], **kw)


def augment(x: Tensor, g: torch.Generator, shift: int, resize_p: float) -> Tensor:
    """Per image: random horizontal flip, random translation by up to ``shift`` pixels, and with
    probability ``resize_p`` a resize round trip through a random size (one size per batch)."""
    b, _, h, w = x.shape
    flip = torch.rand(b, generator=g) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    if resize_p > 0:
        size = int(torch.randint(h + 1, 65, (1,), generator=g))
        pick = (torch.rand(b, generator=g) < resize_p).nonzero().squeeze(1)
        x = x.index_copy(0, pick, resize_round_trip(x[pick], size))
    if shift > 0:
        padded = F.pad(x, (shift, shift, shift, shift), value=-1.0)  # -1: the black background
        dy = torch.randint(0, 2 * shift + 1, (b,), generator=g)
        dx = torch.randint(0, 2 * shift + 1, (b,), generator=g)
        rows = (dy[:, None] + torch.arange(h))[:, :, None]  # (b, h, 1)
        cols = (dx[:, None] + torch.arange(w))[:, None, :]  # (b, 1, w)
        x = padded[torch.arange(b)[:, None, None], 0, rows, cols].unsqueeze(1)
    return x


def accuracy(model: FMNISTClassifier, images: Tensor, labels: Tensor, batch: int = 1000) -> float:
    """Top-1 accuracy of ``model`` (switched to eval mode) on images in [-1, 1]."""
    model.eval()
    correct = 0
    with torch.inference_mode():
        for i in range(0, len(images), batch):
            correct += int((model(images[i:i + batch]).argmax(1) == labels[i:i + batch]).sum())
    return correct / len(images)


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up from 0.1 over ``warmup`` steps, then cosine decay to zero at ``total``."""
    if step < warmup:
        return 0.1 + 0.9 * step / warmup
    return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=18)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3, help="AdamW peak learning rate")
    p.add_argument("--weight-decay", type=float, default=0.02, help="AdamW weight decay")
    p.add_argument("--shift", type=int, default=2, help="random translation, pixels (0: none)")
    p.add_argument("--resize-p", type=float, default=0.25,
                   help="share of images given a resize round trip (0: none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--data-root", default="", help="folder of the IDX files (default: Debian's)")
    p.add_argument("--out", type=Path, default=WEIGHTS, help=f"weights file (default: {WEIGHTS})")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    torch.use_deterministic_algorithms(True)
    t_start = time.perf_counter()

    train_x, train_y = load_arrays("train", a.data_root)
    test_x, test_y = load_arrays("test", a.data_root)
    train_x, test_x = to_unit_range(train_x), to_unit_range(test_x)
    n = len(train_x)
    steps_per_epoch = math.ceil(n / a.batch_size)
    total = a.epochs * steps_per_epoch

    model = FMNISTClassifier()
    n_params = sum(q.numel() for q in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=a.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s, total, warmup=min(300, total // 10 + 1)))
    g = torch.Generator().manual_seed(a.seed)  # data order and augmentation, nothing else
    print(f"FMNISTClassifier: {n_params:,} parameters; {n:,} train / {len(test_x):,} test images; "
          f"{a.epochs} epochs x {steps_per_epoch} steps of {a.batch_size}; "
          f"{torch.get_num_threads()} threads", flush=True)

    acc = 0.0
    for epoch in range(1, a.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(n, generator=g)
        loss_sum, seen = 0.0, 0
        for i in range(0, n, a.batch_size):
            idx = order[i:i + a.batch_size]
            x = augment(train_x[idx], g, a.shift, a.resize_p)
            loss = F.cross_entropy(model(x), train_y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += float(loss.detach()) * len(idx)
            seen += len(idx)
        acc = accuracy(model, test_x, test_y)
        print(f"epoch {epoch:2d}/{a.epochs}  train loss {loss_sum / seen:.4f}  "
              f"test accuracy {acc:.4f}  ({time.perf_counter() - t0:.1f} s)", flush=True)

    seconds = time.perf_counter() - t_start
    command = shlex.join(["python", *sys.argv])
    metadata = {
        "model": "gankit.metrics.fmnist_classifier.FMNISTClassifier",
        "data": "Fashion-MNIST (Xiao, Rasul & Vollgraf 2017), 60,000 train / 10,000 test",
        "test_accuracy": f"{acc:.4f}",
        "epochs": str(a.epochs),
        "batch_size": str(a.batch_size),
        "lr": str(a.lr),
        "weight_decay": str(a.weight_decay),
        "shift": str(a.shift),
        "resize_p": str(a.resize_p),
        "seed": str(a.seed),
        "parameters": str(n_params),
        "threads": str(torch.get_num_threads()),
        "train_seconds": f"{seconds:.0f}",
        "torch_version": torch.__version__,
        "command": command,
    }
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    atomic_write_bytes(a.out, save(state, metadata=metadata))
    os.chmod(a.out, 0o644)  # a package data file, not a private temporary

    check = FMNISTClassifier()
    check.load_state_dict(load_file(str(a.out)))
    reloaded = accuracy(check, test_x, test_y)
    if reloaded != acc:
        raise SystemExit(f"reloaded weights give test accuracy {reloaded:.4f}, not {acc:.4f}")
    print(f"final test accuracy {acc:.4f}; {seconds:.0f} s in all; "
          f"wrote {a.out} ({a.out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
