"""One resolve step: a checked config becomes the config a run trains with.

``resolve(cfg)`` applies every implication once and checks what needs the registries: the names of
the model (one a registered task trains: ``gankit.tasks``), loss, conditioning, feature extractor
and best-checkpoint metric; a translator's paper
recipe and the GAN options it refuses; a named loss's implied values and the cures that need a
loss with labels. Each value it settles is recorded in ``cfg.provenance.resolved`` with its reason,
so the run's config.yaml says why it holds what it holds.

Before anything is allocated it also refuses a batch that cannot fit: the real and the fake batch
alone (float32, the least any task holds) must fit in this machine's memory (``os.sysconf``).

The data that drives the rules stays with its owner: a loss's ``implies`` and ``smoothable``
(``gankit.losses``), a translator's ``implies`` and ``paired`` (``gankit.models.translators``), the
conditionings (``gankit.models.CONDITIONINGS``), the metric keys (``gankit.metrics``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import fields
from typing import TypeVar

from gankit.config import (
    Config,
    ModelConfig,
    RegConfig,
    options_by_dotted,
    options_by_key,
    validate,
)
from gankit.data.base import gib, physical_memory
from gankit.errors import GankitError, short_repr
from gankit.losses import LOSSES, GANLoss
from gankit.metrics import FEATURES
from gankit.metrics.evaluate import higher_is_better
from gankit.metrics.nextframe import higher_is_better as nextframe_higher_is_better
from gankit.metrics.text2image import higher_is_better as text_higher_is_better
from gankit.metrics.translation import higher_is_better as translation_higher_is_better
from gankit.metrics.views import higher_is_better as views_higher_is_better
from gankit.models import CONDITIONINGS
from gankit.models.nextframe import ARCH as NEXTFRAME_ARCH
from gankit.models.text2image import ARCH as TEXT_ARCH
from gankit.models.translators import TRANSLATOR_LOSSES, TRANSLATORS
from gankit.models.views import ARCH as VIEWS_ARCH
from gankit.tasks import task_name_for

T = TypeVar("T")


def resolve(cfg: Config) -> Config:
    """The config ``cfg`` implies, checked against the registries and the cross-field rules.

    Pure: ``cfg`` is left as it was; a resolved deep copy is returned. Implied values are applied
    to the keys the user left at their defaults (as the values of a translator's recipe or a
    loss's ``implies``), each recorded with its reason. Raises GankitError naming the key."""
    out = copy.deepcopy(cfg)
    _check_name_lengths(out)
    if task_name_for(out) != "gan" and out.reg.ada is False:  # a model some task trains (names the choices otherwise)
        out.reg.ada = None  # off, as a config saved before reg.ada says: other tasks have no ADA
    _resolve_translator(out)
    _resolve_text(out)
    _resolve_nextframe(out)
    _resolve_views(out)
    loss = _named("train.loss", LOSSES.get, out.train.loss)
    _resolve_loss(out, loss)
    _check_conditional(out)
    _check_eval(out)
    out = validate(out)  # the schema again: the implied values and the user's together
    check_memory(out)
    return out


MAX_NAME = 64
"""The longest name of a registered component: longer is no name, refused without echoing it."""

_NAMED = ("model.arch", "train.loss", "model.conditional", "eval.eval_metric")


def _check_name_lengths(cfg: Config) -> None:
    for key in _NAMED:
        value = cfg.get(key)
        if isinstance(value, str) and len(value) > MAX_NAME:
            raise GankitError(f"{key} {short_repr(value)} is no known name (names are at most "
                              f"{MAX_NAME} characters; `gankit list` shows them)")
    features = cfg.eval.eval_features.partition(":")[0]
    if len(features) > MAX_NAME:
        raise GankitError(f"eval.eval_features {short_repr(features)} is no known extractor (fmnist "
                          "or inception:PATH)")


POINT_SETS = ("ring", "grid")


def first_batch_bytes(cfg: Config) -> int:
    """The least memory the first iteration needs, in bytes: a real and a fake batch as float32
    (2-D points for the point sets, else images of ``data.image_size``: unset, the smallest
    default, 28x28; channels unset: 1) and the latent batch. Networks and activations come on
    top, so a config over it cannot run, and one under it may still not."""
    t, d = cfg.train, cfg.data
    per_sample = 2 if d.source in POINT_SETS else (d.channels or 1) * math.prod(d.size() or (28, 28))
    return 4 * t.batch_size * (2 * per_sample + cfg.model.latent_dim)


def check_memory(cfg: Config, memory: int | None = None) -> None:
    """Refuse, naming the keys and the limit, a config whose first batch alone
    (``first_batch_bytes``) is more than this machine's memory."""
    memory = physical_memory() if memory is None else memory
    need = first_batch_bytes(cfg)
    if memory is not None and need > memory:
        size = cfg.data.image_size or "the default image size"
        raise GankitError(
            f"train.batch_size {cfg.train.batch_size} at data.image_size {size} needs at least "
            f"{gib(need)} for one real and one fake batch, more than this machine's {gib(memory)} "
            "of memory; lower train.batch_size or data.image_size")


def _named(key: str, get: Callable[[str], T], name: str) -> T:
    """``get(name)`` of a registry, its error naming the config key."""
    try:
        return get(name)
    except GankitError as e:
        raise GankitError(f"{key}: {e}") from None


def _imply(cfg: Config, key: str, value: object, why: str) -> None:
    """Give ``key`` (a flat key) the implied ``value`` where it holds its default and the user did
    not set it (``--ema 0.999`` given to a model that implies 0 is the user's 0.999), recording why."""
    opt = options_by_key()[key]
    if cfg.get(opt.dotted) == opt.default and opt.dotted not in cfg.provenance.user_set:
        cfg.resolve_value(opt.dotted, value, why)


def _gan_only() -> dict[str, str]:
    """What a translator has no use for (section.field -> why): the latent prior and every other
    GAN model option, Algorithm 1's knobs, D's cures, the feature extractor of the GAN metrics.
    Left at their defaults, or it is an error."""
    model = {f"model.{f.name}": "a translator has no z or class input: the image is G's input"
             for f in fields(ModelConfig) if f.name not in ("arch", "width")}
    return {
        **model,
        "train.d_steps": "D and G alternate one step each, as in the papers' code",
        "train.reuse_fake": "the translator's step always reuses its fake batch",
        "train.compile": "not supported for translators",
        "train.sync_bn": "not supported for translators (under torchrun their gradients are "
                         "averaged after backward, and batch norm keeps each rank's statistics)",
        "train.ema": "translators keep no moving average of G",
        "eval.eval_features": "translations are scored by the fmnist classifier",
        **{f"reg.{f.name}": "D's cures are for the noise-to-data GANs" for f in fields(RegConfig)},
    }


EVERY_TRANSLATOR = ("partner", "fmnist_items")  # translate.* keys that every translator reads (its data's)


def _resolve_translator(cfg: Config) -> None:
    """Translators (``model.arch`` pix2pix, cyclegan) against GANs: each refuses the other's options.

    A translator's paper recipe (``Translator.implies``: loss, learning rates, decay, no EMA, the
    default task) is applied to the keys the user left at the GAN defaults, as a named loss's
    ``implies`` is."""
    tr, arch = cfg.translate, cfg.model.arch
    if arch not in TRANSLATORS:
        changed = [f.name for f in fields(tr) if _user_changed(cfg, f"translate.{f.name}")]
        if changed:
            raise GankitError(f"translate.{changed[0]} is for image translation (model.arch="
                              f"{' or '.join(TRANSLATORS.names())}), not for model.arch={arch}; "
                              "leave it out")
        return
    translator = TRANSLATORS.get(arch)
    for key, value in translator.implies.items():
        _imply(cfg, key, value, f"model.arch={arch} trains with its paper's recipe")
    by_key = options_by_key()
    by_dotted = {o.dotted: o for o in by_key.values()}
    for dotted, why in _gan_only().items():
        opt = by_dotted[dotted]
        if cfg.get(dotted) != translator.implies.get(opt.key, opt.default):
            raise GankitError(f"{dotted} does not apply to model.arch={arch}: {why}; leave it out")
    if cfg.train.precision == "fp16":
        raise GankitError(f"train.precision=fp16 is for the noise-to-image GANs (it needs their "
                          f"gradient scalers); model.arch={arch} takes auto, fp32 or bf16")
    if cfg.train.loss not in translator.losses:
        if translator.losses != TRANSLATOR_LOSSES:  # a translator with a loss of its own (dtn)
            raise GankitError(f"train.loss {short_repr(cfg.train.loss)} does not suit model.arch={arch}: it "
                              f"trains with its paper's loss ({', '.join(translator.losses)}); leave train.loss out")
        raise GankitError(f"train.loss {short_repr(cfg.train.loss)} does not suit model.arch={arch}: its "
                          f"PatchGAN takes {', '.join(TRANSLATOR_LOSSES)} (no penalty, not relativistic)")
    for name in (f.name for f in fields(tr) if f.name not in EVERY_TRANSLATOR):
        if name not in translator.settings and _user_changed(cfg, f"translate.{name}"):
            users = [e.name for e in TRANSLATORS.entries() if name in e.obj.settings]
            raise GankitError(f"translate.{name} is a {' and '.join(users)} setting; model.arch={arch} does not "
                              "use it: leave it out")


def _user_changed(cfg: Config, dotted: str) -> bool:
    """Whether the user set ``dotted`` (this command, or when the run began) to other than its
    default. Only the user's values count: a saved run's config holds every key at the defaults
    of its day, and a default changed since must not stop the run resuming."""
    return dotted in cfg.provenance.user_set and cfg.get(dotted) != options_by_dotted()[dotted].default


def _resolve_text(cfg: Config) -> None:
    """Text -> image (``model.arch`` gan-int-cls) against the rest: text.* is its alone, and it
    refuses the GAN options it has no use for (its loss is Reed et al.'s matching-aware BCE)."""
    tx, arch = cfg.text, cfg.model.arch
    if arch != TEXT_ARCH:
        changed = [f.name for f in fields(tx) if _user_changed(cfg, f"text.{f.name}")]
        if changed:
            raise GankitError(f"text.{changed[0]} is for text -> image (model.arch={TEXT_ARCH}), not for "
                              f"model.arch={arch}; leave it out")
        return
    refused = {**{f"model.{n}": "G's condition is the caption, not a class" for n in
                  ("conditional", "embed_dim", "acgan_weight")},
               "train.d_steps": "D and G alternate one step each (Reed et al. 2016, Algorithm 1)",
               "train.reuse_fake": "G's step always reuses the fake batch of D's",
               "train.compile": "not supported for text -> image",
               "train.sync_bn": "not supported for text -> image (batch norm keeps each rank's statistics)",
               **{f"reg.{f.name}": "D's cures are for the noise-to-data GANs" for f in fields(RegConfig)}}
    by_dotted = {o.dotted: o for o in options_by_key().values()}
    for dotted, why in refused.items():
        if cfg.get(dotted) != by_dotted[dotted].default:
            raise GankitError(f"{dotted} does not apply to model.arch={arch}: {why}; leave it out")
    if cfg.train.loss != "nonsaturating":
        raise GankitError(f"train.loss {short_repr(cfg.train.loss)} does not suit model.arch={arch}: its D is "
                          "matching-aware with the logistic loss (nonsaturating)")
    if cfg.train.precision == "fp16":
        raise GankitError(f"train.precision=fp16 is for the noise-to-image GANs (it needs their gradient "
                          f"scalers); model.arch={arch} takes auto, fp32 or bf16")


def _resolve_nextframe(cfg: Config) -> None:
    """Next-frame prediction (``model.arch`` nextframe, Mathieu et al. 2016) against the rest:
    nextframe.* is its alone; it trains on videos (mfmnist unless data.source is set) and refuses
    the GAN options it has no use for. It keeps the GANs' moving average of G (train.ema; the paper
    keeps none, 0 turns it off): measured, the last G of a run swings between checkpoints, and the
    average's rollouts were the better ones (docs/BENCHMARKS.md)."""
    nf, arch = cfg.nextframe, cfg.model.arch
    if arch != NEXTFRAME_ARCH:
        changed = [f.name for f in fields(nf) if _user_changed(cfg, f"nextframe.{f.name}")]
        if changed:
            raise GankitError(f"nextframe.{changed[0]} is for next-frame prediction (model.arch="
                              f"{NEXTFRAME_ARCH}), not for model.arch={arch}; leave it out")
        return
    _imply(cfg, "data", "mfmnist", f"model.arch={arch} predicts video frames")
    _imply(cfg, "eval_n", 500, f"model.arch={arch}: held-out sequences rolled out per evaluation")
    refused = {**{f"model.{f.name}": "G's input is the past frames, not noise or a class"
                  for f in fields(ModelConfig) if f.name not in ("arch", "width")},
               "train.d_steps": "D and G alternate one step each (Mathieu et al. 2016)",
               "train.reuse_fake": "G's step always reuses the prediction of D's",
               "train.compile": "not supported for next-frame prediction",
               "train.sync_bn": "its networks have no batch norm",
               "eval.eval_features": "predictions are scored against the true frames (MSE, SSIM, ...)",
               **{f"reg.{f.name}": "D's cures are for the noise-to-data GANs" for f in fields(RegConfig)}}
    by_dotted = options_by_dotted()
    for dotted, why in refused.items():
        if cfg.get(dotted) != by_dotted[dotted].default:
            raise GankitError(f"{dotted} does not apply to model.arch={arch}: {why}; leave it out")
    if cfg.train.loss not in TRANSLATOR_LOSSES:
        raise GankitError(f"train.loss {short_repr(cfg.train.loss)} does not suit model.arch={arch}: its D takes "
                          f"{', '.join(TRANSLATOR_LOSSES)} (no penalty, not relativistic)")


# novel-view synthesis trains with pix2pix's recipe (Isola et al. 2017): the logistic loss, Adam
# 2e-4 with beta1 0.5, linear decay over the second half, no EMA; on the built-in renders
VIEWS_IMPLIES = {"loss": "nonsaturating", "lr_g": 2e-4, "lr_d": 2e-4, "lr_decay_start": 0.5, "ema": 0.0,
                 "data": "views"}


def _resolve_views(cfg: Config) -> None:
    """Novel-view synthesis (``model.arch`` novel-view) against the rest: views.* is its alone; it
    takes pix2pix's recipe where the user left the GAN defaults and refuses the GAN options."""
    arch = cfg.model.arch
    if arch != VIEWS_ARCH:
        changed = [f.name for f in fields(cfg.views) if _user_changed(cfg, f"views.{f.name}")]
        if changed:
            raise GankitError(f"views.{changed[0]} is for novel-view synthesis (model.arch={VIEWS_ARCH}), not for "
                              f"model.arch={arch}; leave it out")
        return
    for key, value in VIEWS_IMPLIES.items():
        _imply(cfg, key, value, f"model.arch={arch} trains with pix2pix's recipe")
    by_dotted = {o.dotted: o for o in options_by_key().values()}
    refused = {**{dotted: why.replace("a translator has no z or class input: the image is G's input",
                                      "G's input is the source view and the angles")
                  for dotted, why in _gan_only().items() if dotted != "eval.eval_features"}}
    for dotted, why in refused.items():
        opt = by_dotted[dotted]
        if cfg.get(dotted) != VIEWS_IMPLIES.get(opt.key, opt.default):
            raise GankitError(f"{dotted} does not apply to model.arch={arch}: {why}; leave it out")
    if cfg.train.loss not in TRANSLATOR_LOSSES:
        raise GankitError(f"train.loss {short_repr(cfg.train.loss)} does not suit model.arch={arch}: its PatchGAN "
                          f"takes {', '.join(TRANSLATOR_LOSSES)} (no penalty, not relativistic)")
    if cfg.train.precision == "fp16":
        raise GankitError(f"train.precision=fp16 is for the noise-to-image GANs (it needs their gradient "
                          f"scalers); model.arch={arch} takes auto, fp32 or bf16")


def _resolve_loss(cfg: Config, loss: GANLoss) -> None:
    """The values a named loss implies (``wgan`` -> reg.clip 0.01, ``wgan-gp`` -> reg.gp 10), and
    the cures that need a loss of a kind."""
    name, r = cfg.train.loss, cfg.reg
    for key, value in loss.implies.items():
        _imply(cfg, key, value, f"train.loss={name} implies it")
    if r.label_smoothing and not loss.smoothable:
        labelled = [e.name for e in LOSSES.entries() if e.obj.smoothable]
        raise GankitError(f"reg.label_smoothing needs a loss with labels ({', '.join(labelled)}); "
                          f"train.loss={name} has none")


def _check_conditional(cfg: Config) -> None:
    """Conditioning: a known kind, and the combinations the labelled step supports."""
    m, r = cfg.model, cfg.reg
    if m.conditional is None:
        return
    _named("model.conditional", CONDITIONINGS.get, m.conditional)
    if r.pack > 1 or r.unrolled:
        # PacGAN's D judges m samples with one label each; the unrolled look-ahead draws unlabelled
        # batches. Neither is defined for a conditional D here.
        raise GankitError("model.conditional cannot be combined with reg.pack or reg.unrolled; "
                          "leave those out")


def _check_eval(cfg: Config) -> None:
    """The feature extractor and the metric that picks the best checkpoint are known names: a
    translator's scores (``gankit.metrics.translation``) or the GAN metrics' keys."""
    ev = cfg.eval
    _named("eval.eval_features", FEATURES.get, ev.eval_features.partition(":")[0])
    if ev.eval_metric is not None:
        directions = {**{name: translation_higher_is_better for name in TRANSLATORS.names()},
                      TEXT_ARCH: text_higher_is_better, NEXTFRAME_ARCH: nextframe_higher_is_better,
                      VIEWS_ARCH: views_higher_is_better}  # each task's scores; the GANs' otherwise
        direction = directions.get(cfg.model.arch, higher_is_better)
        _named("eval.eval_metric", direction, ev.eval_metric)  # names the known keys


__all__ = ["EVERY_TRANSLATOR", "check_memory", "first_batch_bytes", "resolve"]
