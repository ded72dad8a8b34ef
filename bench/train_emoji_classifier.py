"""Train gankit's clothing-emoji classifier and write the weights that ship with the package.

Usage:  python bench/train_emoji_classifier.py [--epochs 12] [--seed 0] [--threads 1] [--out PATH]

The network is :class:`gankit.metrics.emoji_classifier.EmojiClassifier` (its docstring says what
and why). Its data are the augmented emoji of ``gankit.data.emoji`` at 32 x 32: each epoch renders
a fresh set (600 per class, augmentation seed 1000 + epoch: never the seeds of fashion2emoji's train
(0) or test (1) split), then degrades a share of it on the fly so that generated images are read by
shape and colour: a Gaussian blur (sigma 0-1.2, half the images), Gaussian noise (std 0-0.1, half),
gray (a fifth). AdamW, cosine decay of the learning rate, batches of 128 in a seeded order; the
weights kept are those after the last epoch. Reported, never used to choose anything: the accuracy
on fashion2emoji's held-out emoji (the test split, seed 1), clean and blurred, and on Fashion-MNIST's
test photos (how often a G that copied its input would already agree, the floor of class agreement).
Deterministic on the same machine and thread count; about 2 minutes on one thread.
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

from gankit.data.emoji import RENDER_VERSION, SPLITS, augment, load_bases
from gankit.fsutil import atomic_write_bytes
from gankit.metrics.emoji_classifier import WEIGHTS, EmojiClassifier


def unit(x: Tensor) -> Tensor:
    return x.float().div_(127.5).sub_(1.0)


def blur(x: Tensor, sigma: Tensor) -> Tensor:
    """Per-image Gaussian blur (5 x 5 taps) with std ``sigma`` (N,) pixels (0: unchanged)."""
    r = torch.arange(-2, 3, dtype=torch.float32)
    k = torch.exp(-r[None] ** 2 / (2 * sigma[:, None].clamp(min=1e-3) ** 2))  # (N, 5)
    k = k / k.sum(1, keepdim=True)
    n, c, h, w = x.shape
    y = F.pad(x, (2, 2, 2, 2), mode="replicate").reshape(1, n * c, h + 4, w + 4)
    kk = k.repeat_interleave(c, 0)
    y = F.conv2d(y, kk[:, None, None, :], groups=n * c)
    y = F.conv2d(y, kk[:, None, :, None], groups=n * c)
    return y.reshape(n, c, h, w)


def degrade(x: Tensor, g: torch.Generator) -> Tensor:
    n = x.shape[0]
    sigma = torch.where(torch.rand(n, generator=g) < 0.5, 1.2 * torch.rand(n, generator=g), torch.zeros(n))
    x = blur(x, sigma)
    std = torch.where(torch.rand(n, generator=g) < 0.5, 0.1 * torch.rand(n, generator=g), torch.zeros(n))
    x = x + std[:, None, None, None] * torch.randn(x.shape, generator=g)
    gray = torch.rand(n, generator=g) < 0.2
    luma = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]).expand(-1, 3, -1, -1)
    return torch.where(gray[:, None, None, None], luma, x)


def accuracy(model: EmojiClassifier, x: Tensor, y: Tensor) -> float:
    model.eval()
    with torch.inference_mode():
        pred = torch.cat([model(x[i:i + 1000]).argmax(1) for i in range(0, len(x), 1000)])
    return float((pred == y).double().mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--per-class", type=int, default=600, help="emoji rendered per class each epoch")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--weight-decay", type=float, default=0.02)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    p.add_argument("--out", type=Path, default=WEIGHTS)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    torch.use_deterministic_algorithms(True)
    t_start = time.perf_counter()
    bases = load_bases()
    seed_test, per_test = SPLITS["test"]
    test_x, test_y = augment(bases, per_test, 32, seed_test)
    test_x = unit(test_x)
    from gankit.data.fashion_mnist import load_arrays

    photos, photo_y = load_arrays("test")
    photos = unit(photos)

    model = EmojiClassifier()
    n_params = sum(q.numel() for q in model.parameters())
    steps_per_epoch = math.ceil(a.per_class * 10 / a.batch_size)
    total = a.epochs * steps_per_epoch
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=a.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
    g = torch.Generator().manual_seed(a.seed)
    print(f"EmojiClassifier: {n_params:,} parameters; styles {', '.join(bases.style_names)}; {a.epochs} epochs "
          f"x {steps_per_epoch} steps of {a.batch_size}; {torch.get_num_threads()} threads", flush=True)
    acc = 0.0
    for epoch in range(1, a.epochs + 1):
        t0 = time.perf_counter()
        x_all, y_all = augment(bases, a.per_class, 32, 1000 + epoch)
        x_all = unit(x_all)
        model.train()
        order = torch.randperm(len(x_all), generator=g)
        loss_sum = 0.0
        for i in range(0, len(order), a.batch_size):
            idx = order[i:i + a.batch_size]
            loss = F.cross_entropy(model(degrade(x_all[idx], g)), y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += float(loss.detach()) * len(idx)
        acc = accuracy(model, test_x, test_y)
        print(f"epoch {epoch:2d}/{a.epochs}  train loss {loss_sum / len(order):.4f}  held-out emoji accuracy "
              f"{acc:.4f}  ({time.perf_counter() - t0:.1f} s)", flush=True)
    acc_blur = accuracy(model, blur(test_x, torch.full((len(test_x),), 1.0)), test_y)
    acc_photo = accuracy(model, photos, photo_y)
    seconds = time.perf_counter() - t_start
    metadata = {
        "model": "gankit.metrics.emoji_classifier.EmojiClassifier",
        "data": f"gankit.data.emoji render version {RENDER_VERSION}, styles {','.join(bases.style_names)}",
        "render_version": str(RENDER_VERSION),
        "test_accuracy": f"{acc:.4f}",
        "test_accuracy_blurred": f"{acc_blur:.4f}",
        "fmnist_photo_accuracy": f"{acc_photo:.4f}",
        "epochs": str(a.epochs), "per_class": str(a.per_class), "batch_size": str(a.batch_size),
        "lr": str(a.lr), "weight_decay": str(a.weight_decay), "seed": str(a.seed),
        "parameters": str(n_params), "threads": str(torch.get_num_threads()),
        "train_seconds": f"{seconds:.0f}", "torch_version": torch.__version__,
        "command": shlex.join(["python", *sys.argv]),
    }
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    atomic_write_bytes(a.out, save(state, metadata=metadata))
    os.chmod(a.out, 0o644)
    check = EmojiClassifier()
    check.load_state_dict(load_file(str(a.out)))
    if accuracy(check, test_x, test_y) != acc:
        raise SystemExit("the reloaded weights do not give the same accuracy")
    print(f"held-out emoji accuracy {acc:.4f} (blurred {acc_blur:.4f}); Fashion-MNIST photos read as emoji "
          f"{acc_photo:.4f}; {seconds:.0f} s; wrote {a.out} ({a.out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
