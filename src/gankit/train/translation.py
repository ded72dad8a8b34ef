"""Training an image translator: pix2pix (Isola et al. 2017) and CycleGAN (Zhu et al. 2017).

One loop, in labelled sections, beside the GAN's (``gankit.train.loop``): ``train()`` there
dispatches here when ``--model`` names a translator. Each iteration follows its paper's code:

    pix2pix  (paired A_i -> B_i)   fake_B = G(real_A)
                                   D step: D judges (real_A, real_B) real and (real_A, fake_B) fake
                                   G step: fool D on (real_A, fake_B) + lambda_L1 ||fake_B - real_B||_1
    CycleGAN (unpaired A, B)       fake_B = G_AB(real_A), rec_A = G_BA(fake_B); fake_A, rec_B alike
                                   G step (D_A, D_B frozen): fool D_B and D_A + cycle + identity
                                   D step: D_B judges real_B against fakes from the history pool, D_A alike

(pix2pix's ``optimize_parameters`` updates D first, CycleGAN's updates both G first.) Around it,
as for every run: the run directory, losses gathered on the device and read back only every
``--log-every`` steps (no host synchronisation per step), sample grids of input / output /
target rows, atomic self-describing checkpoints (the networks rebuild from their metadata with
no unpickling), exact resume, Ctrl-C, ``--max-time`` and the report.
"""

from __future__ import annotations

import contextlib
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm import tqdm

import gankit
from gankit.checkpoint import (
    Checkpoint,
    clean_partial,
    load_checkpoint,
    optimizer_from_flat,
    optimizer_to_flat,
    save_checkpoint,
)
from gankit.config import Config, load_yaml
from gankit.data.base import BatchOrder, to_float
from gankit.data.paired import PairedData, UnpairedData
from gankit.diagnosis import grad_norm
from gankit.errors import GankitError
from gankit.images import save_grid
from gankit.losses import LOSSES, GANLoss, d_probability
from gankit.losses.translation import cycle_loss, identity_loss, l1
from gankit.models.translators import TRANSLATORS, Translator, build_translator
from gankit.train.image_pool import ImagePool
from gankit.train.loop import Meter, _StopFlag
from gankit.train.rundir import MetricsLog, prepare_new, resume_config
from gankit.train.state import (
    adam,
    autocast,
    check_precision,
    lr_factor,
    resolve_device,
    resolve_precision,
    resumed_precision,
    set_lr_factor,
)
from gankit.translating import generator_for, load_data, translate_images

N_FIXED = 8  # inputs shown in every sample grid: one column each

Data = PairedData | UnpairedData


def is_translator(cfg: Config) -> bool:
    """Whether ``cfg`` trains a translator (``--model pix2pix`` or ``cyclegan``)."""
    return cfg.model.arch in TRANSLATORS


def wants_translator(cfg: Config | None, resume: str | Path | None) -> bool:
    """Whether this run (new, or the one in ``resume``, read from its config.yaml) is a translator's."""
    if resume is None:
        return cfg is not None and is_translator(cfg)
    try:
        saved = load_yaml(Path(resume) / "config.yaml")
    except GankitError:
        return False  # resume_config says what is wrong with the folder
    model = saved.get("model")
    return isinstance(model, dict) and model.get("arch") in TRANSLATORS


def init_weights(net: nn.Module) -> None:
    """Both papers' initialisation (their code's ``init_type normal``): convolution weights from
    N(0, 0.02), biases 0; normalisation scales from N(1, 0.02), shifts 0."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.InstanceNorm2d) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def domain_classes(data: Data) -> list[str] | None:
    """The class of each domain (unpaired built-ins: e.g. ["Sneaker", "Sandal"]), else None."""
    return list(data.classes) if isinstance(data, UnpairedData) else None


# --------------------------------------------------------------------------- state


@dataclass
class TranslationState:
    """Everything a translation run is; round-trips through a checkpoint exactly."""

    cfg: Config
    translator: Translator
    nets: dict[str, nn.Module]  # G, D (pix2pix) or G_AB, G_BA, D_A, D_B (CycleGAN)
    opt_G: torch.optim.Optimizer  # over every generator's parameters (CycleGAN: both, one Adam)
    opt_D: torch.optim.Optimizer
    loss: GANLoss
    pools: dict[str, ImagePool]  # CycleGAN: the history of fake_A and of fake_B
    shape_A: tuple[int, int, int]
    shape_B: tuple[int, int, int]
    task: str
    classes: list[str] | None
    device: torch.device
    step: int = 0
    elapsed: float = 0.0
    precision: str = "fp32"  # --precision, resolved (auto -> bf16 or fp32)

    def autocast(self) -> contextlib.AbstractContextManager:
        """The networks' forward passes in the run's precision (bf16 autocast, or a no-op)."""
        return autocast(self.device, self.precision)

    @classmethod
    def create(cls, cfg: Config, data: Data, device: torch.device) -> TranslationState:
        """Fresh networks (same seed, same weights) and optimisers for ``data``'s two domains."""
        torch.manual_seed(cfg.train.seed)
        t, translator = cfg.train, TRANSLATORS.get(cfg.model.arch)
        shape_A = tuple(data.A.shape[1:])
        shape_B = tuple(data.B.shape[1:])
        if not translator.paired and cfg.translate.identity > 0 and shape_A[0] != shape_B[0]:
            raise GankitError(f"the identity loss feeds each domain to the other's generator, but A has "
                              f"{shape_A[0]} channel(s) and B {shape_B[0]}: set --identity 0, or --channels")
        nets = build_translator(cfg.model.arch, shape_A, shape_B, cfg.model.width)  # type: ignore[arg-type]
        for net in nets.values():
            init_weights(net)
            net.to(device)
            if translator.channels_last:
                net.to(memory_format=torch.channels_last)
        gens = nn.ModuleList([nets[n] for n in translator.generators])
        discs = nn.ModuleList([m for n, m in nets.items() if n not in translator.generators])
        pools = {} if translator.paired else {
            # each pool its own seeded RNG: resumed runs draw the same old fakes
            "pool_A": ImagePool(cfg.translate.pool_size, t.seed + 11),
            "pool_B": ImagePool(cfg.translate.pool_size, t.seed + 12),
        }
        return cls(cfg, translator, nets, adam(gens, t.lr_g, (t.beta1, t.beta2)),
                   adam(discs, t.lr_d, (t.beta1, t.beta2)), LOSSES.get(t.loss), pools,
                   shape_A, shape_B, data.name, domain_classes(data), device,  # type: ignore[arg-type]
                   precision=resolve_precision(t.precision, device, is_image=True))

    def generators(self) -> nn.ModuleList:
        return nn.ModuleList([self.nets[n] for n in self.translator.generators])

    def discriminators(self) -> nn.ModuleList:
        return nn.ModuleList([m for n, m in self.nets.items() if n not in self.translator.generators])

    # ----------------------------------------------------------------------- checkpoint round trip

    def model_tensors(self) -> dict[str, Tensor]:
        return {f"{name}.{k}": v for name, net in self.nets.items() for k, v in net.state_dict().items()}

    def train_tensors(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        tG, mG = optimizer_to_flat("opt_G", self.opt_G)
        tD, mD = optimizer_to_flat("opt_D", self.opt_D)
        tensors = {**tG, **tD, "rng.torch": torch.get_rng_state()}  # dropout in pix2pix's U-Net
        for name, pool in self.pools.items():
            tensors.update(pool.state_tensors(name))
        return tensors, {"opt_G": mG, "opt_D": mD}

    def meta(self, elapsed: float) -> dict[str, Any]:
        """state.json: self-describing, so ``gankit translate`` rebuilds the generators from it."""
        return {
            "step": self.step,
            "real_batches": self.step,  # batch i of the data order is a function of the seed and i
            "elapsed": elapsed,
            "config": self.cfg.to_dict(),
            "precision": self.precision,
            "translator": {"arch": self.cfg.model.arch, "task": self.task, "paired": self.translator.paired,
                           "generators": list(self.translator.generators), "shape_A": list(self.shape_A),
                           "shape_B": list(self.shape_B), "classes": self.classes},
            "versions": {"gankit": gankit.__version__, "torch": torch.__version__,
                         "python": platform.python_version()},
        }

    def restore(self, ckpt: Checkpoint) -> None:
        """Weights, Adam's moments, the RNG, the pools and the counters of ``ckpt``."""
        assert ckpt.train is not None
        for name, net in self.nets.items():
            net.load_state_dict(ckpt.module_state(name))
        optimizer_from_flat("opt_G", self.opt_G, ckpt.train, ckpt.meta["optim"]["opt_G"])
        optimizer_from_flat("opt_D", self.opt_D, ckpt.train, ckpt.meta["optim"]["opt_D"])
        torch.set_rng_state(ckpt.train["rng.torch"])
        for name, pool in self.pools.items():
            pool.load_state_tensors({k: v.to(self.device) if k.endswith(".images") else v
                                     for k, v in ckpt.train.items() if k.startswith(name + ".")}, name)
        self.step = int(ckpt.meta["step"])
        self.elapsed = float(ckpt.meta["elapsed"])
        self.precision = resumed_precision(self.cfg.train.precision, self.precision, ckpt.meta)


# --------------------------------------------------------------------------- one iteration each


def pix2pix_step(s: TranslationState, real_A: Tensor, real_B: Tensor) -> tuple[Tensor, ...]:
    """One pix2pix iteration (its code's order: D, then G). real_A (B, Ca, H, W), real_B (B, Cb, H, W).

    Returns (loss_D, loss_G, D(real pair), D(fake pair), loss_G_GAN, loss_G_L1), all on the device."""
    G, D = s.nets["G"], s.nets["D"]
    with s.autocast():  # --precision bf16: the networks' passes; images, logits and losses stay fp32
        fake_B = G(real_A).float()  # (B, Cb, H, W)
    # D step: a conditional GAN (section 3.1): D sees the input beside the real or the fake output.
    D.requires_grad_(True)
    s.opt_D.zero_grad(set_to_none=True)
    with s.autocast():
        logits_real = D(torch.cat([real_A, real_B], 1)).float()  # (B, 1, H', W'): one logit per patch
        logits_fake = D(torch.cat([real_A, fake_B.detach()], 1)).float()
    # halved as in the paper (section 3.3): slows D's learning relative to G's
    loss_D = 0.5 * s.loss.d_loss(logits_real, logits_fake)
    loss_D.backward()
    s.opt_D.step()
    # G step: fool the updated D, and stay near the true B in L1 (eq. 4: lambda = 100).
    D.requires_grad_(False)  # no gradients for D's weights from G's loss
    s.opt_G.zero_grad(set_to_none=True)
    with s.autocast():
        logits_G = D(torch.cat([real_A, fake_B], 1)).float()
    loss_G_GAN = s.loss.g_loss(logits_G)
    loss_G_L1 = s.cfg.translate.l1 * l1(fake_B, real_B)
    loss_G = loss_G_GAN + loss_G_L1
    loss_G.backward()
    s.opt_G.step()
    D.requires_grad_(True)
    return (loss_D.detach(), loss_G.detach(), d_probability(logits_real), d_probability(logits_fake),
            loss_G_GAN.detach(), loss_G_L1.detach())


def cyclegan_step(s: TranslationState, real_A: Tensor, real_B: Tensor) -> tuple[Tensor, ...]:
    """One CycleGAN iteration (its code's order: both G first, then both D). real_A (B, Ca, H, W),
    real_B (B, Cb, H, W), unpaired.

    Returns (loss_D, loss_G, D(real), D(fake), loss_G_GAN, loss_cycle, loss_idt), on the device."""
    G_AB, G_BA, D_A, D_B = (s.nets[n] for n in ("G_AB", "G_BA", "D_A", "D_B"))
    tr = s.cfg.translate
    with s.autocast():  # --precision bf16: the networks' passes; images, logits and losses stay fp32
        fake_B = G_AB(real_A).float()  # (B, Cb, H, W)
        rec_A = G_BA(fake_B).float()  # F(G(A)) ~ A: forward cycle consistency (eq. 2)
        fake_A = G_BA(real_B).float()
        rec_B = G_AB(fake_A).float()  # G(F(B)) ~ B: backward cycle consistency
    # G step, the Ds frozen: fool D_B with fake_B and D_A with fake_A, close both cycles.
    D_A.requires_grad_(False)
    D_B.requires_grad_(False)
    s.opt_G.zero_grad(set_to_none=True)
    with s.autocast():
        logits_B, logits_A = D_B(fake_B).float(), D_A(fake_A).float()
    loss_G_GAN = s.loss.g_loss(logits_B) + s.loss.g_loss(logits_A)
    loss_cycle = cycle_loss(real_A, rec_A, real_B, rec_B, tr.cycle)
    if tr.identity > 0:  # section 5.2: a G fed its own output domain should change nothing
        with s.autocast():
            same_A, same_B = G_BA(real_A).float(), G_AB(real_B).float()
        loss_idt = identity_loss(real_A, same_A, real_B, same_B, tr.identity * tr.cycle)
    else:
        loss_idt = torch.zeros((), device=real_A.device)
    loss_G = loss_G_GAN + loss_cycle + loss_idt
    loss_G.backward()
    s.opt_G.step()
    # D step: real against fakes half from the history pool (section 4, Shrivastava et al. 2017).
    D_A.requires_grad_(True)
    D_B.requires_grad_(True)
    s.opt_D.zero_grad(set_to_none=True)
    old_B, old_A = s.pools["pool_B"].query(fake_B.detach()), s.pools["pool_A"].query(fake_A.detach())
    with s.autocast():
        logits_real_B, logits_fake_B = D_B(real_B).float(), D_B(old_B).float()
        logits_real_A, logits_fake_A = D_A(real_A).float(), D_A(old_A).float()
    # each D's objective halved, as in the paper's code (D learns slower than G)
    loss_D = 0.5 * (s.loss.d_loss(logits_real_B, logits_fake_B) + s.loss.d_loss(logits_real_A, logits_fake_A))
    loss_D.backward()
    s.opt_D.step()
    d_real = 0.5 * (d_probability(logits_real_A) + d_probability(logits_real_B))
    d_fake = 0.5 * (d_probability(logits_fake_A) + d_probability(logits_fake_B))
    return (loss_D.detach(), loss_G.detach(), d_real, d_fake, loss_G_GAN.detach(), loss_cycle.detach(),
            loss_idt.detach())


# The reconstruction terms each translator logs beside Meter's standard six.
TERMS = {"pix2pix": ("loss_g_gan", "loss_l1"), "cyclegan": ("loss_g_gan", "loss_cycle", "loss_idt")}


# --------------------------------------------------------------------------- samples and the run


def _rgb_if_mixed(rows: list[Tensor]) -> list[Tensor]:
    """Gray rows become RGB when another row is in colour (one grid holds both)."""
    c = max(r.shape[1] for r in rows)
    return [r.expand(-1, c, -1, -1) for r in rows]


def sample_rows(s: TranslationState, fixed_A: Tensor, fixed_B: Tensor) -> list[Tensor]:
    """The rows of a sample grid. pix2pix: input A, output G(A), target B. CycleGAN: A, G_AB(A),
    G_BA(G_AB(A)), then the B side: B, G_BA(B), G_AB(G_BA(B)). Each (N_FIXED, C, H, W)."""
    if s.translator.paired:
        return [fixed_A, translate_images(s.nets["G"], fixed_A), fixed_B]
    G_AB, G_BA = s.nets["G_AB"], s.nets["G_BA"]
    fake_B, fake_A = translate_images(G_AB, fixed_A), translate_images(G_BA, fixed_B)
    return [fixed_A, fake_B, translate_images(G_BA, fake_B), fixed_B, fake_A, translate_images(G_AB, fake_A)]


def save_samples(s: TranslationState, fixed_A: Tensor, fixed_B: Tensor, run_dir: Path) -> Path:
    """samples/step-NNNNNN.png: one column per fixed input, rows as ``sample_rows`` says."""
    path = run_dir / "samples" / f"step-{s.step:06d}.png"
    rows = _rgb_if_mixed(sample_rows(s, fixed_A, fixed_B))
    names = ["input A", "output G(A)", "target B"] if s.translator.paired else \
        ["A", "G_AB(A)", "G_BA(G_AB(A))", "B", "G_BA(B)", "G_AB(G_BA(B))"]
    save_grid(torch.cat(rows).float().cpu(), path, nrow=len(fixed_A), row_labels=names)
    return path


@dataclass
class TranslationRun:
    """What ``train`` returns for a translator: the run directory and the trained networks."""

    run_dir: Path
    nets: dict[str, nn.Module]
    config: Config
    step: int
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def G(self) -> nn.Module:
        """The A -> B generator (pix2pix's G, CycleGAN's G_AB)."""
        return self.nets["G"] if "G" in self.nets else self.nets["G_AB"]

    def translate(self, images: Tensor, direction: str = "AtoB") -> Tensor:
        """images (N, C, H, W) in [-1, 1] -> translations (N, C', H, W) in [-1, 1], on the CPU."""
        G = generator_for(self.nets, self.config.model.arch, direction)
        return translate_images(G, images.to(next(G.parameters()).device)).cpu()


# --------------------------------------------------------------------------- the loop


def train_translator(cfg: Config | None, resume: str | Path | None = None,
                     overrides: dict[str, Any] | None = None) -> TranslationRun:
    """Train pix2pix or CycleGAN as ``cfg`` says; with ``resume``, continue the run in that folder."""
    # ---------------------------------------------------------------- 1. config and run directory
    if resume is not None:
        cfg = resume_config(resume, overrides or {})
    else:
        assert cfg is not None
        prepare_new(cfg)
    run_dir = Path(cfg.log.out)
    t, lg, arch = cfg.train, cfg.log, cfg.model.arch
    device = resolve_device(t.device)
    ckpt_dir = run_dir / "checkpoints"
    clean_partial(ckpt_dir)

    # ---------------------------------------------------------------- 2. data, in memory, on the device
    data = load_data(cfg)
    held_out = load_data(cfg, "test")  # built-in tasks: Fashion-MNIST's test set; folders: the same
    for line in data.notes:  # folders: what was found, and every file skipped with its reason
        print(line, file=sys.stderr)
    print(f"{data.name}: A {len(data.A)} x {tuple(data.A.shape[1:])}, B {len(data.B)} x "
          f"{tuple(data.B.shape[1:])}" + (" (paired)" if isinstance(data, PairedData) else " (unpaired)"),
          file=sys.stderr)
    A, B = data.A.to(device), data.B.to(device)
    order_A = BatchOrder(len(A), t.batch_size, t.seed, device)
    # paired: B follows A's order; unpaired: B in its own order, as CycleGAN's unaligned loader
    order_B = order_A if isinstance(data, PairedData) else BatchOrder(len(B), t.batch_size, t.seed + 1, device)
    fixed_A = to_float(held_out.A[:N_FIXED]).to(device)
    fixed_B = to_float(held_out.B[:N_FIXED]).to(device)

    # ---------------------------------------------------------------- 3. networks, optimisers, RNG
    s = TranslationState.create(cfg, data, device)
    metrics = MetricsLog(run_dir / "metrics.jsonl", run_dir / "tensorboard" if lg.tensorboard else None)
    if resume is not None:
        ckpt = load_checkpoint(run_dir)
        saved = ckpt.meta["translator"]
        if [saved["shape_A"], saved["shape_B"]] != [list(s.shape_A), list(s.shape_B)]:
            raise GankitError(f"the data now give A {s.shape_A} and B {s.shape_B}, but {run_dir} was trained "
                              f"on A {tuple(saved['shape_A'])} and B {tuple(saved['shape_B'])}; resume with "
                              "the same data")
        s.restore(ckpt)
        metrics.truncate_after(s.step)
        print(f"resuming {run_dir} at step {s.step}", file=sys.stderr)
    check_precision(s.precision, device, t.precision)
    step_fn = pix2pix_step if s.translator.paired else cyclegan_step
    terms = TERMS[arch]
    last_ckpt, saved_now = s.step, resume is not None

    def elapsed() -> float:
        return s.elapsed + (time.perf_counter() - t0)

    def checkpoint() -> None:
        nonlocal last_ckpt, saved_now
        if saved_now and last_ckpt == s.step:
            return
        meter.check_finite(s, last_ckpt)  # never save a diverged model
        tensors, optim_meta = s.train_tensors()
        meta = s.meta(elapsed()) | {"optim": optim_meta}
        save_checkpoint(ckpt_dir, s.step, s.model_tensors(), tensors, meta, lg.keep)
        last_ckpt, saved_now = s.step, True

    # ---------------------------------------------------------------- 4. the iterations
    meter = Meter(device, s.step)
    term_sums = torch.zeros(len(terms), device=device)
    out_of_time = False
    history: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    t_log, step_log = t0, s.step
    if s.step == 0:
        save_samples(s, fixed_A, fixed_B, run_dir)
    bar = tqdm(total=t.steps, initial=s.step, disable=not lg.progress, unit="it", dynamic_ncols=True,
               file=sys.stderr, desc=run_dir.name)
    gens, discs = s.generators(), s.discriminators()
    layout = s.translator.channels_last
    with _StopFlag() as stop:
        while s.step < t.steps:
            if t.lr_decay_start < 1:  # this step's learning rates: a function of the step, resumes alike
                set_lr_factor((s.opt_G, s.opt_D), lr_factor(s.step, t.steps, t.lr_decay_start))
            real_A = to_float(A.index_select(0, order_A.indices(s.step)), layout)  # (B, Ca, H, W)
            real_B = to_float(B.index_select(0, order_B.indices(s.step)), layout)  # (B, Cb, H, W)
            loss_D, loss_G, d_real, d_fake, *extra = step_fn(s, real_A, real_B)
            s.step += 1
            meter.add(loss_D, loss_G, d_real, d_fake, grad_norm(gens), grad_norm(discs))
            term_sums += torch.stack(extra).float()
            bar.update(1)

            # ------------------------------------------------------------ 5. log, sample, save
            final = s.step == t.steps
            out_of_time = t.max_time > 0 and elapsed() >= t.max_time  # host clock: no device sync
            final = final or out_of_time
            stopping = stop.requested
            if s.step % lg.log_every == 0 or final or stopping:
                meter.check_finite(s, last_ckpt)  # NaN or Inf since the last log: stop, naming the step
                now = time.perf_counter()
                n = meter.n
                rec: dict[str, Any] = {"step": s.step, **meter.read()}
                rec.update(zip(terms, (term_sums / max(n, 1)).tolist(), strict=True))
                term_sums.zero_()
                rec["time"] = round(elapsed(), 3)
                rec["img_per_s"] = round(t.batch_size * (s.step - step_log) / max(now - t_log, 1e-9), 1)
                t_log, step_log = now, s.step
                metrics.append(rec)
                history.append(rec)
                bar.set_postfix_str(f"loss_d={rec['loss_d']:.3f} loss_g={rec['loss_g']:.3f} "
                                    + " ".join(f"{k[5:]}={rec[k]:.3f}" for k in terms), refresh=False)
            if s.step % lg.sample_every == 0 or final:
                save_samples(s, fixed_A, fixed_B, run_dir)
            if s.step % lg.checkpoint_every == 0 or final or stopping:
                checkpoint()
            if stopping or out_of_time:
                break
    bar.close()
    metrics.close()

    # ---------------------------------------------------------------- 6. report
    from gankit.report import build_report

    report = build_report(run_dir)
    if s.step < t.steps and not out_of_time:  # left the loop early: Ctrl-C
        raise KeyboardInterrupt(f"stopped at step {s.step}; checkpoint saved. "
                                f"Continue with: gankit train --resume {run_dir}")
    print(f"samples: {run_dir / 'samples'}\nreport:  {report}\n"
          f"score:   gankit eval {run_dir}\napply:   gankit translate {run_dir} INPUT_DIR --out OUT_DIR",
          file=sys.stderr)
    return TranslationRun(run_dir, s.nets, cfg, s.step, history)


__all__ = ["TranslationRun", "TranslationState", "cyclegan_step", "is_translator", "pix2pix_step",
           "train_translator"]
