"""One resolve step: a checked config becomes the config a run trains with.

``resolve(cfg)`` applies every implication once and checks what needs the registries: the names of
the model (one a registered task trains: ``gankit.tasks``), loss, conditioning, feature extractor
and best-checkpoint metric; a translator's paper
recipe and the GAN options it refuses; a named loss's implied values and the cures that need a
loss with labels. Each value it settles is recorded in ``cfg.provenance.resolved`` with its reason,
so the run's config.yaml says why it holds what it holds.

The data that drives the rules stays with its owner: a loss's ``implies`` and ``smoothable``
(``gankit.losses``), a translator's ``implies`` and ``paired`` (``gankit.models.translators``), the
conditionings (``gankit.models.CONDITIONINGS``), the metric keys (``gankit.metrics``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import fields
from typing import TypeVar

from gankit.config import Config, ModelConfig, RegConfig, TranslateConfig, options_by_key, validate
from gankit.errors import GankitError
from gankit.losses import LOSSES, GANLoss
from gankit.metrics import FEATURES
from gankit.metrics.evaluate import higher_is_better
from gankit.metrics.translation import higher_is_better as translation_higher_is_better
from gankit.models import CONDITIONINGS
from gankit.models.translators import TRANSLATOR_LOSSES, TRANSLATORS
from gankit.tasks import task_name_for

T = TypeVar("T")


def resolve(cfg: Config) -> Config:
    """The config ``cfg`` implies, checked against the registries and the cross-field rules.

    Pure: ``cfg`` is left as it was; a resolved deep copy is returned. Implied values are applied
    to the keys the user left at their defaults (as the values of a translator's recipe or a
    loss's ``implies``), each recorded with its reason. Raises GankitError naming the key."""
    out = copy.deepcopy(cfg)
    task_name_for(out)  # a model some task trains (names the choices otherwise)
    _resolve_translator(out)
    loss = _named("train.loss", LOSSES.get, out.train.loss)
    _resolve_loss(out, loss)
    _check_conditional(out)
    _check_eval(out)
    return validate(out)  # the schema again: the implied values and the user's together


def _named(key: str, get: Callable[[str], T], name: str) -> T:
    """``get(name)`` of a registry, its error naming the config key."""
    try:
        return get(name)
    except GankitError as e:
        raise GankitError(f"{key}: {e}") from None


def _imply(cfg: Config, key: str, value: object, why: str) -> None:
    """Give ``key`` (a flat key) the implied ``value`` where it holds its default, recording why."""
    opt = options_by_key()[key]
    if cfg.get(opt.dotted) == opt.default:
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


def _resolve_translator(cfg: Config) -> None:
    """Translators (``model.arch`` pix2pix, cyclegan) against GANs: each refuses the other's options.

    A translator's paper recipe (``Translator.implies``: loss, learning rates, decay, no EMA, the
    default task) is applied to the keys the user left at the GAN defaults, as a named loss's
    ``implies`` is."""
    tr, defaults, arch = cfg.translate, TranslateConfig(), cfg.model.arch
    if arch not in TRANSLATORS:
        changed = [f.name for f in fields(tr) if getattr(tr, f.name) != getattr(defaults, f.name)]
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
    if cfg.train.loss not in TRANSLATOR_LOSSES:
        raise GankitError(f"train.loss {cfg.train.loss!r} does not suit model.arch={arch}: its "
                          f"PatchGAN takes {', '.join(TRANSLATOR_LOSSES)} (no penalty, not relativistic)")
    other = "cyclegan" if translator.paired else "pix2pix"
    for name in ("cycle", "identity", "pool_size") if translator.paired else ("l1",):
        if getattr(tr, name) != getattr(defaults, name):
            raise GankitError(f"translate.{name} is a {other} setting; model.arch={arch} does not "
                              "use it: leave it out")


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
        direction = translation_higher_is_better if cfg.model.arch in TRANSLATORS else higher_is_better
        _named("eval.eval_metric", direction, ev.eval_metric)  # names the known keys


__all__ = ["resolve"]
