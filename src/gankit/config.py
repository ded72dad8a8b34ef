"""The run configuration: typed dataclasses, the one source of defaults.

A config is built from defaults, then a YAML file (``--config``), then command-line flags, each
layer overriding the one before. Every field has exactly one flag, derived from its name
(``train.lr_g`` -> ``--lr-g``) unless the field names another (``data.source`` -> ``--data``), and
the same name works as a flat key in YAML. A YAML file may be flat (``lr_g: 0.001``) or grouped by
section (``train: {lr_g: 0.001}``). Unknown keys and wrong types are errors that name the key and
the file. The resolved config is saved as ``config.yaml`` in every run directory.
"""

from __future__ import annotations

import difflib
import os
import re
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from gankit.errors import GankitError
from gankit.losses import LOSSES
from gankit.models import CONDITIONINGS, MODELS
from gankit.models.translators import TRANSLATOR_LOSSES, TRANSLATORS


def _f(default: Any, help: str, flag: str | None = None, choices: tuple[str, ...] | None = None) -> Any:
    return field(default=default, metadata={"help": help, "flag": flag, "choices": choices})


@dataclass
class DataConfig:
    source: str = _f(
        "fashion-mnist",
        "a dataset (ring, grid, fashion-mnist, stacked-fashion-mnist: see `gankit list`) "
        "or a PATH to a folder of images (searched recursively)",
        flag="data",
    )
    image_size: str = _f(
        "",
        "N or HxW; images are resized to cover it and centre-cropped. "
        "Default: 28 for fashion-mnist, 64 for a folder",
    )
    channels: int = _f(0, "1 (gray) or 3 (RGB); 0 = 1 for fashion-mnist and all-gray folders, else 3")
    data_root: str = _f(
        "", "folder holding Fashion-MNIST's IDX files "
        "(default: $GANKIT_FASHION_MNIST or /usr/share/datasets/fashion-mnist)"
    )
    cache_dir: str = _f("", "cache for decoded folders (default: $GANKIT_CACHE or ~/.cache/gankit)")
    workers: int = _f(0, "processes decoding a folder of images; 0 = one per core")

    def size(self) -> tuple[int, int] | None:
        """(H, W) from ``image_size``, or None for the dataset's default."""
        return parse_image_size(self.image_size) if self.image_size else None


@dataclass
class ModelConfig:
    arch: str = _f("dcgan", "architecture of G and D (see `gankit list`)", flag="model")
    latent_dim: int = _f(100, "size of the latent vector z")
    prior: str = _f("normal", "distribution of z: N(0, I) or U(-1, 1)", choices=("normal", "uniform"))
    width: int = _f(0, "base width (channels or hidden units); 0 = the architecture's default")
    conditional: str = _f("", "class-conditional G(z, y) and D on labelled data (Fashion-MNIST, or a "
                          "folder whose subfolders are the classes): cgan (Mirza & Osindero 2014), "
                          "acgan (Odena et al. 2017) or projection (Miyato & Koyama 2018); '' = off")
    embed_dim: int = _f(0, "size of the label embedding G sees beside z (0 = the number of classes)")
    acgan_weight: float = _f(1.0, "with --conditional acgan: weight of the auxiliary classifier's "
                             "cross-entropy in both players' losses")


@dataclass
class TrainConfig:
    loss: str = _f(
        "nonsaturating", "minimax: G descends log(1 - D(G(z))); nonsaturating: G ascends log D(G(z))",
    )
    d_steps: int = _f(1, "K: discriminator updates per generator update (Algorithm 1)")
    steps: int = _f(18000, "generator updates (iterations of Algorithm 1)")
    max_time: float = _f(0.0, "also stop (with a checkpoint, samples and the report) once training "
                         "has taken this many seconds in all, resumed segments included (0 = no limit)")
    batch_size: int = _f(64, "samples per batch (m in Algorithm 1), for real and for fake; "
                         "under torchrun per process (global batch = processes x this)")
    lr_g: float = _f(4e-4, "Adam learning rate of G (DCGAN's 2e-4 doubled: lower FID at 300 s, "
                     "docs/BENCHMARKS.md)")
    lr_d: float = _f(4e-4, "Adam learning rate of D")
    lr_decay_start: float = _f(1.0, "share of the steps after which both learning rates fall "
                               "linearly to zero at the last step (CycleGAN: 0.5; 1 = constant)")
    beta1: float = _f(0.5, "Adam beta1 (0.5 as in DCGAN)")
    beta2: float = _f(0.999, "Adam beta2")
    ema: float = _f(0.999, "decay of an exponential moving average of G's weights; samples and "
                    "evaluation use the average (0 = off)")
    reuse_fake: bool = _f(True, "with --d-steps 1, G's step reuses the fake batch of D's step (one "
                          "forward of G less per iteration); off: fresh noise, as Algorithm 1 writes")
    compile: bool = _f(False, "torch.compile G and D (slower on CPU for DCGAN, see "
                       "docs/BENCHMARKS.md; try it on a GPU)")
    seed: int = _f(0, "random seed: same seed, same run (on CPU)")
    device: str = _f("auto", "auto | cpu | cuda | cuda:N (under torchrun: each rank's own GPU)")
    sync_bn: bool = _f(False, "under torchrun: batch-norm statistics over all ranks (SyncBatchNorm, GPUs)")
    precision: str = _f("auto", "auto | fp32 | bf16 | fp16: the arithmetic of G's and D's passes "
                        "(autocast; weights, Adam and the losses stay fp32). auto: bf16 for image "
                        "GANs where the hardware has native bf16 (AVX512-BF16 or AMX CPUs, Ampere+ "
                        "GPUs; 1.5x the steps and a lower FID at 300 s on 2 CPU cores, "
                        "docs/BENCHMARKS.md), else fp32. fp16 adds a gradient scaler, for older GPUs")
    cudnn_benchmark: bool = _f(True, "on a GPU, let cuDNN time its convolution algorithms for each "
                               "shape and keep the fastest (runs are then not bit-exact)")


@dataclass
class RegConfig:
    """The cures for D's side of the game (each cites its paper in gankit.losses / gankit.models)."""

    gp: float = _f(0.0, "weight of the WGAN-GP gradient penalty on D (Gulrajani et al. 2017); "
                   "--loss wgan-gp uses 10 when this is left at 0")
    r1: float = _f(0.0, "gamma of the R1 penalty gamma/2 E||grad D(x)||^2 on real data "
                   "(Mescheder et al. 2018), e.g. 10 for images, 0.1 for 2-D points")
    clip: float = _f(0.0, "clip D's weights to [-c, c] after each update (WGAN, Arjovsky et al. "
                     "2017); --loss wgan uses 0.01 when this is left at 0")
    spectral_norm: bool = _f(False, "spectral normalisation of every layer of D (Miyato et al. 2018)")
    label_smoothing: float = _f(0.0, "one-sided label smoothing: real label 1 - s, e.g. 0.1 "
                                "(Salimans et al. 2016); minimax, nonsaturating, lsgan, ragan")
    instance_noise: float = _f(0.0, "std of Gaussian noise added to D's inputs, real and fake, "
                               "annealed linearly to 0 at the last step (Sonderby et al. 2016)")
    mbstd: bool = _f(False, "a minibatch standard-deviation feature before D's last layer "
                     "(Karras et al. 2018): D sees how varied the batch is")
    pack: int = _f(1, "PacGAN (Lin et al. 2018): D judges m samples at once, all real or all "
                   "fake; 1 = off. The batch size must be a multiple")
    unrolled: int = _f(0, "unrolled GAN (Metz et al. 2017): G's update looks k steps into D's "
                       "future updates (first-order); 0 = off")
    diffaugment: str = _f("", "DiffAugment (Zhao et al. 2020) for small image sets: the same "
                          "random differentiable augmentation of real and fake before D, a comma "
                          "list of color, translation, cutout (e.g. color,translation,cutout)")


@dataclass
class LogConfig:
    out: str = _f("", "run directory (default: runs/<data>-<model>)")
    log_every: int = _f(25, "write metrics.jsonl and refresh the progress bar every N steps")
    sample_every: int = _f(250, "save a sample grid at the fixed latent vectors every N steps")
    checkpoint_every: int = _f(500, "save a checkpoint every N steps (and at the end)")
    diagnose_every: int = _f(250, "measure the diversity (and mode or class coverage) of G's samples "
                             "every N steps for the failure diagnosis; 0 = off")
    keep: int = _f(3, "numbered checkpoints to keep, newest first (`last` names the newest)")
    progress: bool = _f(True, "show the live progress bar")
    tensorboard: bool = _f(
        False, "also mirror metrics.jsonl to TensorBoard event files in RUN_DIR/tensorboard "
        "(needs `pip install 'gankit[tensorboard]'`)"
    )


@dataclass
class EvalConfig:
    eval_every: int = _f(0, "evaluate G every N steps (0 = never); plotted in the report")
    eval_metric: str = _f(
        "", "the number that picks the `best` checkpoint: fid, kid, precision, recall, density, "
        "coverage, is, modes, hq ... (default: fid for images, modes for 2-D points)"
    )
    eval_n: int = _f(5000, "generated samples per evaluation during training")
    eval_features: str = _f("fmnist", "fmnist | inception:PATH")


@dataclass
class TranslateConfig:
    """Image translation (--model pix2pix or cyclegan): the weights of the reconstruction terms."""

    l1: float = _f(100.0, "pix2pix: weight lambda of the L1 loss ||B - G(A)||_1 beside the "
                   "adversarial loss (Isola et al. 2017, eq. 4: 100)")
    cycle: float = _f(10.0, "cyclegan: weight lambda of the cycle-consistency loss (Zhu et al. "
                      "2017, eq. 3: 10)")
    identity: float = _f(0.5, "cyclegan: weight of the identity loss as a share of --cycle "
                         "(Zhu et al. 2017, section 5.2: 0.5; 0 = off)")
    pool_size: int = _f(50, "cyclegan: D sees fakes drawn half from a history of this many "
                        "generated images (Shrivastava et al. 2017; 0 = off)")
    partner: str = _f("", "a second folder: with --data A_DIR, the B images (pix2pix: files "
                      "matching A's by name; cyclegan: the other, unpaired domain)")


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    reg: RegConfig = field(default_factory=RegConfig)
    log: LogConfig = field(default_factory=LogConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    translate: TranslateConfig = field(default_factory=TranslateConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


_SECTION_CLASSES = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "reg": RegConfig,
                    "log": LogConfig, "eval": EvalConfig, "translate": TranslateConfig}


@dataclass(frozen=True)
class Option:
    """One config field as the CLI and YAML see it."""

    section: str
    name: str  # field name in the section
    key: str  # flat key / flag name with underscores, e.g. "lr_g", "data"
    type: type
    default: Any
    help: str
    choices: tuple[str, ...] | None

    @property
    def flag(self) -> str:
        return "--" + self.key.replace("_", "-")

    @property
    def dotted(self) -> str:
        return f"{self.section}.{self.name}"


def options() -> list[Option]:
    """Every config field, in declaration order."""
    out = []
    for section, cls in _SECTION_CLASSES.items():
        hints = typing.get_type_hints(cls)
        for f in fields(cls):
            default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
            out.append(Option(
                section, f.name, f.metadata.get("flag") or f.name, hints[f.name], default,
                f.metadata.get("help", ""), f.metadata.get("choices"),
            ))
    return out


def options_by_key() -> dict[str, Option]:
    """Every config field by its flat key (the flag's name with underscores)."""
    opts = options()
    by_key = {o.key: o for o in opts}
    assert len(by_key) == len(opts), "two config fields share a flag name"
    return by_key


# --------------------------------------------------------------------------- values and types

_SIZE = re.compile(r"^\s*(\d+)\s*(?:[xX]\s*(\d+)\s*)?$")


def parse_image_size(value: str | int) -> tuple[int, int]:
    """``28`` -> (28, 28); ``"48x64"`` -> (48, 64) as (H, W)."""
    m = _SIZE.match(str(value))
    if not m:
        raise GankitError(f"image_size {value!r} is not N or HxW (e.g. 64 or 48x64)")
    h = int(m.group(1))
    w = int(m.group(2)) if m.group(2) else h
    if not (4 <= h <= 4096 and 4 <= w <= 4096):
        raise GankitError(f"image_size {value!r} is out of range: each side must be 4..4096 pixels")
    return h, w


def _type_name(t: type) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(t, str(t))


def coerce(opt: Option, value: Any, where: str) -> Any:
    """Check a YAML value against the field's type; ints are accepted for floats, and
    numbers for ``image_size``. Anything else of the wrong type is an error naming the key."""
    t = opt.type
    if opt.name == "image_size" and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    ok = (
        isinstance(value, bool) if t is bool
        else isinstance(value, int) and not isinstance(value, bool) if t is int
        else isinstance(value, int | float) and not isinstance(value, bool) if t is float
        else isinstance(value, str) if t is str
        else False
    )
    if not ok:
        raise GankitError(
            f"{where}: {opt.dotted} must be {_type_name(t)}, got {value!r} ({type(value).__name__})"
        )
    return float(value) if t is float else value


def parse_cli_value(opt: Option, text: str) -> Any:
    """Convert a flag's text to the field's type (argparse's ``type=``)."""
    try:
        if opt.type is int:
            return int(text)
        if opt.type is float:
            return float(text)
    except ValueError:
        raise GankitError(f"{opt.flag} must be {_type_name(opt.type)}, got {text!r}") from None
    return text


# --------------------------------------------------------------------------- building a config


def _unknown(key: str, known: list[str], where: str) -> GankitError:
    near = difflib.get_close_matches(key, known, n=3)
    hint = f"; did you mean {' or '.join(near)}?" if near else f"; known keys: {', '.join(known)}"
    return GankitError(f"{where}: unknown config key {key!r}{hint}")


def apply_mapping(cfg: Config, mapping: dict[str, Any], where: str) -> Config:
    """Apply a YAML mapping (flat keys, sections, or both) onto ``cfg`` in place."""
    by_key = options_by_key()
    for key, value in mapping.items():
        if not isinstance(key, str):
            raise GankitError(f"{where}: config keys must be strings, got {key!r}")
        if key in _SECTION_CLASSES and isinstance(value, dict):
            section = getattr(cfg, key)
            names = [f.name for f in fields(section)]
            for sub, v in value.items():
                opt = next((o for o in by_key.values() if o.section == key and o.name == sub), None)
                if opt is None:
                    raise _unknown(f"{key}.{sub}", [f"{key}.{n}" for n in names], where)
                setattr(section, sub, coerce(opt, v, where))
        elif key in by_key:
            opt = by_key[key]
            setattr(getattr(cfg, opt.section), opt.name, coerce(opt, value, where))
        else:
            raise _unknown(key, sorted(by_key) + list(_SECTION_CLASSES), where)
    return cfg


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML mapping, turning every I/O or syntax problem into a clear error."""
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise GankitError(f"config file {p} does not exist") from None
    except OSError as e:
        raise GankitError(f"cannot read config file {p}: {e.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise GankitError(f"config file {p} is not valid YAML{at}: {getattr(e, 'problem', e)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise GankitError(f"config file {p} must hold a mapping of keys to values, not {type(data).__name__}")
    return data


def validate(cfg: Config) -> Config:
    """Check ranges and choices; raise GankitError naming the key."""
    for opt in options():
        value = getattr(getattr(cfg, opt.section), opt.name)
        if opt.choices and value not in opt.choices:
            raise GankitError(f"{opt.dotted} (--{opt.key.replace('_', '-')}) must be one of "
                              f"{', '.join(opt.choices)}, got {value!r}")
    t, m, lg, d = cfg.train, cfg.model, cfg.log, cfg.data
    # The registries are the one catalogue of names: get() names the choices on a miss.
    if m.arch not in TRANSLATORS and m.arch not in MODELS:
        raise GankitError(f"unknown model {m.arch!r}; choose one of: "
                          f"{', '.join(MODELS.names() + TRANSLATORS.names())}")
    _validate_translate(cfg)
    LOSSES.get(t.loss)
    positive = {
        "train.steps": t.steps, "train.batch_size": t.batch_size, "train.d_steps": t.d_steps,
        "model.latent_dim": m.latent_dim, "log.log_every": lg.log_every,
        "log.sample_every": lg.sample_every, "log.checkpoint_every": lg.checkpoint_every,
        "log.keep": lg.keep, "eval.eval_n": cfg.eval.eval_n,
    }
    for k, v in positive.items():
        if v < 1:
            raise GankitError(f"{k} must be at least 1, got {v}")
    for k, v in {"train.lr_g": t.lr_g, "train.lr_d": t.lr_d}.items():
        if not v > 0:
            raise GankitError(f"{k} must be positive, got {v}")
    if not 0 <= t.lr_decay_start <= 1:
        raise GankitError(f"train.lr_decay_start must be in [0, 1], got {t.lr_decay_start}")
    for k, v in {"train.beta1": t.beta1, "train.beta2": t.beta2, "train.ema": t.ema}.items():
        if not 0 <= v < 1:
            raise GankitError(f"{k} must be in [0, 1), got {v}")
    if d.channels not in (0, 1, 3):
        raise GankitError(f"data.channels must be 0 (auto), 1 or 3, got {d.channels}")
    _validate_reg(cfg)
    _validate_conditional(cfg)
    if t.max_time < 0:
        raise GankitError(f"train.max_time must be 0 (no limit) or positive seconds, got {t.max_time}")
    if lg.diagnose_every < 0:
        raise GankitError(f"log.diagnose_every must be 0 (off) or positive, got {lg.diagnose_every}")
    if cfg.eval.eval_every < 0:
        raise GankitError(f"eval.eval_every must be 0 (never) or positive, got {cfg.eval.eval_every}")
    if cfg.eval.eval_metric:
        from gankit.metrics.evaluate import higher_is_better

        higher_is_better(cfg.eval.eval_metric)  # names the known keys if it is not one
    if m.width < 0 or d.workers < 0:
        raise GankitError("model.width and data.workers must be 0 (default) or positive")
    if d.image_size:
        d.image_size = "{}x{}".format(*parse_image_size(d.image_size)) if "x" in d.image_size.lower() \
            else str(parse_image_size(d.image_size)[0])
    if t.precision not in PRECISIONS:
        raise GankitError(f"train.precision must be one of {', '.join(PRECISIONS)}, got {t.precision!r}")
    if t.precision == "fp16" and (cfg.reg.r1 or cfg.reg.gp):
        raise GankitError("--precision fp16 cannot take the R1 or gradient penalty (their input "
                          "gradients would underflow in fp16 without a scaler of their own); use "
                          "--precision bf16, which has fp32's range")
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", t.device):
        raise GankitError(f"train.device must be auto, cpu, cuda or cuda:N, got {t.device!r}")
    return cfg


DIFFAUGMENT_POLICIES = ("color", "translation", "cutout")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def _gan_only() -> dict[str, str]:
    """What a translator has no use for (section.field -> why): the latent prior and every other
    GAN model option, Algorithm 1's knobs, D's cures, evaluation during training. Left at their
    defaults, or it is an error."""
    model = {f"model.{f.name}": "a translator has no z or class input: the image is G's input"
             for f in fields(ModelConfig) if f.name not in ("arch", "width")}
    return {
        **model,
        "train.d_steps": "D and G alternate one step each, as in the papers' code",
        "train.reuse_fake": "the translator's step always reuses its fake batch",
        "train.compile": "not supported for translators",
        "train.sync_bn": "translators train in one process",
        "train.ema": "translators keep no moving average of G",
        "log.diagnose_every": "the diagnosis probe samples z",
        "eval.eval_every": "score a translator with `gankit eval RUN` instead",
        "eval.eval_metric": "score a translator with `gankit eval RUN` instead",
        "eval.eval_n": "score a translator with `gankit eval RUN --n N` instead",
        "eval.eval_features": "translations are scored by the fmnist classifier",
        **{f"reg.{f.name}": "D's cures are for the noise-to-data GANs" for f in fields(RegConfig)},
    }


def _validate_translate(cfg: Config) -> None:
    """Translators (--model pix2pix, cyclegan) against GANs: each refuses the other's options.

    A translator's paper recipe (``Translator.implies``: loss, learning rates, decay, no EMA, the
    default task) is applied to the keys the user left at the GAN defaults, as a named loss's
    ``implies`` is; the run's config.yaml shows them resolved."""
    tr, defaults = cfg.translate, TranslateConfig()
    if cfg.model.arch not in TRANSLATORS:
        changed = [f.name for f in fields(tr) if getattr(tr, f.name) != getattr(defaults, f.name)]
        if changed:
            raise GankitError(f"translate.{changed[0]} (--{changed[0].replace('_', '-')}) is for image "
                              f"translation (--model {' or '.join(TRANSLATORS.names())}), not for "
                              f"--model {cfg.model.arch}; leave it out")
        return
    arch = cfg.model.arch
    translator = TRANSLATORS.get(arch)
    gan_defaults, by_key = Config(), options_by_key()
    flags = {o.dotted: o.flag for o in by_key.values()}
    for key, value in translator.implies.items():
        opt = by_key[key]
        section = getattr(cfg, opt.section)
        if getattr(section, opt.name) == getattr(getattr(gan_defaults, opt.section), opt.name):
            setattr(section, opt.name, value)
    for dotted, why in _gan_only().items():
        opt = next(o for o in by_key.values() if o.dotted == dotted)
        value = getattr(getattr(cfg, opt.section), opt.name)
        default = translator.implies.get(opt.key, opt.default)
        if value != default:
            raise GankitError(f"{dotted} ({flags[dotted]}) does not apply to --model {arch}: {why}; "
                              "leave it out")
    if cfg.train.precision == "fp16":
        raise GankitError(f"--precision fp16 is for the noise-to-image GANs (it needs their gradient "
                          f"scalers); --model {arch} takes auto, fp32 or bf16")
    if cfg.train.loss not in TRANSLATOR_LOSSES:
        raise GankitError(f"train.loss (--loss) {cfg.train.loss!r} does not suit --model {arch}: its "
                          f"PatchGAN takes {', '.join(TRANSLATOR_LOSSES)} (no penalty, not relativistic)")
    paired = translator.paired
    other = "cyclegan" if paired else "pix2pix"
    for name in ("cycle", "identity", "pool_size") if paired else ("l1",):
        if getattr(tr, name) != getattr(defaults, name):
            raise GankitError(f"translate.{name} (--{name.replace('_', '-')}) is a {other} setting; "
                              f"--model {arch} does not use it: leave it out")
    for name in ("l1", "cycle", "identity", "pool_size"):
        if getattr(tr, name) < 0:
            raise GankitError(f"translate.{name} must be 0 (off) or positive, got {getattr(tr, name)}")


def _validate_reg(cfg: Config) -> None:
    """The cures: ranges, combinations, and the values a named loss implies."""
    t, r = cfg.train, cfg.reg
    loss = LOSSES.get(t.loss)
    defaults = RegConfig()
    for key, value in loss.implies.items():  # e.g. wgan -> clip 0.01, wgan-gp -> gp 10
        if getattr(r, key) == getattr(defaults, key):
            setattr(r, key, value)
    for k in ("gp", "r1", "clip", "instance_noise"):
        if getattr(r, k) < 0:
            raise GankitError(f"reg.{k} must be 0 (off) or positive, got {getattr(r, k)}")
    if not 0 <= r.label_smoothing < 0.5:
        raise GankitError(f"reg.label_smoothing must be in [0, 0.5), e.g. 0.1; got {r.label_smoothing}")
    if r.label_smoothing and not loss.smoothable:
        raise GankitError(f"reg.label_smoothing needs a loss with labels (minimax, nonsaturating, lsgan, "
                          f"ragan); --loss {t.loss} has none")
    if r.pack < 1 or r.unrolled < 0:
        raise GankitError(f"reg.pack must be at least 1 and reg.unrolled at least 0, got {r.pack} and "
                          f"{r.unrolled}")
    if t.batch_size % r.pack:
        raise GankitError(f"train.batch_size ({t.batch_size}) must be a multiple of reg.pack ({r.pack})")
    if r.diffaugment:
        parts = [p.strip() for p in r.diffaugment.split(",") if p.strip()]
        bad = [p for p in parts if p not in DIFFAUGMENT_POLICIES]
        if bad or not parts:
            raise GankitError(f"reg.diffaugment {r.diffaugment!r}: use a comma list of "
                              f"{', '.join(DIFFAUGMENT_POLICIES)}")
        r.diffaugment = ",".join(parts)


def _validate_conditional(cfg: Config) -> None:
    """Conditioning: a known kind, and the combinations the labelled step supports."""
    m, r = cfg.model, cfg.reg
    if m.embed_dim < 0 or m.acgan_weight < 0:
        raise GankitError(f"model.embed_dim and model.acgan_weight must be 0 or positive, got "
                          f"{m.embed_dim} and {m.acgan_weight}")
    if not m.conditional:
        return
    if m.conditional not in CONDITIONINGS:
        raise GankitError(f"model.conditional (--conditional) must be one of {', '.join(CONDITIONINGS)}, "
                          f"got {m.conditional!r}")
    if r.pack > 1 or r.unrolled:
        # PacGAN's D judges m samples with one label each; the unrolled look-ahead draws unlabelled
        # batches. Neither is defined for a conditional D here.
        raise GankitError("--conditional cannot be combined with --pack or --unrolled; leave those out")


def build_config(
    yaml_path: str | os.PathLike | None = None,
    overrides: dict[str, Any] | None = None,
    base: Config | None = None,
) -> Config:
    """Defaults (or ``base``) <- YAML file <- ``overrides`` (flat keys, already typed), validated."""
    cfg = base if base is not None else Config()
    if yaml_path is not None:
        apply_mapping(cfg, load_yaml(yaml_path), str(yaml_path))
    if overrides:
        apply_mapping(cfg, overrides, "command line")
    try:
        return validate(cfg)
    except GankitError as e:  # say where the offending value may have come from
        where = " + ".join(w for w in (yaml_path and str(yaml_path), overrides and "command line") if w)
        raise GankitError(f"{where}: {e}" if where else str(e)) from None


def config_from_dict(data: dict[str, Any], where: str) -> Config:
    """Rebuild a saved config (a run's config.yaml or a checkpoint's metadata)."""
    return validate(apply_mapping(Config(), data, where))
