"""One discriminator update and one generator update: the two halves of Algorithm 1.

D's step comes first (CycleGAN's explicit D-then-G order) and sees the fake batch detached: only D
is updated there. G's step freezes D's parameters so no gradient is computed for them.

With K = 1 the fake batch D was trained on can be reused for G's step (``fake_for_d(...,
keep_graph=True)``), as the DCGAN reference implementations do: one forward pass of G per iteration
instead of two. G's loss is still computed through the *updated* D, as Algorithm 1 requires; only
the noise sample is shared between the two half-steps.

The cures of ``cfg.reg`` enter here: what D sees (DiffAugment, instance noise), D's penalties (R1,
R2, gradient penalty), weight clipping, label smoothing, and the unrolled look-ahead of G's step.

``--precision bf16|fp16``: the forward passes run under ``s.autocast()`` (convolutions and matrix
products in the low precision), the backward passes outside it as torch's AMP recipe has it; the
logits come back as fp32, so every loss is computed in fp32. fp16 steps go through a gradient
scaler per player (``descend``).

Class-conditional runs (``--conditional``) pass labels beside each batch: ``y_real`` from the data,
``y_fake`` drawn uniformly (``TrainState.y``) and given to G and D alike; D returns (logits, class
logits or None), and ACGAN's class logits add their cross-entropy to both players' losses.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import Tensor

from gankit.losses import class_loss, clip_weights_, d_probability, gradient_penalty, r1_penalty
from gankit.losses.penalties import r2_penalty
from gankit.train.augment import diff_augment
from gankit.train.state import TrainState

# The modules a step updates are ``s.G_train`` / ``s.D_train``: the networks themselves, or their
# DistributedDataParallel wrappers under torchrun (gradients averaged across ranks).


def generator_input(z: Tensor, y: Tensor | None) -> tuple[Tensor, ...]:
    """G's arguments: (z,) or, for a conditional G, (z, y)."""
    return (z,) if y is None else (z, y)


def judge(D: Callable[..., object], x: Tensor, y: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """D's verdict on x: (logits (B / pack,), class logits (B, K) or None). An unconditional D
    returns logits alone; a conditional one takes y and returns the pair."""
    if y is None:
        return D(x).float(), None  # type: ignore[attr-defined]
    logits, classes = D(x, y)  # type: ignore[misc]
    return logits.float(), None if classes is None else classes.float()


def descend(loss: Tensor, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None) -> None:
    """Backward and one optimiser step. With a gradient scaler (fp16) the loss is scaled before
    backward, the gradients unscaled before Adam, and a step whose gradients overflowed skipped."""
    if scaler is None:
        loss.backward()
        opt.step()
        return
    scaler.scale(loss).backward()
    scaler.step(opt)  # unscales the gradients in place (grad_norm reads true sizes), or skips
    scaler.update()


def fake_for_d(s: TrainState, batch_size: int, keep_graph: bool = False, y: Tensor | None = None) -> Tensor:
    """G(z) (or G(z, y) for a conditional run) for a fresh minibatch of noise. With ``keep_graph``
    the graph through G is kept, so ``g_step`` can reuse the batch; otherwise it is made without one."""
    args = generator_input(s.z(batch_size), y)  # z: (B, latent_dim), y: (B,)
    if keep_graph:
        with s.autocast():
            return s.G_train(*args)  # (B, *dims)
    with torch.no_grad(), s.autocast():
        return s.G(*args)


def d_input(s: TrainState, x: Tensor) -> Tensor:
    """What D is shown of a batch, real or fake alike: DiffAugment (Zhao et al. 2020), or its
    ops each with ADA's probability p (``gankit.train.ada``), then
    instance noise of a std annealed linearly to 0 over the run (Sonderby et al. 2016: it makes the
    real and fake distributions overlap, so D's optimum is smooth and G's gradient informative)."""
    r = s.cfg.reg
    if s.ada is not None:  # adaptive: each op with probability p (Karras et al. 2020)
        x = s.ada.augment(x, s.draw)
    elif r.diffaugment:
        x = diff_augment(x, r.diffaugment, s.draw)
    if r.instance_noise:
        sigma = r.instance_noise * max(0.0, 1.0 - s.step / s.cfg.train.steps)
        if sigma > 0:
            x = x + sigma * s.draw.randn(*x.shape, device=x.device).to(x.dtype)
    return x


def d_step(s: TrainState, real: Tensor, fake: Tensor | None = None, y_real: Tensor | None = None,
           y_fake: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Ascend log D(x) + log(1 - D(G(z))) once (or the configured loss), with D's penalties.
    Returns (loss_d, D(x), D(G(z))) as 0-dim tensors; loss_d is the adversarial part alone.

    ``fake``: the generated batch to use (from ``fake_for_d``); by default a fresh one.
    ``y_real``, ``y_fake``: the batches' class labels (conditional runs only)."""
    r = s.cfg.reg
    if fake is None:
        y_fake = s.y(real.shape[0])
        fake = fake_for_d(s, real.shape[0], y=y_fake)
    real_in = d_input(s, real)  # (B, *dims)
    fake_in = d_input(s, fake.detach())  # detached: no gradient flows into G here
    gamma_r1, gamma_r2 = s.gammas()  # reg.r1, reg.r2 at this step (train.schedule_images)
    if gamma_r1:
        real_in = real_in.detach().requires_grad_(True)  # R1 differentiates D at the real inputs
    if gamma_r2:
        fake_in = fake_in.detach().requires_grad_(True)  # R2 at the fake ones (still no path to G)
    with s.autocast():
        real_logits, real_classes = judge(s.D_train, real_in, y_real)  # (B / pack,), (B, K) for ACGAN
        fake_logits, _ = judge(s.D_train, fake_in, y_fake)
    loss_d = s.loss.d_loss(real_logits, fake_logits, 1.0 - r.label_smoothing)
    if s.ada is not None:  # ADA's overfitting signal, E[sign(D(x))], summed on the device
        s.ada.observe(real_logits, real.shape[0])
    loss = loss_d
    if real_classes is not None and y_real is not None:
        # ACGAN (Odena et al. 2017): D also maximises the log-likelihood of the right class. On real
        # data only: the paper's L_C also trains the class head on fakes, and on Fashion-MNIST that
        # let G and D agree on a private code - D's head read 95 % of the fakes as the class asked
        # for while the fmnist classifier agreed on 33 % (bench/conditional.py, docs/BENCHMARKS.md).
        loss = loss + s.cfg.model.acgan_weight * class_loss(real_classes, y_real)
    if gamma_r1:
        loss = loss + 0.5 * gamma_r1 * r1_penalty(real_logits, real_in)
    if gamma_r2:
        loss = loss + 0.5 * gamma_r2 * r2_penalty(fake_logits, fake_in)
    if r.gp:
        eps = s.draw.rand(real.shape[0], device=real.device)  # sharded like z under torchrun
        # interpolates carry the real sample's label (the conditional WGAN-GP convention)
        with s.autocast():
            loss = loss + r.gp * gradient_penalty(lambda x: judge(s.D_train, x, y_real)[0], real_in,
                                                  fake_in, eps=eps)
    s.opt_D.zero_grad(set_to_none=True)
    descend(loss, s.opt_D, s.scaler_D)
    if r.clip:
        clip_weights_(s.D, r.clip)
    return loss_d.detach(), d_probability(real_logits), d_probability(fake_logits)


def g_step(s: TrainState, batch_size: int, fake: Tensor | None = None, real: Tensor | None = None,
           next_real: Callable[[], Tensor] | None = None, y_fake: Tensor | None = None,
           y_real: Tensor | None = None) -> Tensor:
    """Descend G's loss once, with D held fixed. Returns loss_g as a 0-dim tensor.

    ``fake``: G(z) with its graph, reused from D's step (K = 1); by default G is run on fresh z.
    ``real``: a real batch, for losses whose G term reads D(x) (relativistic).
    ``next_real``: draws real batches for the unrolled look-ahead (``--unrolled k``).
    ``y_fake``, ``y_real``: class labels of a reused ``fake`` and of ``real`` (conditional runs);
    a fresh fake batch draws its own."""
    r = s.cfg.reg
    saved = None
    if r.unrolled:
        if next_real is None:
            raise ValueError("the unrolled G step needs next_real to draw D's future batches")
        saved = unroll_d(s, r.unrolled, next_real)
    s.D.requires_grad_(False)  # "fix the discriminator's weights" (Goodfellow et al. 2014's training recipe)
    try:
        # G_train: under DDP G's gradients are averaged across ranks; D is only looked through.
        with s.autocast():
            if fake is None:
                y_fake = s.y(batch_size)
                fake = s.G_train(*generator_input(s.z(batch_size), y_fake))  # (B, *dims)
            fake_logits, fake_classes = judge(s.D, d_input(s, fake), y_fake)  # (B / pack,)
            real_logits = None
            if s.loss.g_needs_real:
                if real is None:
                    raise ValueError(f"train.loss {s.cfg.train.loss} needs a real batch in G's step")
                real_logits = judge(s.D, d_input(s, real), y_real)[0]
        loss_g = s.loss.g_loss(fake_logits, real_logits)
        if fake_classes is not None and y_fake is not None:  # ACGAN: G makes fakes D classes as y
            loss_g = loss_g + s.cfg.model.acgan_weight * class_loss(fake_classes, y_fake)
        s.opt_G.zero_grad(set_to_none=True)
        descend(loss_g, s.opt_G, s.scaler_G)
    finally:
        s.D.requires_grad_(True)
        if saved is not None:
            restore_d(s, saved)
    s.update_ema()
    return loss_g.detach()


def unroll_d(s: TrainState, k: int, next_real: Callable[[], Tensor]) -> tuple[dict, dict]:
    """Unrolled GAN (Metz et al. 2017): take k more D steps, so that G's next update is computed
    against the D that *would* respond to it; returns what ``restore_d`` needs to undo them.

    This is the paper's first-order variant: G's gradient is taken through the unrolled D's
    weights, not through the k updates themselves. A G that collapses onto the modes D currently
    favours is penalised by a D that has already moved on."""
    saved = ({k_: v.detach().clone() for k_, v in s.D.state_dict().items()},
             copy.deepcopy(s.opt_D.state_dict()))
    for _ in range(k):
        d_step(s, next_real())
    return saved


def restore_d(s: TrainState, saved: tuple[dict, dict]) -> None:
    """Put D's weights and optimiser back as they were before ``unroll_d``."""
    weights, opt = saved
    s.D.load_state_dict(weights)
    s.opt_D.load_state_dict(opt)
