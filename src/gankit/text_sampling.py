"""Applying a trained text -> image generator (GAN-INT-CLS, Reed et al. 2016): rebuilding G from a
checkpoint (no unpickling), embedding captions (``gankit.data.text_encoder``, cached) and drawing
images for them. Used by ``gankit sample RUN --text CAPTION``, ``gankit eval RUN`` and
bench/text2image.py; nothing here knows the training loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from gankit.checkpoint import (
    STATE,
    Checkpoint,
    checkpoint_is,
    load_checkpoint,
    load_module,
)
from gankit.config import Config, config_from_dict
from gankit.data.captioned import cache_root
from gankit.data.text_encoder import TEXT_DIM, embed_captions, encode
from gankit.data.vocabulary import CaptionReader, Encode, Reading, vocabulary
from gankit.errors import GankitError, display_path
from gankit.models import DataShape
from gankit.models.text2image import ARCH, TextGenerator, build_text2image, generate, noise
from gankit.rundir import RunDir
from gankit.validate import Damaged

TASK = "text2image"


def is_text_checkpoint(path: str | Path) -> bool:
    """Whether the run directory or checkpoint at ``path`` is a text -> image run's: read from its
    state.json, or where that cannot be read from the run's config.yaml."""
    return checkpoint_is(path, lambda meta: meta.get("task") == TASK, lambda arch: arch == ARCH)


def check_text_meta(ckpt: Checkpoint) -> None:
    """``Damaged`` unless state.json's ``text2image`` says what G is rebuilt from: the image shape
    (C, H, W) and the text embedding's size (and, where kept, the training captions' words)."""
    t = ckpt.fields().object("text2image")
    assert t is not None  # absent: Damaged, naming the key
    t.integers("shape", lo=1, hi=1 << 16, min_len=3, max_len=3)
    dim = t.integer("text_dim", lo=1, hi=1 << 16)
    if dim != TEXT_DIM:
        raise t.bad("text_dim", f"is {dim}, but the text encoder gives {TEXT_DIM}")
    t.strings("vocabulary", default=None)  # absent in runs saved before it was kept


@dataclass
class LoadedTextGenerator:
    """G of a text -> image checkpoint (the moving average where the run kept one), eval mode."""

    G: TextGenerator
    config: Config
    step: int
    run_dir: Path | None
    meta: dict[str, Any]  # state.json's "text2image": shape, text_dim, data, builtin, vocabulary
    _captions: list[str] | None = None  # the distinct training captions, once read
    _readers: dict[str, CaptionReader] = field(default_factory=dict)  # one per text.unknown_words value

    @property
    def vocabulary(self) -> list[str]:
        """The words of the training captions (state.json's, or for a run saved before it kept
        them, read again from its data)."""
        if "vocabulary" not in self.meta:
            self.meta["vocabulary"] = vocabulary(self.training_captions())
        return list(self.meta["vocabulary"])

    def training_captions(self) -> list[str]:
        """The distinct captions G was trained on, read again from the run's data (the built-in
        set, or the folder's metadata.jsonl, which must still be there)."""
        from gankit.data.captioned import METADATA, has_captions, load_captioned, read_metadata

        if self._captions is None:
            d, source = self.config.data, self.config.data.source
            if self.meta.get("builtin"):
                texts = load_captioned(d, self.config.text.caption_items, "train").captions
            elif source and has_captions(source):
                texts = [t for _, _, t in read_metadata(Path(source).expanduser() / METADATA)]
            else:
                raise GankitError(f"--unknown-words nearest needs the captions this run trained on, from "
                                  f"{display_path(source or '?')}, which holds no {METADATA} now; use "
                                  "--unknown-words rewrite")
            self._captions = list(dict.fromkeys(texts))
        return self._captions

    def read(self, captions: list[str], unknown_words: str | None = None) -> list[Reading]:
        """How G reads each caption: words the training captions never used rewritten into theirs
        (``gankit.data.vocabulary``), and with 'nearest' the training caption nearest that, as
        ``unknown_words`` says (unset: the run's text.unknown_words)."""
        how = unknown_words or self.config.text.unknown_words
        if how not in self._readers:

            def bank() -> tuple[list[str], Tensor]:
                texts = self.training_captions()
                return texts, embed_captions(texts, cache_root(self.config.data))

            vocab = self.vocabulary if how != "keep" else None
            self._readers[how] = CaptionReader(vocab, how, encoder_of(self.config), bank)
        return self._readers[how].read(captions)

    def sample(self, captions: list[str], n: int = 1, seed: int = 0, unknown_words: str | None = None) -> Tensor:
        """``n`` images per caption, (len(captions) * n, C, H, W) in [-1, 1], caption by caption:
        the same noise for each caption's i-th image."""
        texts = [r.read_as for r in self.read(captions, unknown_words)]
        return sample_captions(self.G, self.config, texts, n, seed)


def encoder_of(cfg: Config) -> Encode:
    """The sentence encoder as ``gankit.data.vocabulary`` calls it (texts -> embeddings)."""
    cache = cache_root(cfg.data)
    return lambda texts: encode(texts, cache)


def sample_captions(G: TextGenerator, cfg: Config, captions: list[str], n: int = 1, seed: int = 0) -> Tensor:
    """``n`` images of each caption (the i-th of each from the same noise), in [-1, 1], on the CPU.
    The captions are embedded as given (``LoadedTextGenerator.sample`` reads them first)."""
    phi = embed_captions(captions, cache_root(cfg.data)).repeat_interleave(n, 0)
    z, eps = noise(n, G, cfg.model.prior, seed)
    k = len(captions)
    return generate(G, phi, z.repeat(k, 1), eps.repeat(k, 1)).cpu()


def _rebuild(ckpt: Checkpoint) -> tuple[TextGenerator, Config]:
    check_text_meta(ckpt)
    state = ckpt.path / STATE
    cfg = config_from_dict(ckpt.meta["config"], str(state))
    shape = DataShape(tuple(ckpt.meta["text2image"]["shape"]))
    try:
        G, _ = build_text2image(shape, cfg.model.latent_dim, TEXT_DIM, cfg.text.cond_dim, cfg.model.width,
                                text_dims=cfg.text.text_dims, fusion=cfg.text.g_fusion,
                                where_dims=cfg.text.where_dims, where_patch=cfg.text.where_patch,
                                g_pad=cfg.text.g_pad)
    except (GankitError, ValueError, RuntimeError, TypeError) as e:
        raise Damaged(state, f"its config and shape {list(shape.dims)} build no generator ({e})") from None
    load_module(ckpt, ckpt.sampling_G, G)
    return G, cfg


def load_text_generator(path: str | Path, device: str | torch.device = "cpu") -> LoadedTextGenerator:
    """Rebuild G from a text -> image run directory or checkpoint, verified first
    (``gankit.checkpoint.load_checkpoint``)."""
    built: dict[Path, tuple[TextGenerator, Config]] = {}

    def check(c: Checkpoint) -> None:
        if c.meta.get("task") != TASK:
            raise GankitError(f"{display_path(c.path)} is not a text -> image run (model.arch={ARCH}); "
                              "--text needs one")
        built[c.path] = _rebuild(c)

    ckpt = load_checkpoint(path, with_train_state=False, check=check)
    G, cfg = built[ckpt.path]
    run = RunDir.of_checkpoint(ckpt.path)
    return LoadedTextGenerator(G.to(device).eval().requires_grad_(False), cfg, ckpt.step,
                               run.path if run else None, dict(ckpt.meta["text2image"]))


def score_builtin(lg: LoadedTextGenerator, n: int = 3000, device: str | torch.device = "cpu",
                  seed: int = 12345, shuffle: bool = False, unknown_words: str | None = None) -> dict[str, float]:
    """The scores of ``gankit.metrics.text2image`` on the first ``n`` items of each test split of
    ``captioned-fashion`` (``shuffle``: the caption-agnostic baseline), each caption read as
    ``LoadedTextGenerator.read`` reads it."""
    from gankit.data.captioned import HELDOUT_SPLITS, NAME, load_captioned
    from gankit.metrics.text2image import SPLIT_SUFFIX, real_features, score_split

    if lg.config.data.source != NAME:
        raise GankitError(f"the attribute scores need a run on data.source={NAME}; this one trained on "
                          f"{display_path(lg.config.data.source)}")
    values: dict[str, float] = {}
    for k, split in enumerate(HELDOUT_SPLITS):
        data = load_captioned(lg.config.data, lg.config.text.caption_items, split).head(n)
        assert data.attrs is not None
        texts = [r.read_as for r in lg.read(data.captions, unknown_words)]
        phi = embed_captions(texts, cache_root(lg.config.data))
        values |= score_split(lg.G, lg.config.model.prior, data.attrs, phi, seed + k, device, SPLIT_SUFFIX[split],
                              real_features(data.images, device), shuffle)
    return values


__all__ = ["LoadedTextGenerator", "check_text_meta", "encoder_of", "is_text_checkpoint", "load_text_generator",
           "sample_captions", "score_builtin"]
