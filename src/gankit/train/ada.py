"""Adaptive discriminator augmentation (ADA; Karras et al. 2020, "Training Generative Adversarial
Networks with Limited Data", StyleGAN2-ADA).

On a small set D memorises the real images: its outputs on them drift positive while its outputs on
held-out images (and fakes) fall, and G's feedback degrades. ADA shows D augmented images, real and
fake alike (as DiffAugment, Zhao et al. 2020), each augmentation applied to each sample with
probability p, and steers p with an overfitting signal measured on the training set itself:

    r_t = E[sign(D_train(x))]  (0: D is unsure of the reals; 1: it is sure of every one)

Every ``interval`` iterations (4 in the paper) p moves by sign(r_t - target) x (images shown since
the last adjustment) / (ada_kimg x 1000): up when D is surer of the reals than the target (0.6),
down otherwise, clamped to [0, 1]. The paper lets p go 0 -> 1 in 500k images, 2 % of its 25M-image
runs; gankit's default is 20k, since a CPU run here is a few thousand steps (~100-200k images) and
D memorises a folder of a thousand images within a few hundred steps (project issue 20).

Applying each op with p < 1 keeps the augmentations "non-leaking" (the paper's Section 2.2): the
distribution of clean images can still be told from that of the augmented ones, so G is not pushed
to make augmented-looking images.

Everything stays on the device: the signal is summed there at every D step, p is a 0-dim tensor
compared with per-sample uniforms (``torch.where``), and the adjustment is tensor arithmetic. The
host reads p only when the training loop logs (its averaged values, already synchronised). Under
torchrun the sums are averaged over the ranks at each adjustment, so every rank steers the same p.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gankit.train import distributed
from gankit.train.augment import POLICIES, Draw

DEFAULT_POLICY = "translation,color,cutout"
"""ADA's ops when ``reg.diffaugment`` names none: DiffAugment's three (Zhao et al. 2020)."""


class Ada:
    """p, the augmentation probability, and the overfitting signal summed since the last
    adjustment: ``acc`` = (sum of sign(D(x)), number of D(x) logits, number of real images)."""

    def __init__(self, policy: str, target: float, kimg: float, interval: int,
                 device: torch.device, d: distributed.Dist = distributed.SINGLE) -> None:
        self.ops = [POLICIES[name] for name in policy.split(",") if name]
        self.target, self.kimg, self.interval, self.d = target, kimg, interval, d
        self.p = torch.zeros((), device=device)  # starts at 0 as in the paper: no augmentation
        self.acc = torch.zeros(3, device=device)
        self.rt = torch.zeros((), device=device)  # the last D step's E[sign(D(x))], for the log

    def augment(self, x: Tensor, draw: Draw) -> Tensor:
        """Each op of the policy applied to each sample of x (B, C, H, W) with probability p.

        The uniforms and the op's own random numbers are drawn whatever p is, so the run's random
        streams (and so a resumed run) do not depend on p's value; p = 0 returns x's values
        unchanged, p = 1 applies every op to every sample."""
        for op in self.ops:
            apply = draw.rand(x.shape[0], device=x.device) < self.p  # (B,) per-sample coin flips
            x = torch.where(apply[:, None, None, None], op(x, draw), x)
        return x

    @torch.no_grad()
    def observe(self, real_logits: Tensor, n_images: int) -> None:
        """Add one D step's logits on the real batch (``n_images`` images, augmented as D saw
        them) to the signal; on the device, no host synchronisation."""
        signs = torch.sign(real_logits.detach().float())
        self.rt = signs.mean()
        counts = torch.full((2,), float(signs.numel()), device=signs.device)  # a fill: no copy
        counts[1] = float(n_images)
        self.acc += torch.cat([signs.sum()[None], counts])

    @torch.no_grad()
    def adjust(self) -> None:
        """p += sign(r_t - target) x images / (kimg x 1000), clamped to [0, 1]; the sums reset.
        Under torchrun every rank's sums are averaged first (the ratio r_t is unchanged by the
        averaging; the image count is multiplied back by the world size)."""
        acc = distributed.all_mean(self.d, self.acc)
        rt = acc[0] / acc[1].clamp(min=1.0)
        images = acc[2] * self.d.world
        step = torch.sign(rt - self.target) * images / (self.kimg * 1000.0)
        self.p = torch.where(acc[1] > 0, (self.p + step).clamp(0.0, 1.0), self.p)
        self.acc = torch.zeros_like(self.acc)

    def after_iteration(self, iterations: int) -> None:
        """Call after iteration ``iterations`` (1, 2, ...): adjusts p every ``interval`` of them."""
        if iterations % self.interval == 0:
            self.adjust()

    def tensors(self) -> dict[str, Tensor]:
        """What a checkpoint keeps: p and the sums since the last adjustment."""
        return {"ada.p": self.p, "ada.acc": self.acc}

    def load(self, tensors: dict[str, Tensor]) -> None:
        self.p = tensors["ada.p"].to(self.p.device, self.p.dtype).reshape(())
        self.acc = tensors["ada.acc"].to(self.acc.device, self.acc.dtype).reshape(3)


ADA_THRESHOLD = 20_000
"""Folders of fewer images get ADA unless ``reg.ada`` says otherwise."""


def auto_ada(n_images: int | None, is_image: bool, threshold: int = ADA_THRESHOLD) -> tuple[bool, str]:
    """``reg.ada`` unset: (on?, why). On for a folder of images (``n_images`` its size; None for a
    built-in set or data given as a tensor) under ``threshold`` images, where D memorises."""
    if not is_image:
        return False, "these data are not images"
    if n_images is None:
        return False, "a built-in set or given data (ADA is automatic for folders of images)"
    if n_images < threshold:
        return True, (f"a folder of {n_images:,} images, under {threshold:,}: D would memorise it "
                      "(Karras et al. 2020); --no-ada turns it off")
    return False, f"a folder of {n_images:,} images, {threshold:,} or more"
