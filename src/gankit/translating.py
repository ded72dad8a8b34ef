"""Applying a trained image translator (pix2pix, CycleGAN): rebuilding its generators from a
checkpoint (no unpickling), the run's two domains of data, G(x) in batches, and scoring a run
(``evaluate_translator``: load, then hand the generators and data to the metrics).

Used by ``gankit translate``, ``gankit eval`` and the translation tasks alike; nothing here knows
the training loop.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from gankit.checkpoint import find_checkpoint, load_checkpoint
from gankit.config import Config, config_from_dict
from gankit.data.paired import (
    PAIRED_TASKS,
    PairedData,
    UnpairedData,
    load_translation,
    parse_class_pair,
)
from gankit.errors import GankitError
from gankit.models.translators import TRANSLATORS, build_translator
from gankit.nn_util import apply_in_batches
from gankit.rundir import RunDir

if TYPE_CHECKING:
    from gankit.metrics.translation import TranslationScores

Data = PairedData | UnpairedData


def load_data(cfg: Config, split: str = "train") -> Data:
    """The run's data (``split`` "test": Fashion-MNIST's test set for the built-in tasks)."""
    d = cfg.data
    return load_translation(d.source, TRANSLATORS.get(cfg.model.arch).paired, split, d.size(), d.channels,
                            cfg.translate.partner, d.data_root, d.cache_dir)


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
    """Whether the run directory or checkpoint at ``path`` holds a translator (read from its config)."""
    try:
        meta = json.loads((find_checkpoint(path) / "state.json").read_text())
    except (GankitError, OSError, ValueError):
        return False
    return "translator" in meta


def load_translator(path: str | Path, device: str | torch.device = "cpu") -> LoadedTranslator:
    """Rebuild a trained translator from a run directory or checkpoint folder."""
    ckpt = load_checkpoint(path, with_train_state=False)
    info = ckpt.meta.get("translator")
    if info is None:
        raise GankitError(f"{ckpt.path} is a GAN checkpoint, not a translator's (model.arch=pix2pix or "
                          "cyclegan); use `gankit sample` for it")
    cfg = config_from_dict(ckpt.meta["config"], str(ckpt.path / "state.json"))
    nets = build_translator(info["arch"], tuple(info["shape_A"]), tuple(info["shape_B"]),  # type: ignore[arg-type]
                            cfg.model.width)
    for name, net in nets.items():
        net.load_state_dict(ckpt.module_state(name))
        net.to(device).eval().requires_grad_(False)
    run = RunDir.of_checkpoint(ckpt.path)
    return LoadedTranslator(nets, cfg, info, ckpt.step, run.path if run else None)


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
    builtin = src in PAIRED_TASKS or parse_class_pair(src) is not None
    generators = {"AtoB": lt.generator("AtoB"), "BtoA": lt.nets.get("G_BA")}
    scores = score_translation(generators, data, n, device, batch_size,
                               split="test" if builtin else "train (a folder has one split)")
    scores.seconds = time.perf_counter() - t0  # loading included, as `gankit eval` reports it
    return scores


__all__ = ["Data", "LoadedTranslator", "evaluate_translator", "generator_for", "is_translator_checkpoint",
           "load_data", "load_translator", "translate_images"]
