"""Everything a run is: the two networks, their optimisers, the RNGs and the counters.

A ``TrainState`` round-trips through a checkpoint exactly, which is what makes a run killed at
step s and resumed end bit-identical (on CPU) to one never interrupted.
"""

from __future__ import annotations

import contextlib
import copy
import math
import platform
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

import gankit
from gankit.checkpoint import (
    Checkpoint,
    check_module,
    check_optimizer,
    check_rng,
    check_train_tensor,
    optimizer_from_flat,
    optimizer_to_flat,
    restore_rng,
    rng_state_tensors,
)
from gankit.config import Config
from gankit.errors import GankitError
from gankit.losses import LOSSES, GANLoss
from gankit.models import DataShape, default_width, models_for, sample_prior
from gankit.models.conditional import class_rows, default_labels
from gankit.sampling import check_gan_meta
from gankit.train import distributed
from gankit.train.ada import DEFAULT_POLICY, Ada
from gankit.train.augment import Draw
from gankit.train.schedule import Schedule

N_FIXED_IMAGES = 64  # an 8x8 grid of samples at fixed z, saved over time
N_FIXED_POINTS = 1024  # generated points drawn over D's field for 2-D data
GRID_COLUMNS = 8  # a conditional run's grid: one row per class, 8 latents across


# --precision: the dtype autocast runs G's and D's convolutions and matrix products in (None: fp32).
AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Forward passes in ``precision`` (a resolved one: fp32, bf16 or fp16) via ``torch.autocast``:
    convolutions and matrix products in bf16 or fp16, the rest as it is. A no-op for fp32."""
    dtype = AUTOCAST_DTYPES[precision]
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def gradient_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler | None:
    """fp16 needs a gradient scaler (Micikevicius et al. 2018, "Mixed precision training"): the
    loss is multiplied by a large factor before backward so small gradients do not flush to zero
    in fp16, the gradients are divided by it before Adam, and a step whose gradients overflowed is
    skipped and the factor halved. bf16 has fp32's exponent range and needs none."""
    return torch.amp.GradScaler(device.type) if precision == "fp16" else None


def _cpuinfo() -> str:
    """/proc/cpuinfo's text ("" where there is none: not Linux)."""
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU multiplies bf16 natively (x86 AVX512-BF16 or AMX, read from /proc/cpuinfo
    on Linux, or from ``cpuinfo`` given). Elsewhere bf16 is emulated, and slower. Having it does not
    make it faster than fp32 (``cpu_bf16_pays``)."""
    flags = _cpuinfo() if cpuinfo is None else cpuinfo
    return bool(re.search(r"\b(avx512_bf16|amx_bf16)\b", flags)) and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def cpu_bf16_pays() -> bool:
    """Whether bf16 autocast beats fp32 on this CPU: native bf16, and measured faster (once per
    machine, cached: ``gankit.train.bf16_probe``)."""
    cpuinfo = _cpuinfo()
    if not cpu_has_native_bf16(cpuinfo):
        return False
    from gankit.data import default_cache_dir
    from gankit.train.bf16_probe import bf16_pays

    return bf16_pays(cpuinfo, default_cache_dir())


def resolve_precision(precision: str, device: torch.device, is_image: bool) -> str:
    """``--precision auto``: bf16 for image GANs on hardware where it is native and, on a CPU,
    measured faster than fp32; else fp32.

    Never for 2-D points: bf16 keeps 8 bits of mantissa, so G's outputs near 1 would fall on a
    grid of 1/128, coarser than the ring's modes (std 0.01)."""
    if precision != "auto":
        return precision
    if not is_image:
        return "fp32"
    if device.type == "cuda":
        # not emulated: pre-Ampere GPUs run bf16 through fp32 units, slower than fp32 itself
        return "bf16" if torch.cuda.is_bf16_supported(including_emulation=False) else "fp32"
    return "bf16" if device.type == "cpu" and cpu_bf16_pays() else "fp32"


def resumed_precision(asked: str, resolved: str, meta: dict) -> str:
    """The precision a resumed run goes on in: with ``auto``, the one its checkpoint records (what
    this machine would pick for a new run may differ; checkpoints from before --precision: fp32);
    an explicit ``--precision`` given at resume wins."""
    return str(meta.get("precision") or "fp32") if asked == "auto" else resolved


def check_precision(precision: str, device: torch.device, asked: str = "") -> None:
    """Say what ``--precision auto`` (``asked``) chose where it is not fp32, and warn where the
    precision has no fast kernels on this device (it still runs)."""
    if asked == "auto" and precision != "fp32":
        print(f"precision: {precision} autocast (precision auto: this {device.type} has native "
              f"{precision}{', measured faster than fp32' if device.type == 'cpu' else ''}; "
              f"precision fp32 turns it off)", file=sys.stderr)
    slow = ""
    if device.type == "cpu" and precision == "bf16" and not cpu_has_native_bf16():
        slow = "this CPU has no native bf16 (AVX512-BF16 or AMX): bf16 is emulated and slower than fp32"
    if device.type == "cpu" and precision == "fp16":
        slow = ("oneDNN has no fast fp16 convolution backward on CPUs (1-2 GFLOP/s measured on this "
                "project's Zen 4, against ~270 in fp32): use precision bf16 on a CPU")
    if slow:
        print(f"gankit: warning: precision {precision}: {slow}", file=sys.stderr)


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto``: CUDA if present, else CPU. Under torchrun each process takes GPU LOCAL_RANK."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise GankitError("train.device cuda was asked for, but this torch sees no CUDA GPU; use train.device cpu")
    if name == "cuda":
        return torch.device("cuda", local_rank)
    return torch.device(name)


def adam(module: nn.Module, lr: float, betas: tuple[float, float]) -> torch.optim.Adam:
    """Adam with the fused kernel where this torch has one for the device (one kernel over all
    parameters): 0.67 ms per step for the 32 px DCGAN's G on 2 CPU cores, against 1.08 ms for
    ``foreach`` and 1.69 ms for torch's CPU default, the per-parameter loop (docs/BENCHMARKS.md)."""
    params = list(module.parameters())
    try:
        return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)
    except (RuntimeError, TypeError):  # torch < 2.4 on CPU, or a device without the fused kernel
        return torch.optim.Adam(params, lr=lr, betas=betas, foreach=True)


def run_meta(cfg: Config, precision: str, step: int, elapsed: float,
             best: dict[str, Any] | None) -> dict[str, Any]:
    """What every checkpoint records, whatever its task: the step, the seconds of training so far,
    the config, the precision it trained in, the best evaluation (``eval.eval_every``) and the
    versions that wrote it."""
    return {
        "step": step,
        "elapsed": elapsed,
        "config": cfg.to_dict(),
        "precision": precision,
        "best": best,
        "versions": {"gankit": gankit.__version__, "torch": torch.__version__,
                     "python": platform.python_version()},
    }


def ema_beta(decay: float, rampup: float, step: int) -> float:
    """The EMA's decay at G update ``step`` (1, 2, ...): ``decay`` once warmed up.

    Karras et al. (2020, StyleGAN2-ADA) and Huang et al. (2024, R3GAN) give the average a
    half-life, in images, that grows with the images seen: min(half-life, rampup x images so
    far). A fixed decay of 0.999 instead averages over ~700 steps from the start, so a 300-step
    run's average is still mostly the random initial G (grey images, one blob at the origin).
    In steps: half-life h = ln(1/2) / ln(decay), capped at rampup x step, and
    beta = (1/2) ** (1 / h). ``rampup`` 0 is the plain fixed decay."""
    if decay <= 0.0 or rampup <= 0.0 or decay >= 1.0:
        return decay
    half_life = min(math.log(0.5) / math.log(decay), rampup * step)
    return 0.5 ** (1.0 / half_life)


def ema_beta_images(half_life: float, rampup: float, images: int, batch: int) -> float:
    """The EMA's decay for one update of ``batch`` images with a half-life given in images
    (Karras et al. 2020; Huang et al. 2024): the half-life is min(``half_life``, ``rampup`` x
    ``images``, the images seen after this update), and beta = (1/2) ** (batch / half-life).
    ``rampup`` 0: no warm-up. :func:`ema_beta` is the same with a half-life in steps."""
    h = min(half_life, rampup * images) if rampup > 0.0 else half_life
    return 0.5 ** (batch / h)


M = TypeVar("M", bound=nn.Module)


def ema_copy(G: M, ema: float) -> M | None:
    """The moving average of G's weights as it starts (a frozen copy of G) when ``ema`` > 0 (the
    decay, train.ema), else None: the run keeps none. ``lerp_ema`` updates it."""
    return copy.deepcopy(G).requires_grad_(False) if ema > 0 else None


@torch.no_grad()
def lerp_ema(G_ema: nn.Module, G: nn.Module, beta: float) -> None:
    """theta_ema <- beta * theta_ema + (1 - beta) * theta (foreach kernels on the device, beta a host
    number: no host synchronisation); buffers such as batch-norm statistics are copied, not averaged."""
    torch._foreach_lerp_(list(G_ema.parameters()), list(G.parameters()), 1.0 - beta)
    for b_ema, b in zip(G_ema.buffers(), G.buffers(), strict=True):
        b_ema.copy_(b)


def ema_decay(schedule: Schedule, step: int) -> float:
    """The EMA's decay after G update ``step`` (0, 1, ...): from ``train.ema_half_life`` (images,
    scheduled) when set, else from ``train.ema`` (per step), both warmed up by ``train.ema_rampup``."""
    t = schedule.cfg.train
    half_life = schedule.ema_half_life(step)
    if half_life is None:
        return ema_beta(t.ema, t.ema_rampup, step + 1)
    return ema_beta_images(half_life, t.ema_rampup, schedule.images(step + 1), schedule.images(1))


@dataclass
class TrainState:
    cfg: Config
    shape: DataShape
    device: torch.device
    G: nn.Module
    D: nn.Module
    opt_G: torch.optim.Optimizer
    opt_D: torch.optim.Optimizer
    loss: GANLoss
    z_gen: torch.Generator  # draws every z of training; its state is checkpointed
    fixed_z: Tensor  # (n, latent_dim): the latents the sample grids are made from
    step: int = 0  # generator updates done (iterations of Algorithm 1)
    real_batches: int = 0  # batches drawn from the data so far: the data order's position
    extent: tuple[float, float, float, float] | None = None  # 2-D data: where D's field is drawn
    dist: distributed.Dist = distributed.SINGLE
    G_train: nn.Module | None = None  # G as updated: DistributedDataParallel(G) under torchrun, else G
    D_train: nn.Module | None = None
    G_ema: nn.Module | None = None  # with --ema: the moving average of G's weights, never trained
    num_classes: int = 0  # K > 0: a class-conditional run, G(z, y) and D(x, y)
    classes: list[str] | None = None  # the classes' names, when the data name them
    fixed_y: Tensor | None = None  # (n,) the labels of the sample grids: one class per row
    scaler_G: torch.amp.GradScaler | None = None  # --precision fp16: one gradient scaler per player
    scaler_D: torch.amp.GradScaler | None = None
    precision: str = "fp32"  # the run's --precision, resolved (auto -> bf16 or fp32)
    width: int = 0  # the networks' base width as built (the architecture's default if unset)
    ada: Ada | None = None  # adaptive augmentation's p and signal (reg.ada), else None

    def __post_init__(self) -> None:
        if self.G_train is None:
            self.G_train = self.G
        if self.D_train is None:
            self.D_train = self.D

    def autocast(self) -> contextlib.AbstractContextManager:
        """The forward passes of G and D in the run's ``--precision`` (``torch.autocast``):
        convolutions and matrix products in bf16 or fp16, the weights, Adam's moments and the losses
        in fp32 (``judge`` hands the logits back as fp32). A no-op for fp32."""
        return autocast(self.device, self.precision)

    @property
    def draw(self) -> Draw:
        """Per-sample random numbers from the training generator, drawn for the global batch and
        sharded under torchrun (instance noise, DiffAugment, the gradient penalty's mixing)."""
        return Draw(self.z_gen, self.dist.world, self.dist.rank)

    @property
    def schedule(self) -> Schedule:
        """The run's scheduled values (``gankit.train.schedule``), a function of ``step``."""
        return Schedule(self.cfg, self.dist.world)

    def gammas(self) -> tuple[float, float]:
        """The R1 and R2 gammas of this step (``reg.r1``, ``reg.r2``; scheduled with their ends)."""
        return self.schedule.gammas(self.step)

    @property
    def G_sample(self) -> nn.Module:
        """The generator that samples, the report and evaluation see: the EMA copy when enabled."""
        return self.G_ema if self.G_ema is not None else self.G

    @torch.no_grad()
    def update_ema(self) -> None:
        """theta_ema <- beta * theta_ema + (1 - beta) * theta, after each G update (Yazici et al.
        2019, "The unusual effectiveness of averaging in GAN training"), beta warmed up by
        :func:`ema_beta`. Batch-norm statistics are copied, not averaged. Runs on the device with
        foreach kernels (beta is a host number from the step count): no host synchronisation."""
        if self.G_ema is None:
            return
        lerp_ema(self.G_ema, self.G, ema_decay(self.schedule, self.step))

    @classmethod
    def create(cls, cfg: Config, shape: DataShape, device: torch.device,
               d: distributed.Dist = distributed.SINGLE, num_classes: int = 0,
               classes: list[str] | None = None, ada: bool | None = None) -> TrainState:
        """Fresh models and optimisers; the same seed gives the same weights, run after run
        (and on every rank: the seed is shared, so DDP starts from identical replicas).
        ``num_classes``: the labelled data's K, for ``--conditional``. ``ada``: adaptive
        augmentation on or off as the task resolved ``reg.ada`` (None: ``reg.ada``, unset = off)."""
        torch.manual_seed(cfg.train.seed)
        m, t = cfg.model, cfg.train
        if cfg.reg.diffaugment and not shape.is_image:
            raise GankitError("reg.diffaugment augments images; these data are "
                              f"{shape.describe()}: leave it out")
        if not m.conditional:
            num_classes, classes = 0, None
        r = cfg.reg
        if ada is None:
            ada = bool(r.ada)
        if ada and not shape.is_image:
            raise GankitError(f"reg.ada augments images; these data are {shape.describe()}: leave it out")
        G, D = models_for(cfg, shape, num_classes)
        G, D = G.to(device), D.to(device)
        if shape.is_image and any(isinstance(x, nn.Conv2d) for x in D.modules()):
            # Channels-last: oneDNN's (and cuDNN's) fast convolution layout. On 2 CPU cores it made
            # the 32 px DCGAN step 18 % faster (bench/layout_ablation.py); the values are unchanged.
            G.to(memory_format=torch.channels_last)
            D.to(memory_format=torch.channels_last)
        opt_G = adam(G, t.lr_g, (t.beta1, t.beta2))
        opt_D = adam(D, t.lr_d, (t.beta1, t.beta2))
        z_gen = torch.Generator(device=device).manual_seed(t.seed)
        # The fixed latents come from their own generator, so saving samples never changes training.
        n_fixed = N_FIXED_IMAGES if shape.is_image else N_FIXED_POINTS
        fixed_z = sample_prior(m.prior, n_fixed, m.latent_dim,
                               generator=torch.Generator().manual_seed(t.seed + 1)).to(device)
        fixed_y = None
        if num_classes:  # images: row r of the grid is class r, each column one z (style) for all rows
            fixed_y = (class_rows(num_classes, GRID_COLUMNS) if shape.is_image
                       else default_labels(n_fixed, num_classes)).to(device)
            if shape.is_image:
                fixed_z = fixed_z[torch.arange(len(fixed_y), device=device) % GRID_COLUMNS]
        precision = resolve_precision(t.precision, device, shape.is_image)
        G_ema = ema_copy(G, t.ema)
        G_train, D_train = distributed.wrap(d, G, device, t.sync_bn), distributed.wrap(d, D, device, t.sync_bn)
        if t.compile:  # opt-in: measured slower on CPU for DCGAN (docs/BENCHMARKS.md)
            G_train, D_train = torch.compile(G_train), torch.compile(D_train)
        return cls(cfg, shape, device, G, D, opt_G, opt_D, LOSSES.get(t.loss), z_gen, fixed_z, dist=d,
                   G_train=G_train, D_train=D_train, G_ema=G_ema, num_classes=num_classes,
                   classes=classes, fixed_y=fixed_y, scaler_G=gradient_scaler(precision, device),
                   scaler_D=gradient_scaler(precision, device), precision=precision,
                   width=m.width or default_width(m.arch, shape),
                   ada=Ada(r.diffaugment or DEFAULT_POLICY, r.ada_target, r.ada_kimg, r.ada_interval, device, d)
                   if ada else None)

    def z(self, n: int) -> Tensor:
        """A minibatch of noise from the prior (Algorithm 1: "sample m noise samples").

        Under torchrun every rank draws the same global batch of world * n and keeps its slice."""
        z = sample_prior(self.cfg.model.prior, n * self.dist.world, self.cfg.model.latent_dim,
                         self.device, self.z_gen)
        return distributed.shard(self.dist, z)

    def y(self, n: int) -> Tensor | None:
        """Class labels for a minibatch of fakes, uniform over the K classes (None if unconditional),
        drawn from the training generator for the global batch and sharded like z."""
        if not self.num_classes:
            return None
        y = torch.randint(self.num_classes, (n * self.dist.world,), device=self.device, generator=self.z_gen)
        return distributed.shard(self.dist, y)

    # ----------------------------------------------------------------------- checkpoint round trip

    def model_tensors(self) -> dict[str, Tensor]:
        out = {f"G.{k}": v for k, v in self.G.state_dict().items()}
        out.update({f"D.{k}": v for k, v in self.D.state_dict().items()})
        if self.G_ema is not None:
            out.update({f"G_ema.{k}": v for k, v in self.G_ema.state_dict().items()})
        return out

    def train_tensors(self) -> tuple[dict[str, Tensor], dict[str, object]]:
        tG, mG = optimizer_to_flat("opt_G", self.opt_G)
        tD, mD = optimizer_to_flat("opt_D", self.opt_D)
        tensors = {**tG, **tD, **rng_state_tensors(self.z_gen), "fixed_z": self.fixed_z}
        if self.ada is not None:
            tensors.update(self.ada.tensors())
        meta: dict[str, object] = {"opt_G": mG, "opt_D": mD}
        if self.scaler_G is not None and self.scaler_D is not None:  # fp16: the loss scales (floats)
            meta["scalers"] = {"G": self.scaler_G.state_dict(), "D": self.scaler_D.state_dict()}
        return tensors, meta

    def meta(self) -> dict[str, object]:
        """What a checkpoint records of the GAN beside the lifecycle's step, time and config."""
        return {
            "real_batches": self.real_batches,
            "data_shape": list(self.shape.dims),
            "num_classes": self.num_classes,
            "classes": self.classes,
            "extent": list(self.extent) if self.extent else None,
        }

    def restore(self, ckpt: Checkpoint) -> None:
        """Load weights, optimiser moments, RNG states and counters from ``ckpt``."""
        assert ckpt.train is not None
        self.G.load_state_dict(ckpt.module_state("G"))
        self.D.load_state_dict(ckpt.module_state("D"))
        if self.G_ema is not None:
            self.G_ema.load_state_dict(ckpt.module_state("G_ema"))
        optimizer_from_flat("opt_G", self.opt_G, ckpt.train, ckpt.meta["optim"]["opt_G"])
        optimizer_from_flat("opt_D", self.opt_D, ckpt.train, ckpt.meta["optim"]["opt_D"])
        self.precision = resumed_precision(self.cfg.train.precision, self.precision, ckpt.meta)
        scalers = ckpt.meta["optim"].get("scalers")
        if self.scaler_G is not None and self.scaler_D is not None and scalers:
            self.scaler_G.load_state_dict(scalers["G"])
            self.scaler_D.load_state_dict(scalers["D"])
        restore_rng(ckpt.train, self.z_gen)
        self.fixed_z = ckpt.train["fixed_z"].to(self.device)
        if self.ada is not None:
            self.ada.load(ckpt.train)
        self.step = int(ckpt.meta["step"])
        self.real_batches = int(ckpt.meta["real_batches"])

    def check_checkpoint(self, ckpt: Checkpoint) -> None:
        """``gankit.validate.Damaged`` unless ``ckpt`` holds everything ``restore`` reads, of the
        types, ranges and shapes this run's networks and optimisers have (the task's part of a
        checkpoint being intact; ``gankit.checkpoint`` checks the rest)."""
        check_gan_meta(ckpt)  # data_shape, classes, extent, ... (what sampling reads too)
        f = ckpt.fields()
        f.integer("real_batches")
        check_module(ckpt, "G", self.G)
        check_module(ckpt, "D", self.D)
        if self.G_ema is not None:
            check_module(ckpt, "G_ema", self.G_ema)
        check_optimizer(ckpt, "opt_G", self.opt_G)
        check_optimizer(ckpt, "opt_D", self.opt_D)
        check_rng(ckpt, "rng.torch", torch.default_generator)
        check_rng(ckpt, "rng.z", self.z_gen)
        check_train_tensor(ckpt, "fixed_z", self.fixed_z.shape, floating=True)
        if self.ada is not None:
            for key, t in self.ada.tensors().items():
                check_train_tensor(ckpt, key, t.shape, floating=True)
        scalers = ckpt.fields("optim").object("scalers", default=None)
        for name, scaler in (("G", self.scaler_G), ("D", self.scaler_D)):
            if scaler is not None and scalers is not None:
                sf = scalers.object(name)
                assert sf is not None
                for key, value in scaler.state_dict().items():
                    if isinstance(value, int) and not isinstance(value, bool):
                        sf.integer(key, lo=0)
                    elif isinstance(value, float):
                        sf.number(key, lo=0)
