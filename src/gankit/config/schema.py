"""The run configuration's schema: typed dataclasses, the one source of defaults, and the checks
that need nothing but the values themselves (types, ranges, declared choices).

Every field has exactly one flag, derived from its name (``train.lr_g`` -> ``--lr-g``) unless the
field names another (``data.source`` -> ``--data``), and the same name works as a flat key in YAML.
A field typed ``X | None`` is optional: None means "unset", and what unset gives is said in its
help (usually: decided from the data or the architecture once they are known). Closed sets of
choices are declared here, in the field's metadata; the names of registered components (models,
losses, conditionings, datasets) are not: ``gankit.resolve`` checks them against their registries.

This module imports nothing but the standard library and ``gankit.errors``, so the schema (and
``gankit --help``) loads without torch.
"""

from __future__ import annotations

import functools
import math
import re
import types
import typing
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

from gankit.errors import GankitError, short_repr

# --------------------------------------------------------------------------- field metadata


@dataclass(frozen=True)
class Bounds:
    """The range a number must lie in: ``[low, high]``, either end open or absent."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False  # ``low`` itself is refused
    high_open: bool = False
    zero: str = ""  # what 0 means where it is the low end, e.g. "off"
    # ``high`` is a sanity limit (no run needs more), not part of what the number means: a value
    # under ``low`` is told only the low end, one over ``high`` only the limit
    limit: bool = False

    def holds(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def describe(self, value: float | None = None) -> str:
        """What the number must be; for a ``limit``, the end that ``value`` misses."""
        if self.limit and self.high is not None:
            if value is not None and value > self.high:
                return f"at most {_num(self.high)}"
            return Bounds(self.low, zero=self.zero, low_open=self.low_open).describe()
        if self.high is not None:
            zero = f" ({self.zero})" if self.zero and self.low == 0 else ""
            return (f"in {'(' if self.low_open else '['}{_num(self.low or 0)}, {_num(self.high)}"
                    f"{')' if self.high_open else ']'}{zero}")
        if self.low == 0 and self.low_open:
            return "positive"
        if self.low == 0:
            return f"0{f' ({self.zero})' if self.zero else ''} or positive"
        return f"at least {self.low:g}"


def _num(x: float) -> str:
    """A bound as written: ``65536``, ``1000000000``, ``0.5``."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e18 else f"{x:g}"


AT_LEAST_1 = Bounds(1)
POSITIVE = Bounds(0, low_open=True)
UNIT = Bounds(0, 1, high_open=True)  # [0, 1): Adam's betas, decays

# The upper ends of the counts and sizes: far beyond any run gankit is for, and low enough that
# a typo (an extra digit or three) is refused by name before anything is allocated. What fits in
# memory together (batch x image size) is checked by gankit.resolve against the machine's memory.
MANY = 10**9  # steps and every-N-steps cadences: 10^9 steps take weeks at 1000 steps a second


def _upto(high: int, low: int = 1, zero: str = "") -> Bounds:
    """At least ``low`` (what ``zero`` means, if 0), and at most the sanity limit ``high``."""
    return Bounds(low, high, zero=zero, limit=True)


def _zero_or_more(zero: str = "off") -> Bounds:
    return Bounds(0, zero=zero)


MAX_TEXT = 4096
"""The longest text value (PATH_MAX on Linux): paths, names."""


@dataclass(frozen=True)
class Pattern:
    """An open set of values of one shape (``cuda:N``, ``inception:PATH``)."""

    regex: str
    describe: str


def _f(
    default: Any, help: str, *, flag: str | None = None, choices: tuple[Any, ...] | None = None,
    many: bool = False, pattern: Pattern | None = None, bounds: Bounds | None = None,
    canonical: Callable[[Any], Any] | None = None, absent: Any = MISSING,
) -> Any:
    """A config field with its metadata: ``choices`` a closed set (``many``: a comma list of
    them), ``pattern`` an open one, ``bounds`` a number's range, ``canonical`` a function that
    checks a value (raising GankitError) and returns its canonical spelling. ``absent``: for a
    field added after runs were saved without it, the value such a saved config means (what
    those runs did), so they resume as they trained; unset: the default."""
    meta = {"help": help, "flag": flag, "choices": choices, "many": many, "pattern": pattern,
            "bounds": bounds, "canonical": canonical, "absent": absent}
    return field(default=default, metadata=meta)


# --------------------------------------------------------------------------- image size

MAX_SIDE = 4096
"""The largest image side, in pixels."""

_SIZE = re.compile(r"^\s*(\d+)\s*(?:[xX]\s*(\d+)\s*)?$")


def parse_image_size(value: str | int) -> tuple[int, int]:
    """``28`` -> (28, 28); ``"48x64"`` -> (48, 64) as (H, W)."""
    text = str(value)
    m = _SIZE.match(text) if len(text) <= 64 else None
    if not m:
        raise GankitError(f"data.image_size {short_repr(value)} is not N or HxW (e.g. 64 or 48x64)")
    sides = [g for g in m.groups() if g]
    if any(len(g) > 5 for g in sides):  # never int() a thousand digits
        h = w = 0
    else:
        h = int(sides[0])
        w = int(sides[1]) if len(sides) > 1 else h
    if not (4 <= h <= MAX_SIDE and 4 <= w <= MAX_SIDE):
        raise GankitError(f"data.image_size {short_repr(value)} is out of range: each side must be "
                          f"4..{MAX_SIDE} pixels")
    return h, w


def _canonical_image_size(value: str) -> str:
    """``" 32 X 16 "`` -> ``"32x16"``, ``"28"`` -> ``"28"`` (checked by parse_image_size)."""
    h, w = parse_image_size(value)
    return f"{h}x{w}" if "x" in value.lower() else str(h)


def _canonical_source(value: str) -> str:
    """``data.source`` as given; an empty or blank one is refused (it would read as this folder)."""
    if not value.strip():
        raise GankitError("data.source is empty: give a dataset name (ring, grid, fashion-mnist, ...: "
                          "see `gankit list`) or the path of a folder of images (`.` for this one)")
    return value


def _canonical_partner(value: str) -> str:
    if not value.strip():
        raise GankitError("translate.partner is blank: give the path of the B folder, or leave it out")
    return value


# --------------------------------------------------------------------------- the sections


@dataclass
class DataConfig:
    source: str = _f(
        "fashion-mnist",
        "a dataset (ring, grid, fashion-mnist, stacked-fashion-mnist: see `gankit list`) "
        "or a PATH to a folder of images (searched recursively)",
        flag="data", canonical=_canonical_source,
    )
    image_size: str | None = _f(
        None,
        "N or HxW; images are resized to cover it and centre-cropped. "
        "Unset: 28 for fashion-mnist, 64 for a folder",
        canonical=_canonical_image_size,
    )
    channels: int | None = _f(
        None, "1 (gray) or 3 (RGB); unset: 1 for fashion-mnist and all-gray folders, else 3",
        choices=(1, 3),
    )
    data_root: str | None = _f(
        None, "folder holding Fashion-MNIST's IDX files "
        "(unset: $GANKIT_FASHION_MNIST or /usr/share/datasets/fashion-mnist)"
    )
    cache_dir: str | None = _f(None, "cache for decoded folders (unset: $GANKIT_CACHE or ~/.cache/gankit)")
    workers: int | None = _f(None, "processes decoding a folder of images; unset: one per core (at most 8)",
                             bounds=_upto(256))

    def size(self) -> tuple[int, int] | None:
        """(H, W) from ``image_size``, or None for the dataset's default."""
        return parse_image_size(self.image_size) if self.image_size is not None else None


@dataclass
class ModelConfig:
    arch: str = _f("dcgan", "architecture of G and D (see `gankit list`)", flag="model")
    latent_dim: int = _f(100, "size of the latent vector z", bounds=_upto(4096))
    prior: str = _f("normal", "distribution of z: N(0, I) or U(-1, 1)", choices=("normal", "uniform"))
    width: int | None = _f(None, "base width (channels or hidden units); unset: the architecture's default",
                           bounds=_upto(1024))
    blocks: int | None = _f(None, "residual blocks per resolution in G and D of model.arch=r3 (unset: "
                            "1, the CPU-sized model); scale r3 by this and model.width", bounds=_upto(64))
    conditional: str | None = _f(
        None, "class-conditional G(z, y) and D on labelled data (Fashion-MNIST, or a folder whose "
        "subfolders are the classes): cgan (Mirza & Osindero 2014), acgan (Odena et al. 2017) or "
        "projection (Miyato & Koyama 2018); unset: off"
    )
    embed_dim: int | None = _f(None, "size of the label embedding G sees beside z (unset: the number "
                               "of classes)", bounds=_upto(4096))
    acgan_weight: float = _f(1.0, "with --conditional acgan: weight of the auxiliary classifier's "
                             "cross-entropy in both players' losses", bounds=_zero_or_more(""))


@dataclass
class TrainConfig:
    loss: str = _f(
        "nonsaturating", "minimax: G descends log(1 - D(G(z))); nonsaturating: G ascends log D(G(z))",
    )
    d_steps: int = _f(1, "K: discriminator updates per generator update (Algorithm 1)", bounds=_upto(1000))
    steps: int = _f(18000, "generator updates (iterations of Algorithm 1)", bounds=_upto(MANY))
    max_time: float = _f(0.0, "also stop (with a checkpoint, samples and the report) once training "
                         "has taken this many seconds in all, resumed segments included (0 = no limit)",
                         bounds=_zero_or_more("no limit"))
    batch_size: int = _f(64, "samples per batch (m in Algorithm 1), for real and for fake; "
                         "under torchrun per process (global batch = processes x this)", bounds=_upto(65536))
    lr_g: float = _f(4e-4, "Adam learning rate of G (DCGAN's 2e-4 doubled: lower FID at 300 s, "
                     "docs/BENCHMARKS.md)", bounds=POSITIVE)
    lr_d: float = _f(4e-4, "Adam learning rate of D", bounds=POSITIVE)
    lr_decay_start: float = _f(1.0, "share of the steps after which both learning rates fall "
                               "linearly to zero at the last step (CycleGAN: 0.5; 1 = constant)",
                               bounds=Bounds(0, 1))
    beta1: float = _f(0.5, "Adam beta1 (0.5 as in DCGAN)", bounds=UNIT)
    beta2: float = _f(0.999, "Adam beta2", bounds=UNIT)
    ema: float = _f(0.999, "decay of an exponential moving average of G's weights, per step once "
                    "warmed up; samples and evaluation use the average (0 = off)", bounds=UNIT)
    ema_rampup: float = _f(0.05, "EMA warm-up (Karras et al. 2020): the average's half-life is at most "
                           "this share of the steps done, so a short run's samples show what G has "
                           "learned, not its first steps; reaches --ema's half-life (693 steps at "
                           "0.999) after half-life / this steps (0 = no warm-up)",
                           bounds=UNIT, absent=0.0)
    ema_half_life: float | None = _f(None, "the EMA's half-life in images (Karras et al. 2020; Huang et "
                                     "al. 2024), warmed up by --ema-rampup x the images seen; unset: "
                                     "--ema's decay per step", bounds=POSITIVE)
    schedule_images: int | None = _f(None, "images (G updates x the global batch) over which every value "
                                     "given an --*-end goes from its start to its end on a cosine "
                                     "(R3GAN's schedule, Huang et al. 2024), then stays; unset: no schedule",
                                     bounds=_upto(10**15))
    lr_g_end: float | None = _f(None, "--lr-g at the end of --schedule-images (unset: constant)",
                                bounds=_zero_or_more(""))
    lr_d_end: float | None = _f(None, "--lr-d at the end of --schedule-images (unset: constant)",
                                bounds=_zero_or_more(""))
    beta2_end: float | None = _f(None, "Adam's beta2 at the end of --schedule-images (unset: constant)",
                                 bounds=UNIT)
    ema_half_life_end: float | None = _f(None, "--ema-half-life at the end of --schedule-images (unset: "
                                         "constant)", bounds=POSITIVE)
    reuse_fake: bool = _f(True, "with --d-steps 1, G's step reuses the fake batch of D's step (one "
                          "forward of G less per iteration); off: fresh noise, as Algorithm 1 writes")
    compile: bool = _f(False, "torch.compile G and D (slower on CPU for DCGAN, see "
                       "docs/BENCHMARKS.md; try it on a GPU)")
    seed: int = _f(0, "random seed: same seed, same run (on CPU)", bounds=_upto(2**32 - 1, low=0))
    device: str = _f("auto", "auto | cpu | cuda | cuda:N (under torchrun: each rank's own GPU)",
                     pattern=Pattern(r"auto|cpu|cuda(:\d+)?|mps", "auto, cpu, cuda or cuda:N"))
    sync_bn: bool = _f(False, "under torchrun: batch-norm statistics over all ranks (SyncBatchNorm, GPUs)")
    precision: str = _f("auto", "auto | fp32 | bf16 | fp16: the arithmetic of G's and D's passes "
                        "(autocast; weights, Adam and the losses stay fp32). auto: bf16 for image "
                        "GANs where the hardware has native bf16 (Ampere+ GPUs; AVX512-BF16 or AMX CPUs "
                        "where a probe, once per machine, measures it 1.2x as fast as fp32: 1.5x the "
                        "steps and a lower FID at 300 s on 2 Zen 4 cores, docs/BENCHMARKS.md), else "
                        "fp32. fp16 adds a gradient scaler, for older GPUs",
                        choices=("auto", "fp32", "bf16", "fp16"))
    cudnn_benchmark: bool = _f(True, "on a GPU, let cuDNN time its convolution algorithms for each "
                               "shape and keep the fastest (runs are then not bit-exact)")


@dataclass
class RegConfig:
    """The cures for D's side of the game (each cites its paper in gankit.losses / gankit.models)."""

    gp: float = _f(0.0, "weight of the WGAN-GP gradient penalty on D (Gulrajani et al. 2017); "
                   "--loss wgan-gp uses 10 when this is left at 0", bounds=_zero_or_more())
    r1: float = _f(0.0, "gamma of the R1 penalty gamma/2 E||grad D(x)||^2 on real data "
                   "(Mescheder et al. 2018), e.g. 10 for images, 0.1 for 2-D points",
                   bounds=_zero_or_more())
    r2: float = _f(0.0, "gamma of the R2 penalty gamma/2 E||grad D(G(z))||^2 on generated data "
                   "(Mescheder et al. 2018; R3GAN, Huang et al. 2024, takes --r2 = --r1)",
                   bounds=_zero_or_more())
    r1_end: float | None = _f(None, "--r1 at the end of --schedule-images (unset: constant)",
                              bounds=_zero_or_more(""))
    r2_end: float | None = _f(None, "--r2 at the end of --schedule-images (unset: constant)",
                              bounds=_zero_or_more(""))
    clip: float = _f(0.0, "clip D's weights to [-c, c] after each update (WGAN, Arjovsky et al. "
                     "2017); --loss wgan uses 0.01 when this is left at 0", bounds=_zero_or_more())
    spectral_norm: bool = _f(False, "spectral normalisation of every layer of D (Miyato et al. 2018)")
    label_smoothing: float = _f(0.0, "one-sided label smoothing: real label 1 - s, e.g. 0.1 "
                                "(Salimans et al. 2016); minimax, nonsaturating, lsgan, ragan",
                                bounds=Bounds(0, 0.5, high_open=True))
    instance_noise: float = _f(0.0, "std of Gaussian noise added to D's inputs, real and fake, "
                               "annealed linearly to 0 at the last step (Sonderby et al. 2016)",
                               bounds=_zero_or_more())
    mbstd: bool = _f(False, "a minibatch standard-deviation feature before D's last layer "
                     "(Karras et al. 2018): D sees how varied the batch is")
    pack: int = _f(1, "PacGAN (Lin et al. 2018): D judges m samples at once, all real or all "
                   "fake; 1 = off. The batch size must be a multiple", bounds=_upto(1024))
    unrolled: int = _f(0, "unrolled GAN (Metz et al. 2017): G's update looks k steps into D's "
                       "future updates (first-order); 0 = off", bounds=_upto(100, low=0, zero="off"))
    diffaugment: str | None = _f(
        None, "DiffAugment (Zhao et al. 2020) for small image sets: the same random differentiable "
        "augmentation of real and fake before D, a comma list of color, translation, cutout "
        "(e.g. color,translation,cutout); unset: off",
        choices=("color", "translation", "cutout"), many=True,
    )
    ada: bool | None = _f(
        None, "adaptive discriminator augmentation (Karras et al. 2020): each op of --diffaugment "
        "(unset: translation,color,cutout) on each sample with a probability p steered by "
        "E[sign(D(x))] toward --ada-target; unset: on for a folder of fewer than 20,000 images",
        absent=False,
    )
    ada_target: float = _f(0.6, "ADA's target for r_t = E[sign(D(x))] on the real batches "
                           "(Karras et al. 2020's 0.6)", bounds=Bounds(0, 1, low_open=True, high_open=True))
    ada_kimg: float = _f(20.0, "ADA's speed: p can go from 0 to 1 in this many thousand real images "
                         "(the paper's 500 is for 25M-image runs)", bounds=Bounds(0, 10**6, low_open=True))
    ada_interval: int = _f(4, "adjust ADA's p every N iterations (Karras et al. 2020: 4)",
                           bounds=_upto(MANY))


@dataclass
class LogConfig:
    out: str | None = _f(None, "run directory (unset: runs/<data>-<model>)")
    log_every: int = _f(25, "write metrics.jsonl and refresh the progress bar every N steps",
                        bounds=_upto(MANY))
    sample_every: int = _f(250, "save a sample grid at the fixed latent vectors every N steps",
                           bounds=_upto(MANY))
    checkpoint_every: int = _f(500, "save a checkpoint every N steps (and at the end)", bounds=_upto(MANY))
    diagnose_every: int = _f(250, "measure the diversity (and mode or class coverage) of G's samples "
                             "every N steps for the failure diagnosis; 0 = off", bounds=_upto(MANY, low=0, zero="off"))
    keep: int = _f(3, "numbered checkpoints to keep, newest first (`last` names the newest)",
                   bounds=_upto(10**6))
    progress: bool = _f(True, "show the live progress bar")
    tensorboard: bool = _f(
        False, "also mirror metrics.jsonl, the sample grids and the warnings to TensorBoard "
        "event files in RUN_DIR/tensorboard (needs `pip install 'gankit[tensorboard]'`)"
    )


@dataclass
class EvalConfig:
    eval_every: int = _f(0, "evaluate G every N steps (0 = never); a table over steps in the report",
                         bounds=_upto(MANY, low=0, zero="never"))
    eval_metric: str | None = _f(
        None, "the number that picks the `best` checkpoint: fid, kid, precision, recall, density, "
        "coverage, is, modes, hq ... (unset: fid for images, modes for 2-D points)"
    )
    eval_n: int = _f(5000, "generated samples per evaluation during training", bounds=_upto(10**6))
    # The extractor's name is a registry's (gankit.metrics.FEATURES, checked by gankit.resolve);
    # the schema checks the shape NAME or NAME:ARGUMENT.
    eval_features: str = _f("fmnist", "fmnist | inception:PATH",
                            pattern=Pattern(r"[a-z0-9-]+(:.+)?", "fmnist or inception:PATH"))


@dataclass
class TranslateConfig:
    """Image translation (--model pix2pix, cyclegan or dtn): the weights of the reconstruction terms."""

    l1: float = _f(100.0, "pix2pix: weight lambda of the L1 loss ||B - G(A)||_1 beside the "
                   "adversarial loss (Isola et al. 2017, eq. 4: 100)", bounds=_zero_or_more())
    cycle: float = _f(10.0, "cyclegan: weight lambda of the cycle-consistency loss (Zhu et al. "
                      "2017, eq. 3: 10)", bounds=_zero_or_more())
    identity: float = _f(0.5, "cyclegan: weight of the identity loss as a share of --cycle "
                         "(Zhu et al. 2017, section 5.2: 0.5; 0 = off)", bounds=_zero_or_more())
    pool_size: int = _f(50, "cyclegan: D sees fakes drawn half from a history of this many "
                        "generated images (Shrivastava et al. 2017; 0 = off)", bounds=_upto(1000, low=0, zero="off"))
    partner: str | None = _f(None, "a second folder: with --data A_DIR, the B images (pix2pix: files "
                             "matching A's by name; cyclegan, dtn: the other, unpaired domain)",
                             canonical=_canonical_partner)
    const: float = _f(15.0, "dtn: weight alpha of the f-constancy loss ||f(x) - f(G(x))||^2 (Taigman et al. "
                      "2017: 15 for digits, 100 for faces)", bounds=_zero_or_more())
    tid: float = _f(15.0, "dtn: weight beta of the target-identity loss ||t - G(t)||^2 on target images "
                    "(Taigman et al. 2017: 15 for digits, 1 for faces)", bounds=_zero_or_more())
    tv: float = _f(0.0, "dtn: weight gamma of the total-variation loss on G(x) (Taigman et al. 2017: 0 for "
                   "digits, 0.05 for faces; 0 = off)", bounds=_zero_or_more())
    dtn_f: str = _f("fmnist", "dtn: the fixed feature function f: fmnist (the shipped Fashion-MNIST "
                    "classifier's 128-d features, learnt from photos only), fmnist-emoji (that classifier "
                    "fine-tuned on photos and labelled emoji, shipped: it reads both domains) or a "
                    "PATH.safetensors of that network's weights (bench/train_dtn_f.py trains one)")
    const_on: str = _f("features", "dtn: where f-constancy compares f(x) with f(G(x)): features (f's 128-d "
                       "penultimate layer, squared distance, as Taigman et al. 2017), logits (f's class "
                       "scores: only the class evidence must stay, the looks are free to become the "
                       "target's) or classes (cross-entropy of f's verdict on G(x) against its verdict on x, "
                       "Hoffman et al. 2018)", choices=("features", "logits", "classes"))
    d_cond: str = _f("none", "dtn: what D is told beside each image: none (the paper's three-way D) or f-class "
                     "(the class f reads: x's for G(x), t's for t and G(t), through a projection, Miyato & "
                     "Koyama 2018): D then judges whether an image is a real target of that class, so G(x) must "
                     "look like the target images of x's class, not only like target images",
                     choices=("none", "f-class"))
    fmnist_items: int = _f(0, "built-in translation tasks made from Fashion-MNIST (edges2fashion, day2night, "
                           "A2B class pairs, fashion2emoji's photos): train on the first N items of the "
                           "training split (of each class for a class pair); the test split stays whole "
                           "(0 = all)", bounds=_upto(10**6, low=0, zero="all"))


@dataclass
class TextConfig:
    """Text -> image (--model gan-int-cls, Reed et al. 2016): the text code and its extra losses."""

    cond_dim: int = _f(128, "gan-int-cls: size of the text code c that G sees beside z, drawn by "
                       "conditioning augmentation c = mu + sigma * eps from the caption's embedding "
                       "(Zhang et al. 2017)", bounds=_upto(4096))
    kl_weight: float = _f(1.0, "gan-int-cls: weight lambda of conditioning augmentation's "
                          "KL(N(mu, sigma^2) || N(0, I)) in G's loss, per dimension of c (StackGAN, "
                          "Zhang et al. 2017: 1; 0 = off)", bounds=_zero_or_more())
    int_weight: float = _f(1.0, "gan-int-cls: weight of GAN-INT's term: G also fools D on the "
                           "embeddings halfway between two captions (Reed et al. 2016; 0 = off)",
                           bounds=_zero_or_more())
    text_dims: int = _f(384, "gan-int-cls: principal directions of the training captions' embeddings "
                        "that G and D read (what a new wording adds outside them is dropped; "
                        "384 keeps them all)",
                        bounds=_upto(384))
    contrastive: float = _f(1.0, "gan-int-cls: weight of XMC-GAN's sentence-image contrastive term "
                            "(Zhang et al. 2021: 1): D learns a space where each image is nearest its own "
                            "caption among the batch's, and G's images must be so too (0 = off)",
                            bounds=_zero_or_more(), absent=0.0)
    g_fusion: str = _f("where", "gan-int-cls: where G reads the text code c: input (beside z only, Reed "
                       "et al. 2016); affine (there and in every batch norm's per-channel scale and shift, "
                       "as conditional batch norm, de Vries et al. 2017, and DF-GAN, Tao et al. 2022: the "
                       "caption says what to draw at every layer, wherever it is drawn); where (affine, "
                       "and G's first layer draws one patch of features, the what, and places it where "
                       "the caption says, after Reed, Akata, Mohan et al. 2016, Learning What and Where to Draw); "
                       "split (where, with the code split in two: the where reads c along --where-dims "
                       "learned directions, the rest of G reads c without them, to keep the place out of "
                       "what G draws: it does with --g-pad wrap, docs/BENCHMARKS.md)",
                       choices=("input", "affine", "where", "split"), absent="input")
    where_dims: int = _f(8, "gan-int-cls with --g-fusion split: directions of the text code c that the where "
                         "reads and the rest of G does not (under --cond-dim)", bounds=_upto(4095))
    split_decor: float = _f(0.0, "gan-int-cls with --g-fusion split: weight of a term of G's loss that "
                            "penalises the rest of the text code for telling the where's choice (their squared "
                            "correlation over the batch), so the place is read by the where alone (0 = off)",
                            bounds=_zero_or_more())
    where_patch: int = _f(5, "gan-int-cls with --g-fusion where or split: the side of the patch of features "
                          "the what draws on G's first map (6x6 for 48 px), placed by the where; odd. A "
                          "patch nearly as large as the map can move the item itself, so the what learns "
                          "the place too", bounds=_upto(15))
    g_pad: str = _f("zero", "gan-int-cls with a fused G (--g-fusion affine, where or split): how G's "
                    "upsampling layers see the edges of their maps: zero (padding, DCGAN's: a feature "
                    "near an edge can tell where it is) or wrap (each map a torus: the layers are the "
                    "same at every place, so only the where can place the item)",
                    choices=("zero", "wrap"), absent="zero")
    mode_seeking: float = _f(0.0, "gan-int-cls: weight of MSGAN's mode-seeking term (Mao et al. 2019: 1): G "
                             "draws half the batch again from other noise z with the same caption and code, "
                             "and is asked to draw them apart, 1 / (mean |G(z1) - G(z2)| / mean |z1 - z2|), "
                             "against a G that draws one image per caption whatever z (0 = off; the "
                             "captioned-fashion preset: 0.03)",
                             bounds=_zero_or_more())
    unknown_words: str = _f("nearest", "gan-int-cls: a caption given to G (gankit sample --text, the held-out "
                            "wordings' scores) with words no training caption used: rewrite: each such word "
                            "becomes the training word, or nothing, that keeps the caption's embedding "
                            "closest (gankit.data.vocabulary); nearest: that, then the training caption "
                            "nearest it; keep: as it is", choices=("rewrite", "nearest", "keep"),
                            absent="keep")
    caption_items: int = _f(60000, "--data captioned-fashion: items in its training split "
                            "(Fashion-MNIST's 60,000 training images, reused beyond)", bounds=_upto(10**6))


@dataclass
class NextFrameConfig:
    """Next-frame prediction (--model nextframe, Mathieu, Couprie & LeCun 2016): frames in and out,
    and the weights of G's loss terms."""

    context: int | None = _f(None, "nextframe: frames G sees to predict the next one (unset: the data's, "
                             "10 for mfmnist, 4 for mfmnist-small and folders)", bounds=_upto(64))
    horizon: int | None = _f(None, "nextframe: frames predicted (G rolled out on its own predictions) when "
                             "scored and shown (unset: the data's, 10 for mfmnist, 1 for mfmnist-small and "
                             "folders)", bounds=_upto(256))
    lp: int = _f(1, "nextframe: the p of the L_p loss ||Y - G(X)||_p^p (Mathieu et al. 2016: 1 in their "
                 "best model; 2 = the MSE)", choices=(1, 2))
    lp_weight: float = _f(1.0, "nextframe: weight lambda_lp of the L_p loss (Mathieu et al. 2016: 1)",
                          bounds=_zero_or_more())
    gdl_weight: float = _f(1.0, "nextframe: weight lambda_gdl of the gradient difference loss (Mathieu et "
                           "al. 2016, eq. 5: 1; 0 = off)", bounds=_zero_or_more())
    adv_weight: float = _f(0.05, "nextframe: weight lambda_adv of the adversarial loss in G's (Mathieu et "
                           "al. 2016: 0.05; 0 = no D: a plain L_p (+ GDL) regression)", bounds=_zero_or_more())
    rollout: int = _f(1, "nextframe: frames G predicts per training clip, each from the last context frames, "
                      "its own predictions included, gradients through them all (1 = the paper's one-step "
                      "training; more trains G on the inputs it meets when rolled out, as Bengio et al. 2015's "
                      "scheduled sampling does in full)", bounds=_upto(64), absent=1)
    rollout_from: int | None = _f(None, "nextframe: a curriculum: train one frame ahead until this step, then "
                                  "on rollouts of nextframe.rollout frames (unset: rollouts from the start); "
                                  "the same as training to this step and resuming with --rollout, in one run",
                                  bounds=_upto(MANY))
    frame_g: str = _f("draw", "nextframe: G's output at each scale: draw (the frame itself, Mathieu et al. "
                      "2016) or flow (it moves the last frame's pixels by a flow, at most 8 pixels of 64, and draws "
                      "only what they do not show, blending the two by a mask, as Liang et al. 2017's dual-motion "
                      "GAN; it starts as copy-last)",
                      choices=("draw", "flow"), absent="draw")
    sequences: int = _f(0, "--data mfmnist, mfmnist-small: training sequences, the first of the set "
                        "(0 = all: 10,000 for mfmnist as OpenSTL's, 2,000 for mfmnist-small)",
                        bounds=_upto(10**6, low=0, zero="all"))


@dataclass
class ViewsConfig:
    """Novel-view synthesis (--model novel-view): the weights of G's two losses."""

    view_l1: float = _f(100.0, "novel-view: weight lambda of the L1 loss ||target - G(source, angles)||_1 beside "
                        "the adversarial loss (as pix2pix, Isola et al. 2017, eq. 4: 100)",
                        bounds=_zero_or_more(), absent=100.0)
    view_adv: float = _f(0.1, "novel-view: weight of the adversarial loss in G's loss (pix2pix's is 1; 0.1 "
                         "measured best with the flow G: the GAN's views then tie the L1-only twin's in SSIM "
                         "and beat them in angle and identity; 0 = the L1-only twin: D still trains and is "
                         "scored, G ignores it)", bounds=_zero_or_more(), absent=1.0)
    view_g: str = _f("flow", "novel-view: G's output: flow (the U-Net moves the source's pixels by an "
                     "appearance flow, Zhou et al. 2016, draws what the source hides, and blends the two by a "
                     "mask) or unet (it draws the whole view)", choices=("flow", "unet"), absent="unet")


SECTIONS: dict[str, type] = {
    "data": DataConfig, "model": ModelConfig, "train": TrainConfig, "reg": RegConfig,
    "log": LogConfig, "eval": EvalConfig, "translate": TranslateConfig, "text": TextConfig,
    "nextframe": NextFrameConfig,
    "views": ViewsConfig,
}


# --------------------------------------------------------------------------- provenance


@dataclass
class Provenance:
    """Where a config's values came from: the dotted keys the user set (in a YAML file, on the
    command line or as keyword arguments), and the keys the library settled, each with why."""

    user_set: list[str] = field(default_factory=list)
    resolved: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The ``provenance:`` mapping of a run's config.yaml."""
        return {"set_by_user": list(self.user_set), "resolved": dict(self.resolved)}


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    reg: RegConfig = field(default_factory=RegConfig)
    log: LogConfig = field(default_factory=LogConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    translate: TranslateConfig = field(default_factory=TranslateConfig)
    text: TextConfig = field(default_factory=TextConfig)
    nextframe: NextFrameConfig = field(default_factory=NextFrameConfig)
    views: ViewsConfig = field(default_factory=ViewsConfig)
    # Not part of what the run is: two configs with the same settings are equal whatever their
    # history, and checkpoints (to_dict) do not carry it.
    provenance: Provenance = field(default_factory=Provenance, compare=False)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """The settings, section by section (what a checkpoint's metadata keeps)."""
        return {name: asdict(getattr(self, name)) for name in SECTIONS}

    def to_yaml(self) -> str:
        """A run's config.yaml: the sections, then ``provenance:`` (who set what, and why)."""
        import yaml  # here, not at the top: the schema itself loads with the standard library alone

        return yaml.safe_dump({**self.to_dict(), "provenance": self.provenance.to_dict()},
                              sort_keys=False)

    def get(self, key: str) -> Any:
        """The value of a dotted key such as ``train.lr_g``."""
        opt = _option(key)
        return getattr(getattr(self, opt.section), opt.name)

    def set_user(self, key: str, value: Any) -> None:
        """Set a dotted key to a value the user gave, and record that the user set it."""
        opt = _option(key)
        setattr(getattr(self, opt.section), opt.name, value)
        if key not in self.provenance.user_set:
            self.provenance.user_set.append(key)

    def resolve_value(self, key: str, value: Any, why: str) -> None:
        """Set a dotted key to a value the library settled, recording why (e.g.
        ``cfg.resolve_value("data.image_size", "28", "from the data")``)."""
        opt = _option(key)
        if not (value is None and opt.optional) and not type_ok(opt.type, value):
            raise GankitError(f"{key} must be {type_name(opt.type)}, got {short_repr(value)}")
        setattr(getattr(self, opt.section), opt.name, value)
        self.provenance.resolved[key] = why


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class Option:
    """One config field as the CLI and YAML see it."""

    section: str
    name: str  # field name in the section
    key: str  # flat key / flag name with underscores, e.g. "lr_g", "data"
    type: type  # the base type: int for ``int | None``
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None
    optional: bool = False  # typed ``X | None``: None = unset
    many: bool = False  # a comma list of ``choices``
    pattern: Pattern | None = None
    bounds: Bounds | None = None
    canonical: Callable[[Any], Any] | None = None
    # What a saved config without this key means (``_f``'s ``absent``), as a 1-tuple; () = the default.
    absent: tuple[Any, ...] = ()

    @property
    def flag(self) -> str:
        return "--" + self.key.replace("_", "-")

    @property
    def dotted(self) -> str:
        return f"{self.section}.{self.name}"


def _base_type(hint: Any) -> tuple[type, bool]:
    """``int`` -> (int, False); ``int | None`` -> (int, True)."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        assert len(args) == 1, f"a config field is one type or one type | None, not {hint}"
        return args[0], True
    return hint, False


def options() -> list[Option]:
    """Every config field, in declaration order."""
    return list(_options())


@functools.cache
def _options() -> tuple[Option, ...]:
    out = []
    for section, cls in SECTIONS.items():
        hints = typing.get_type_hints(cls)
        for f in fields(cls):
            default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
            base, optional = _base_type(hints[f.name])
            m = f.metadata
            out.append(Option(
                section, f.name, m.get("flag") or f.name, base, default, m.get("help", ""),
                m.get("choices"), optional, m.get("many", False), m.get("pattern"), m.get("bounds"),
                m.get("canonical"), () if m.get("absent", MISSING) is MISSING else (m["absent"],),
            ))
    return tuple(out)


def options_by_key() -> dict[str, Option]:
    """Every config field by its flat key (the flag's name with underscores)."""
    opts = options()
    by_key = {o.key: o for o in opts}
    assert len(by_key) == len(opts), "two config fields share a flag name"
    return by_key


def options_by_dotted() -> dict[str, Option]:
    """Every config field by its dotted key (``train.lr_g``)."""
    return {o.dotted: o for o in options()}


def _option(key: str) -> Option:
    try:
        return options_by_dotted()[key]
    except KeyError:
        raise GankitError(f"unknown config key {short_repr(key)}; keys are section.name, e.g. train.lr_g") from None


# --------------------------------------------------------------------------- checks


def type_name(t: type) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(t, str(t))


def type_ok(t: type, value: Any) -> bool:
    """Whether ``value`` is of type ``t`` (bools are not integers; floats take ints)."""
    if t is bool:
        return isinstance(value, bool)
    if t is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if t is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, t)


def _check_choices(opt: Option, value: Any) -> Any:
    """The value, canonical (a comma list without blanks); an error naming the choices."""
    choices = opt.choices or ()
    if opt.many:
        parts = [p.strip() for p in value.split(",") if p.strip()]
        if not parts or any(p not in choices for p in parts):
            raise GankitError(f"{opt.dotted} {short_repr(value)}: use a comma list of {', '.join(choices)}")
        return ",".join(parts)
    if value not in choices:
        raise GankitError(f"{opt.dotted} must be one of {', '.join(map(str, choices))}, got {short_repr(value)}")
    return value


def _check_field(opt: Option, value: Any) -> Any:
    """Check one field's value against its declaration; return it in canonical form."""
    if value is None:
        if not opt.optional:
            raise GankitError(f"{opt.dotted} must be set (it is {type_name(opt.type)})")
        return None
    if not type_ok(opt.type, value):
        raise GankitError(f"{opt.dotted} must be {type_name(opt.type)}, got {short_repr(value)} "
                          f"({type(value).__name__})")
    if opt.type is float and not _finite(value):
        raise GankitError(f"{opt.dotted} must be a finite number, got {short_repr(value)}")
    if opt.type is str:
        if len(value) > MAX_TEXT:
            raise GankitError(f"{opt.dotted} is {len(value)} characters long, over the limit of "
                              f"{MAX_TEXT}: {short_repr(value)}")
        if "\0" in value:
            raise GankitError(f"{opt.dotted} must not hold a NUL character, got {short_repr(value)}")
    if opt.choices:
        value = _check_choices(opt, value)
    if opt.pattern and not re.fullmatch(opt.pattern.regex, value):
        raise GankitError(f"{opt.dotted} must be {opt.pattern.describe}, got {short_repr(value)}")
    if opt.bounds and not opt.bounds.holds(value):
        raise GankitError(f"{opt.dotted} must be {opt.bounds.describe(value)}, got {short_repr(value)}")
    return opt.canonical(value) if opt.canonical else value


def _finite(value: float) -> bool:
    """Whether a number is finite (an int too large for a float is not)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def validate(cfg: Config) -> Config:
    """Check every field's type, range, choices and shape, and the combinations that need no
    registry; put values in canonical form (``image_size`` ``" 32 X 16 "`` -> ``"32x16"``). Raise
    GankitError naming the key. The rules that need the registries are ``gankit.resolve``'s."""
    for opt in options():
        section = getattr(cfg, opt.section)
        setattr(section, opt.name, _check_field(opt, getattr(section, opt.name)))
    t, r = cfg.train, cfg.reg
    if t.batch_size % r.pack:
        raise GankitError(f"train.batch_size ({t.batch_size}) must be a multiple of reg.pack ({r.pack})")
    if t.precision == "fp16" and (r.r1 or r.r1_end or r.r2 or r.r2_end or r.gp):
        raise GankitError("train.precision=fp16 cannot take the R1, R2 or gradient penalty (reg.r1, reg.r2, "
                          "reg.gp): "
                          "their input gradients would underflow in fp16 without a scaler of their "
                          "own; use train.precision=bf16, which has fp32's range")
    _check_schedule(cfg)
    x = cfg.text
    if x.where_patch % 2 == 0:
        raise GankitError(f"text.where_patch ({x.where_patch}) must be odd: the patch is centred on the place "
                          "the where puts it")
    if x.g_pad != "zero" and x.g_fusion == "input":
        raise GankitError(f"text.g_pad ({x.g_pad}) needs a fused G (text.g_fusion affine, where or split), "
                          "not input: the input fusion is DCGAN's own generator")
    if x.split_decor > 0 and x.g_fusion != "split":
        raise GankitError(f"text.split_decor ({x.split_decor}) needs text.g_fusion=split (the code split "
                          f"between the where and the rest of G), not {x.g_fusion}")
    if x.g_fusion == "split" and x.where_dims >= x.cond_dim:
        raise GankitError(f"text.where_dims ({x.where_dims}) must be under text.cond_dim ({x.cond_dim}): the "
                          "where reads that many of the code's directions and the rest of G the others")
    nf = cfg.nextframe
    if nf.rollout_from is not None and nf.rollout == 1:
        raise GankitError(f"nextframe.rollout_from ({nf.rollout_from}) is the step training switches to rollouts "
                          "of nextframe.rollout frames, but nextframe.rollout is 1: set it to 2 or more, or "
                          "leave rollout_from out")
    return cfg


def _check_schedule(cfg: Config) -> None:
    """The schedule's end values need ``train.schedule_images``; a half-life needs the EMA on."""
    t, r = cfg.train, cfg.reg
    ends = {"train.lr_g_end": t.lr_g_end, "train.lr_d_end": t.lr_d_end, "train.beta2_end": t.beta2_end,
            "train.ema_half_life_end": t.ema_half_life_end, "reg.r1_end": r.r1_end, "reg.r2_end": r.r2_end}
    given = [k for k, v in ends.items() if v is not None]
    if given and t.schedule_images is None:
        raise GankitError(f"{given[0]} is the value at the end of the schedule: set train.schedule_images "
                          "(the images it takes), or leave it out")
    if t.ema_half_life_end is not None and t.ema_half_life is None:
        raise GankitError("train.ema_half_life_end needs train.ema_half_life, the half-life it starts from")
    if t.ema_half_life is not None and t.ema == 0:
        raise GankitError("train.ema_half_life sets the half-life of the moving average of G, but train.ema "
                          "is 0 (no average: turned off, or this model keeps none); leave it out")


__all__ = [
    "MAX_SIDE", "MAX_TEXT", "SECTIONS", "Bounds", "Config", "DataConfig", "EvalConfig", "LogConfig",
    "ModelConfig", "Option", "Pattern", "Provenance", "RegConfig", "TextConfig", "TrainConfig",
    "TranslateConfig",
    "options", "options_by_dotted", "options_by_key", "parse_image_size", "type_name", "type_ok",
    "validate",
]
