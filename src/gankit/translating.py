"""Applying a trained image translator (pix2pix, CycleGAN, DTN): rebuilding its generators from a
checkpoint (no unpickling), the run's two domains of data, G(x) in batches, and scoring a run
(``evaluate_translator``: load, then hand the generators and data to the metrics).

Used by ``gankit translate``, ``gankit eval`` and the translation tasks alike; nothing here knows
the training loop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from gankit.checkpoint import (
    STATE,
    Checkpoint,
    checkpoint_is,
    load_checkpoint,
    load_module,
)
from gankit.config import Config, config_from_dict
from gankit.data.paired import (
    PAIRED_TASKS,
    UNPAIRED_TASKS,
    PairedData,
    UnpairedData,
    load_translation,
    parse_class_pair,
)
from gankit.errors import GankitError, display_path
from gankit.models.translators import TRANSLATORS, build_translator
from gankit.nn_util import apply_in_batches
from gankit.rundir import RunDir
from gankit.validate import Damaged

if TYPE_CHECKING:
    from gankit.metrics.translation import TranslationScores

Data = PairedData | UnpairedData


def load_data(cfg: Config, split: str = "train") -> Data:
    """The run's data (``split`` "test": Fashion-MNIST's test set for the built-in tasks; the
    training split of those cut to translate.fmnist_items when set)."""
    d = cfg.data
    return load_translation(d.source, TRANSLATORS.get(cfg.model.arch).paired, split, d.size(), d.channels,
                            cfg.translate.partner, d.data_root, d.cache_dir,
                            items=cfg.translate.fmnist_items if split == "train" else 0)


def translate_images(G: nn.Module, x: Tensor, batch_size: int = 256) -> Tensor:
    """G(x) in eval mode (batch norm's running statistics, no dropout: one output per input,
    whatever else is in the batch), in batches. x (N, C, H, W) in [-1, 1] on G's device."""
    return apply_in_batches(G, x, batch_size)


def generator_for(nets: dict[str, nn.Module], arch: str, direction: str) -> nn.Module:
    """The generator translating in ``direction`` (AtoB, or BtoA for cyclegan only)."""
    if direction not in ("AtoB", "BtoA"):
        raise GankitError(f"the direction must be AtoB or BtoA, got {direction!r}")
    if direction == "BtoA" and "G_BA" not in nets:
        raise GankitError(f"the direction BtoA needs a model trained both ways (cyclegan); this {arch} run "
                          "translates A to B only")
    return nets["G_BA"] if direction == "BtoA" else nets["G"] if "G" in nets else nets["G_AB"]


@dataclass
class LoadedTranslator:
    """The networks of a translator checkpoint, rebuilt from its metadata alone (no unpickling)."""

    nets: dict[str, nn.Module]
    config: Config
    meta: dict[str, Any]  # state.json's "translator": arch, task, paired, shape_A, shape_B, classes
    step: int
    run_dir: Path | None

    def generator(self, direction: str = "AtoB") -> nn.Module:
        return generator_for(self.nets, self.config.model.arch, direction)


def is_translator_checkpoint(path: str | Path) -> bool:
    """Whether the run directory or checkpoint at ``path`` holds a translator: read from its
    state.json, or where that cannot be read (a damaged checkpoint) from the run's config.yaml."""
    return checkpoint_is(path, lambda meta: "translator" in meta, lambda arch: arch in TRANSLATORS.names())


def check_translator_meta(ckpt: Checkpoint) -> None:
    """``Damaged`` unless state.json's ``translator`` says how to rebuild the generators, with the
    right types and ranges, and agrees with the checkpoint's config."""
    f = ckpt.fields()
    t = f.object("translator")
    assert t is not None
    arch = t.string("arch", TRANSLATORS.names())
    t.string("task")
    t.boolean("paired")
    t.strings("generators", 1, 4)
    for key in ("shape_A", "shape_B"):
        t.integers(key, lo=1, hi=1 << 16, min_len=3, max_len=3)
    t.strings("classes", default=None)
    task = f.string("task", default=arch)
    if task != arch:
        raise f.bad("task", f"is {task!r}, but its translator is {arch!r}")
    cfg_arch = f.object("config").object("model").string("arch")  # type: ignore[union-attr]
    if cfg_arch != arch:
        raise t.bad("arch", f"is {arch!r}, but its config's model.arch is {cfg_arch!r}")


def _rebuild(ckpt: Checkpoint) -> tuple[dict[str, nn.Module], Config]:
    """The translator's networks as its metadata builds them, weights loaded (``Damaged`` if they
    do not fit)."""
    check_translator_meta(ckpt)
    info = ckpt.meta["translator"]
    cfg = config_from_dict(ckpt.meta["config"], str(ckpt.path / STATE))
    try:
        nets = build_translator(info["arch"], tuple(info["shape_A"]), tuple(info["shape_B"]),  # type: ignore[arg-type]
                                cfg.model.width, cfg.translate)
    except (GankitError, ValueError, RuntimeError, TypeError) as e:
        raise Damaged(ckpt.path / STATE, f"its translator's shapes build no networks ({e})") from None
    for name, net in nets.items():
        load_module(ckpt, name, net)
    return nets, cfg


def load_translator(path: str | Path, device: str | torch.device = "cpu") -> LoadedTranslator:
    """Rebuild a trained translator from a run directory or checkpoint folder, verified first
    (``gankit.checkpoint.load_checkpoint``)."""
    built: dict[Path, tuple[dict[str, nn.Module], Config]] = {}

    def check(c: Checkpoint) -> None:
        if c.meta.get("translator") is None:
            raise GankitError(f"{display_path(c.path)} is a GAN checkpoint, not a translator's "
                              f"(model.arch={', '.join(TRANSLATORS.names())}); use `gankit sample` for it")
        built[c.path] = _rebuild(c)

    ckpt = load_checkpoint(path, with_train_state=False, check=check)
    nets, cfg = built[ckpt.path]
    for net in nets.values():
        net.to(device).eval().requires_grad_(False)
    run = RunDir.of_checkpoint(ckpt.path)
    return LoadedTranslator(nets, cfg, ckpt.meta["translator"], ckpt.step, run.path if run else None)


def evaluate_translator(source: str | Path, n: int = 10_000, device: str = "cpu",
                        batch_size: int = 256) -> TranslationScores:
    """Score the translator of a run directory or checkpoint on its task's held-out data (the test
    split of a built-in task; a folder has only one): load it, then
    ``gankit.metrics.translation.score_translation`` on at most ``n`` inputs per direction."""
    from gankit.metrics.translation import score_translation  # the metrics' imports: only to score

    t0 = time.perf_counter()
    lt = load_translator(source, device)
    data = load_data(lt.config, "test")
    src = lt.config.data.source
    builtin = src in PAIRED_TASKS or src in UNPAIRED_TASKS or parse_class_pair(src) is not None
    generators = {"AtoB": lt.generator("AtoB"), "BtoA": lt.nets.get("G_BA")}
    scores = score_translation(generators, data, n, device, batch_size,
                               split="test" if builtin else "train (a folder has one split)")
    scores.seconds = time.perf_counter() - t0  # loading included, as `gankit eval` reports it
    return scores


__all__ = ["Data", "LoadedTranslator", "check_translator_meta", "evaluate_translator", "generator_for", "is_translator_checkpoint",
           "load_data", "load_translator", "translate_images"]
