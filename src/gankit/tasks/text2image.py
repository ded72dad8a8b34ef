"""Text -> image: GAN-INT-CLS (Reed et al. 2016) with conditioning augmentation (StackGAN, Zhang
et al. 2017), on captioned images (``--data captioned-fashion`` or a folder with a metadata.jsonl).

Each caption is embedded once by a frozen sentence encoder (all-MiniLM-L6-v2,
``gankit.data.text_encoder``: 384 numbers, cached). One iteration, as in Reed et al.'s Algorithm 1:

    draw a batch of (real image x, its caption's embedding phi), a wrong caption phi_w for each
    (another item's, the batch rolled by one), noise z and eps
    c = mu(phi) + sigma(phi) * eps; fake = G(z, c)                    (conditioning augmentation)
    D step: l_r = D(x, phi), l_w = D(x, phi_w), l_f = D(fake, phi)
            L_D = softplus(-l_r) + (softplus(l_w) + softplus(l_f)) / 2   (matching-aware D, GAN-CLS)
    G step: L_G = softplus(-D(fake, phi))
                + int_weight * softplus(-D(G(z', c(phi_int)), phi_int))  (GAN-INT, phi_int the
                  embeddings halfway between a caption and its neighbour's, beta = 0.5, for half
                  the batch)
                + kl_weight * KL(N(mu, sigma^2) || N(0, I)) / cond_dim    (StackGAN's code: the KL
                  per dimension of c)
                + mode_seeking / (mean|G(z, c) - G(z2, c)| / mean|z - z2|)  (MSGAN, Mao et al. 2019:
                  half the batch drawn again from other noise, same caption and code)

The sample grid has one row per caption (held-out test captions for the built-in set), one column
per fixed noise. The diagnosis' probe measures how varied G's draws of one caption are, against
the real images that share a caption (``gankit.tasks.caption_probe``): a G that ignores z, one image per
caption, reads 0 and is called mode collapse. Evaluation on the built-in set generates from the
captions of its three test splits and reads the class, position, size and brightness back off the pixels
(``gankit.metrics.text2image``); on a folder it is the FID against the folder's images.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gankit.checkpoint import (
    Checkpoint,
    check_players,
    check_rng,
    load_players,
    optimizer_to_flat,
    restoring,
)
from gankit.config import Config
from gankit.data.base import BatchOrder, to_float
from gankit.data.captioned import (
    HELDOUT_SPLITS,
    CaptionedData,
    attribute_words,
    cache_root,
    load_captioned,
)
from gankit.data.text_encoder import (
    MODEL_ID,
    TEXT_DIM,
    check_installed,
    embed_captions,
    embedding_key,
    unique,
)
from gankit.data.vocabulary import CaptionReader, vocabulary
from gankit.diagnosis import grad_norm
from gankit.errors import GankitError
from gankit.images import save_grid
from gankit.losses import d_probability
from gankit.losses.text2image import (
    ca_kl,
    contrastive_loss,
    g_loss,
    matching_aware_d_loss,
    mode_seeking,
)
from gankit.models import DataShape, sample_prior
from gankit.models.text2image import (
    DEFAULT_WIDTH,
    FusedGenerator,
    TextDiscriminator,
    TextGenerator,
    build_text2image,
    generate,
    noise,
)
from gankit.tasks.caption_probe import CaptionProbe
from gankit.text_sampling import check_text_meta, encoder_of, sample_captions
from gankit.train import distributed
from gankit.train.schedule import Schedule
from gankit.train.state import (
    adam,
    ema_copy,
    ema_decay,
    lerp_ema,
    resolve_precision,
    resumed_precision,
)
from gankit.train.task import Task

ROWS, COLUMNS = 8, 8  # the sample grid: captions x fixed noises
BETA = 0.5  # GAN-INT's interpolation (Reed et al. 2016: 0.5)
EVAL_SEED = 12345
LABEL_CHARS = 30  # a folder caption's row label is cut to this


@dataclass
class TextRun:
    """What ``gankit.fit`` returns for text -> image: the run directory and the trained networks."""

    run_dir: Path
    G: TextGenerator
    D: TextDiscriminator
    config: Config
    step: int
    history: list[dict[str, Any]] = field(default_factory=list)
    reader: CaptionReader | None = None  # how captions are read for G (text.unknown_words)

    def sample(self, captions: list[str], n: int = 1, seed: int = 0) -> Tensor:
        """``n`` images of each caption, (len(captions) * n, C, H, W) in [-1, 1], on the CPU; words
        the training captions never used are read as text.unknown_words says."""
        texts = [r.read_as for r in self.reader.read(captions)] if self.reader is not None else captions
        return sample_captions(self.G, self.config, texts, n, seed)


def grid_rows(data: CaptionedData, rows: int = ROWS) -> tuple[list[str], list[str]]:
    """(captions, row labels) of the sample grid: for the built-in set, the first items of
    distinct classes (labels: 'small dark Sneaker, top left'); else the first distinct captions."""
    if data.attrs is not None:
        picks: list[int] = []
        for i, c in enumerate(data.attrs[:, 0].tolist()):
            if c not in {int(data.attrs[j, 0]) for j in picks}:
                picks.append(i)
            if len(picks) == rows:
                break
        return [data.captions[i] for i in picks], attribute_words(data.attrs[picks])
    captions = list(dict.fromkeys(data.captions))[:rows]
    return captions, [c if len(c) <= LABEL_CHARS else c[:LABEL_CHARS - 1] + "…" for c in captions]


class Text2ImageTask(Task):
    """G(z, c(phi(t))), D(x, phi(t)) on captioned images (see the module docstring)."""

    # the catalogue's cures name the image GAN's flags; these are the ones a text -> image run has
    cures = {
        "mode_collapse": "--mode-seeking 0.03, or up to 0.1 if it is on already (MSGAN, Mao et al. 2019: two "
                         "draws of one caption from two noises must differ; the paper's 1 is far too strong on "
                         "a mostly black canvas, docs/BENCHMARKS.md), a lower --contrastive (it pulls every image of a caption "
                         "to one point of D's space), or a larger --kl-weight (a wider code c per caption)",
    }

    def setup(self, data: Any | None = None) -> None:
        if data is not None:
            raise GankitError("text -> image reads captioned images from data.source (captioned-fashion or a "
                              "folder with a metadata.jsonl), not from an in-memory dataset")
        cfg, t, d, device = self.cfg, self.cfg.train, self.dist, self.device
        check_installed()  # one line saying `pip install 'gankit[text]'` if it is not
        self.cache = cache_root(cfg.data)
        train = load_captioned(cfg.data, cfg.text.caption_items, "train")
        self.ctx.notes.extend(train.notes)
        self.builtin = train.attrs is not None
        self.data_name = train.name
        distinct, index = unique(train.captions)
        self.captions_key = embedding_key(distinct)
        self.vocabulary = vocabulary(distinct)  # kept in checkpoints: new wordings are read into it
        # the grid's captions: held-out test captions (the built-in set), else the data's own
        shown = load_captioned(cfg.data, cfg.text.caption_items, "test-seen") if self.builtin else train
        captions, self.row_labels = grid_rows(shown)
        if not d.is_main:  # torchrun: rank 0 embeds (the others would load the encoder too), then all read
            distributed.barrier(d)
        self.embeddings = embed_captions(distinct, self.cache, self.ctx.notes).to(device)  # (U, 384)
        self.grid_phi = embed_captions(captions, self.cache).repeat_interleave(COLUMNS, 0).to(device)
        if d.enabled and d.is_main:
            distributed.barrier(d)
        embeddings = self.embeddings  # the reader's bank: a closure over these, not over the task
        self.reader = CaptionReader(self.vocabulary, cfg.text.unknown_words, encoder_of(cfg),
                                    lambda: (distinct, embeddings.cpu()))
        self.caption_index = index.to(device)  # (N,): item i's caption among the distinct ones
        self.images = train.images.to(device)
        self.n_items = len(train)
        self.ctx.notes.append(f"{train.name}: {len(train)} items, {len(distinct)} distinct captions, images "
                              f"{tuple(train.images.shape[1:])}")
        self.order = BatchOrder(len(train), t.batch_size * d.world, t.seed, device)
        self.heldout: dict[str, tuple[CaptionedData, Tensor]] = {}
        self.real_features: dict[str, Tensor] = {}
        self._build(DataShape(tuple(train.images.shape[1:])), self.embeddings)
        z, eps = noise(COLUMNS, self.G, cfg.model.prior, t.seed + 1)  # one noise per column
        self.grid_z, self.grid_eps = z.repeat(len(captions), 1).to(device), eps.repeat(len(captions), 1).to(device)
        embedded = self.embeddings  # the probe's captions are training ones: rows of this table
        self.caption_probe = CaptionProbe.of(train.images, index, lambda rows: embedded[rows.to(device)],
                                             self.G, cfg.model.prior)

    def _build(self, shape: DataShape, embeddings: Tensor) -> None:
        cfg, t, m = self.cfg, self.cfg.train, self.cfg.model
        self.shape = shape
        torch.manual_seed(t.seed)  # the same weights on every rank and in every run of this seed
        G, D = build_text2image(shape, m.latent_dim, TEXT_DIM, cfg.text.cond_dim, m.width, embeddings.cpu(),
                                cfg.text.text_dims, cfg.text.contrastive > 0, cfg.text.g_fusion,
                                cfg.text.where_dims, cfg.text.where_patch, cfg.text.g_pad)
        # channels-last: oneDNN's convolutions run about twice as fast so on a CPU (as the GAN's)
        self.G = G.to(self.device, memory_format=torch.channels_last)
        self.D = D.to(self.device, memory_format=torch.channels_last)
        self.G_ema = ema_copy(self.G, t.ema)
        self.opt_G = adam(self.G, t.lr_g, (t.beta1, t.beta2))
        self.opt_D = adam(self.D, t.lr_d, (t.beta1, t.beta2))
        self.z_gen = torch.Generator(device=self.device).manual_seed(t.seed)
        self.real_batches = 0
        self.precision = resolve_precision(t.precision, self.device, is_image=True)

    def resolved(self) -> dict[str, tuple[Any, str]]:
        c, h, w = self.shape.dims
        out = {"data.image_size": (str(h) if h == w else f"{h}x{w}", "from the data"),
               "data.channels": (c, "from the data"),
               "model.width": (DEFAULT_WIDTH, "the architecture's default")}
        return {k: v for k, v in out.items() if self.cfg.get(k) is None}

    @property
    def G_sample(self) -> TextGenerator:
        """The generator that samples, the grids and evaluation see: the moving average if kept."""
        return self.G_ema if self.G_ema is not None else self.G

    # ------------------------------------------------------------------ held-out captions

    def _heldout(self, split: str) -> tuple[CaptionedData, Tensor]:
        """A test split of the built-in set (its first eval.eval_n items) and its embeddings, each
        caption read as ``gankit sample --text`` reads it (text.unknown_words)."""
        if split not in self.heldout:
            data = load_captioned(self.cfg.data, self.cfg.text.caption_items, split)
            data = data.head(min(len(data), self.cfg.eval.eval_n))
            readings = self.reader.read(data.captions)
            self.heldout[split] = (data, embed_captions([r.read_as for r in readings], self.cache))
        return self.heldout[split]

    # ------------------------------------------------------------------ one iteration

    def draw(self, n: int, dim: int, prior: str = "normal") -> Tensor:
        """This rank's shard of noise drawn for the global batch (every rank draws the same)."""
        g = sample_prior(prior, n * self.dist.world, dim, self.device, self.z_gen)
        return distributed.shard(self.dist, g)

    def descend(self, loss: Tensor, opt: torch.optim.Optimizer, net: nn.Module) -> None:
        loss.backward()
        distributed.average_gradients(self.dist, net.parameters())
        opt.step()

    def iteration(self, step: int) -> dict[str, Tensor]:
        cfg, G, D = self.cfg, self.G, self.D
        index = distributed.shard(self.dist, self.order.indices(step))
        self.real_batches = step + 1
        real = to_float(self.images.index_select(0, index), channels_last=True)  # (B, C, H, W) in [-1, 1]
        caption = self.caption_index.index_select(0, index)  # (B,) which distinct caption
        phi = self.embeddings.index_select(0, caption)  # (B, 384)
        phi_wrong = phi.roll(1, 0)  # another item's caption for each real image
        B = len(index)
        z, eps = self.draw(B, G.latent_dim, cfg.model.prior), self.draw(B, G.cond_dim)
        with self.autocast():
            fake, mu, logvar = G(z, phi, eps)
        fake = fake.float()
        # D step: real with its caption "real"; real with a wrong caption and fake with its own "fake"
        self.opt_D.zero_grad(set_to_none=True)
        with self.autocast():
            h_real = D.features(real)
            l_real, l_wrong = D.judge(h_real, phi).float(), D.judge(h_real, phi_wrong).float()
            l_fake = D(fake.detach(), phi).float()
        loss_d = matching_aware_d_loss(l_real, l_wrong, l_fake)
        lam = cfg.text.contrastive
        same = caption[:, None] == caption[None, :] if lam > 0 else None  # (B, B) shared captions
        con_d = con_g = torch.zeros((), device=self.device)
        if lam > 0:  # XMC-GAN: D's space puts each real image nearest its own caption
            con_d = contrastive_loss(*D.embed(h_real, phi), same)
            loss_d = loss_d + lam * con_d
        self.descend(loss_d, self.opt_D, D)
        # G step: fool the updated D with the right caption, and (GAN-INT) on interpolated ones
        D.requires_grad_(False)
        self.opt_G.zero_grad(set_to_none=True)
        with self.autocast():
            h_fake = D.features(fake)
            loss_gan = g_loss(D.judge(h_fake, phi).float())
        if lam > 0:  # and G's images nearest theirs in it
            con_g = contrastive_loss(*D.embed(h_fake, phi), same)
        kl = ca_kl(mu, logvar)
        seeking = torch.zeros((), device=self.device)
        if cfg.text.mode_seeking > 0:  # MSGAN: half the batch again, other z, the same caption and eps
            h = max(1, B // 2)
            z_b = self.draw(h, G.latent_dim, cfg.model.prior)
            with self.autocast():
                fake_b = G(z_b, phi[:h], eps[:h])[0]
            seeking = mode_seeking(fake[:h], fake_b, z[:h], z_b)
        loss_int = torch.zeros((), device=self.device)
        if cfg.text.int_weight > 0:  # on half the batch: half the cost, the same expectation
            h = max(1, B // 2)
            phi_int = BETA * phi[:h] + (1 - BETA) * phi_wrong[:h]
            z2, eps2 = self.draw(h, G.latent_dim, cfg.model.prior), self.draw(h, G.cond_dim)
            with self.autocast():
                fake_int, mu2, logvar2 = G(z2, phi_int, eps2)
                loss_int = g_loss(D(fake_int.float(), phi_int).float())
            kl = 0.5 * (kl + ca_kl(mu2, logvar2))
        loss_g = (loss_gan + cfg.text.int_weight * loss_int + cfg.text.kl_weight * kl / G.cond_dim + lam * con_g
                  + cfg.text.mode_seeking * seeking)
        leak = torch.zeros((), device=self.device)
        if cfg.text.split_decor > 0 and isinstance(G.net, FusedGenerator):  # the place read by the where alone
            leak = G.net.place_leak(mu)
            loss_g = loss_g + cfg.text.split_decor * leak
        self.descend(loss_g, self.opt_G, G)
        D.requires_grad_(True)
        self.update_ema(step)
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(), "d_real": d_probability(l_real),
                "d_fake": d_probability(l_fake), "grad_g": grad_norm(G), "grad_d": grad_norm(D),
                "d_wrong": d_probability(l_wrong), "loss_g_gan": loss_gan.detach(),
                "loss_int": loss_int.detach(), "kl": kl.detach(),
                **({"contrastive_d": con_d.detach(), "contrastive_g": con_g.detach()} if lam > 0 else {}),
                **({"place_leak": leak.detach()} if cfg.text.split_decor > 0 else {}),
                **({"mode_seeking": seeking.detach()} if cfg.text.mode_seeking > 0 else {})}

    @torch.no_grad()
    def update_ema(self, step: int) -> None:
        """The moving average of G's weights (as the GAN's, ``TrainState.update_ema``)."""
        if self.G_ema is None:
            return
        lerp_ema(self.G_ema, self.G, ema_decay(Schedule(self.cfg, self.dist.world), step))

    # ------------------------------------------------------------------ checkpoint round trip

    def nets(self) -> dict[str, nn.Module]:
        return {"G": self.G, "D": self.D, **({"G_ema": self.G_ema} if self.G_ema is not None else {})}

    def checkpoint(self) -> tuple[dict[str, Tensor], dict[str, Tensor], dict[str, Any]]:
        model = {f"{name}.{k}": v for name, net in self.nets().items() for k, v in net.state_dict().items()}
        tG, mG = optimizer_to_flat("opt_G", self.opt_G)
        tD, mD = optimizer_to_flat("opt_D", self.opt_D)
        meta = {"real_batches": self.real_batches, "optim": {"opt_G": mG, "opt_D": mD},
                # self-describing: `gankit sample --text` rebuilds G from it and the config
                "text2image": {"shape": list(self.shape.dims), "text_dim": TEXT_DIM, "encoder": MODEL_ID,
                               "data": self.data_name, "items": self.n_items, "captions": self.captions_key,
                               "builtin": self.builtin, "vocabulary": self.vocabulary}}
        return model, {**tG, **tD, "rng.z": self.z_gen.get_state()}, meta

    def check_resume(self, meta: dict[str, Any]) -> None:
        saved = meta["text2image"]
        if saved["shape"] != list(self.shape.dims) or saved["captions"] != self.captions_key:
            raise GankitError(f"the data now give {self.n_items} items of {list(self.shape.dims)}, other than the "
                              f"{saved['items']} items of {saved['shape']} this run was trained on; resume with "
                              "the same data")

    def validate_checkpoint(self, ckpt: Checkpoint) -> None:
        check_text_meta(ckpt)
        check_players(ckpt, self.nets(), {"opt_G": self.opt_G, "opt_D": self.opt_D})
        check_rng(ckpt, "rng.z", self.z_gen)

    def restore(self, ckpt: Checkpoint) -> None:
        with restoring(ckpt):
            self.real_batches = load_players(ckpt, self.nets(), {"opt_G": self.opt_G, "opt_D": self.opt_D})
            self.z_gen.set_state(ckpt.train["rng.z"])
            self.precision = resumed_precision(self.cfg.train.precision, self.precision, ckpt.meta)

    def optimizers(self) -> list[torch.optim.Optimizer]:
        return [self.opt_G, self.opt_D]

    def generators(self) -> list[torch.Generator]:
        return [self.z_gen]  # every z and eps of training (the data order is a function of the step)

    # ------------------------------------------------------------------ watching and scoring

    def save_samples(self, path: Path, step: int) -> None:
        """One row per caption (named on the left), one column per fixed noise (z, eps)."""
        x = generate(self.G_sample, self.grid_phi, self.grid_z, self.grid_eps)
        save_grid(x.cpu(), path, nrow=COLUMNS, row_labels=self.row_labels)

    @torch.no_grad()
    def probe(self) -> dict[str, float]:
        """``diversity`` (``CaptionProbe``): how varied G's draws of each of the probe's captions are (their
        mean pairwise distance, images pooled to 16x16, averaged over the captions), against the real
        images that share each caption (1 = as varied). A G that draws one image per caption whatever
        its noise reads 0, however varied its images are across captions: the diagnosis calls it mode
        collapse. {} where no two images share a caption (a folder of one caption per image)."""
        if self.caption_probe is None:
            return {}
        return {"diversity": round(self.caption_probe.read(self.G_sample), 4)}

    def default_eval_key(self) -> str:
        return "acc" if self.builtin else "fid"

    def higher_is_better(self, key: str) -> bool:
        from gankit.metrics.text2image import higher_is_better

        return higher_is_better(key)

    def evaluate(self, key: str) -> dict[str, float]:
        """Built-in set: for each test split's first eval.eval_n captions, how often the class,
        position, size and brightness read off G's images are the caption's, and the FID of the
        items' crops against the real ones (test-seen); a folder: the FID against its images."""
        from gankit.metrics.text2image import SPLIT_SUFFIX, real_features, score_split

        values: dict[str, float] = {} if self.builtin else self._folder_fid()
        for k, split in enumerate(HELDOUT_SPLITS if self.builtin else ()):
            data, phi = self._heldout(split)
            real = None
            if split == "test-seen":  # the FID on the seen split only: one reference set
                if split not in self.real_features:
                    self.real_features[split] = real_features(data.images, self.device)
                real = self.real_features[split]
            assert data.attrs is not None
            values |= score_split(self.G_sample, self.cfg.model.prior, data.attrs, phi, EVAL_SEED + k,
                                  self.device, SPLIT_SUFFIX[split], real)
        if key not in values:
            raise GankitError(f"eval.eval_metric {key} is not produced for this data; it gives {', '.join(values)}")
        return values

    def _folder_fid(self) -> dict[str, float]:
        """The FID of G's images for the folder's first eval.eval_n captions against their images,
        in eval.eval_features' features."""
        from gankit.metrics import get_extractor
        from gankit.metrics.text2image import fid_of_features

        n = min(self.n_items, self.cfg.eval.eval_n)
        if n < 2:
            raise GankitError("the FID needs at least 2 items; raise eval.eval_n")
        ext = get_extractor(self.cfg.eval.eval_features, self.device)
        phi = self.embeddings[self.caption_index[:n]]
        z, eps = noise(n, self.G_sample, self.cfg.model.prior, EVAL_SEED)
        fake = generate(self.G_sample, phi, z, eps)
        if "train" not in self.real_features:
            self.real_features["train"] = ext.features_and_logits(to_float(self.images[:n]))[0]
        return {"fid": fid_of_features(ext.features_and_logits(fake)[0], self.real_features["train"])}

    def result(self, run_dir: Path, step: int, history: list[dict[str, Any]]) -> TextRun:
        return TextRun(run_dir, self.G_sample, self.D, self.cfg, step, history, self.reader)


__all__ = ["Text2ImageTask", "TextRun", "grid_rows"]
