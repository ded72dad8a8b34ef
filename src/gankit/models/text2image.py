"""Networks of text -> image (GAN-INT-CLS, Reed et al. 2016) with conditioning augmentation
(StackGAN, Zhang et al. 2017), DCGAN-sized (Radford et al. 2015) for small images.

G(z, phi(t)): the caption's sentence embedding phi(t) (384 numbers, frozen: gankit.data.text_encoder),
centred, projected on the training captions' principal directions and scaled (``TextNorm``),
goes through conditioning
augmentation, one linear layer to (mu, log sigma^2) and a draw
c = mu + sigma * eps, eps ~ N(0, I); [z, c] then feeds a DCGAN generator (one projection to a
(h0, w0) map, stride-2 transposed convolutions, batch norm, ReLU, tanh out). The draw makes many
codes per caption (smoother conditioning manifold); a KL(N(mu, sigma^2) || N(0, I)) term keeps it
so (``gankit.losses.text2image.ca_kl``). G's ``fusion`` says where else it reads c: in every batch
norm's scale and shift (``affine``, ``FusedGenerator``), and also in a first layer that draws a
what and places it where the caption says (``where``, ``WhatWhere``); ``split`` is ``where`` with c
split in two (``CodeSplit``): the where reads a few learned directions of c, the rest of G reads
c without them (meant to keep the place out of what G draws; measured, it does not: the place is
spread beyond those directions, docs/BENCHMARKS.md).

D(x, phi(t)): a DCGAN discriminator trunk down to the (h0, w0) map (6x6 for 48 px, 4x4 for 64 px);
the caption's embedding (centred and scaled, ``TextNorm``) compressed by a linear layer and a leaky ReLU, replicated over the map and
concatenated to it in depth; a 1x1 convolution with a leaky ReLU, then one convolution over the
whole map gives the logit (Reed et al. 2016, section 4.1). To it is added a projection term
(Miyato & Koyama 2018, cGANs with projection discriminator): the inner product of the map's mean
over its positions with a linear image of the compressed caption, which makes D's answer depend on
the caption directly. The trunk sees the image alone, so a
real image is judged with its own and with a wrong caption from one pass of the trunk (``features``
then ``judge``); the text head holds no batch norm, so both are judged alike.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit.models.base import DataShape, init_dcgan_weights
from gankit.models.dcgan import DCGANDiscriminator, DCGANGenerator, Project, Readout, dcgan_plan

ARCH = "gan-int-cls"  # model.arch of text -> image
TEXT_PROJ = 128  # D's compressed caption (Reed et al. 2016: 128)
DEFAULT_WIDTH = 32  # G's last hidden layer, D's first (DCGAN's default in gankit)


class TextNorm(nn.Module):
    """The caption embeddings centred, projected on the principal subspace of the training
    captions' embeddings and scaled: ((phi - mean) @ basis) / scale, ``basis`` (text_dim, dims)
    their ``dims`` principal directions and ``scale`` the root of their mean variance along them
    (one number: the subspace's geometry is kept). Sentence embeddings of captions that share most
    of their words differ by small directions (cosine 0.9 and more); centred and scaled, those
    directions are what the layers after it see, and what a new wording adds outside the span of
    the training captions (half of its norm, for captioned-fashion's held-out wordings) is dropped
    instead of sending G where it never trained. Buffers, set once from the data (``set_stats``)
    and saved with the weights."""

    def __init__(self, text_dim: int, dims: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(text_dim))
        self.register_buffer("basis", torch.eye(text_dim, dims))
        self.register_buffer("scale", torch.ones(()))

    @torch.no_grad()
    def set_stats(self, embeddings: Tensor) -> None:
        """``mean``, ``basis`` and ``scale`` from the embeddings (N, text_dim) of the training captions."""
        x = embeddings.double()
        mean = x.mean(0)
        cov = (x - mean).T @ (x - mean) / max(1, len(x))
        values, vectors = torch.linalg.eigh(cov)  # ascending
        k = self.basis.shape[1]
        top, basis = values.flip(0)[:k], vectors.flip(1)[:, :k]
        basis = basis * torch.where(basis.sum(0) < 0, -1.0, 1.0)  # a fixed sign per direction
        self.mean.copy_(mean.float())
        self.basis.copy_(basis.float())
        self.scale.copy_(top.clamp(min=0).mean().sqrt().clamp(min=1e-6).float())

    def forward(self, phi: Tensor) -> Tensor:
        return ((phi.float() - self.mean) @ self.basis) / self.scale


class CondAugment(nn.Module):
    """Conditioning augmentation (Zhang et al. 2017, section 3.1): phi -> (mu, log sigma^2) by one
    linear layer; the code is c = mu + sigma * eps for the noise ``eps`` (B, cond_dim) given."""

    def __init__(self, text_dim: int, cond_dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(text_dim, 2 * cond_dim)
        self.cond_dim = cond_dim

    def forward(self, phi: Tensor, eps: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(c, mu, logvar), each (B, cond_dim)."""
        mu, logvar = self.fc(phi).float().chunk(2, 1)
        return mu + (0.5 * logvar).exp() * eps, mu, logvar


class TextAffine(nn.Module):
    """Batch norm whose per-channel scale and shift are made from the text code c (B, cond_dim):
    BN(h) * (1 + gamma(c)) + beta(c), gamma and beta one linear layer (conditional batch norm, de
    Vries et al. 2017, as BigGAN conditions every layer of G on the class; DF-GAN's text fusion,
    Tao et al. 2022). The layer starts at zero, so G starts as the plain DCGAN; its bias is the
    plain batch norm's own scale and shift."""

    def __init__(self, ch: int, cond_dim: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(ch, affine=False)
        self.fc = nn.Linear(cond_dim, 2 * ch)

    def reset(self) -> None:
        nn.init.zeros_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)

    def forward(self, h: Tensor, c: Tensor) -> Tensor:
        gamma, beta = self.fc(c).to(h.dtype)[:, :, None, None].chunk(2, 1)  # (B, ch, 1, 1) each
        return self.bn(h) * (1 + gamma) + beta


class WrapUp(nn.ConvTranspose2d):
    """DCGAN's upsampling layer (4x4 transposed convolution, stride 2, (B, ci, n, m) -> (B, co, 2n,
    2m)) on a map that wraps around at its edges (a torus): the input is padded by one cell of its
    own opposite side, and the full output cropped back to 2n x 2m. Why: with zero padding a
    feature near an edge sees the zeros, so the layers can tell where on the canvas they are, and a
    caption's code, read in the batch norms, can select features that only appear at some places
    (measured on captioned-fashion, docs/BENCHMARKS.md: G draws, at a place it never drew a class
    at, the class it saw there). On a torus the layer is exactly equivariant to shifts (by one cell
    in, two out): only the first layer's where can put anything anywhere. Same weights and
    state-dict keys as ``nn.ConvTranspose2d(ci, co, 4, 2, 1)``."""

    def __init__(self, ci: int, co: int) -> None:
        super().__init__(ci, co, 4, 2, 0, bias=False)

    def forward(self, x: Tensor, output_size: list[int] | None = None) -> Tensor:
        # padded (n + 2) -> full output 2(n + 1) + 4 = 2n + 6; input cell i lands at 2i + 2 + k,
        # and the zero-padded layer's output starts at its full output's 1, here 3
        full = F.conv_transpose2d(F.pad(x, (1, 1, 1, 1), mode="circular"), self.weight, None, 2)
        return full[:, :, 3:-3, 3:-3]


class WhatWhere(nn.Module):
    """G's first layer drawn as *what* and *where* (the idea of Reed, Akata, Mohan et al. 2016,
    "Learning What and Where to Draw", whose G replicates the text's features inside the object's
    box; there the box is given, here the caption says it): [z, c] ->
    a (ch, k, k) patch of features, the what; c -> a softmax over the (h0, w0) map's positions, the
    where; the map is the patch placed by the where (the where convolved with the patch), (B, ch,
    h0, w0). Why: the first layer of DCGAN's G has its own weights at every position, so the
    caption's class is drawn at a position by weights trained on that class there; a class never
    seen at a place has none (captioned-fashion's held-out combinations). Here one patch serves every
    place, and the where only says where it goes."""

    def __init__(self, in_dim: int, cond_dim: int, ch: int, size: tuple[int, int], k: int = 5,
                 wrap: bool = False) -> None:
        super().__init__()
        self.ch, self.size, self.k, self.wrap = ch, size, k, wrap
        self.what = nn.Linear(in_dim, ch * k * k, bias=False)
        self.where = nn.Linear(cond_dim, size[0] * size[1])

    def forward(self, zc: Tensor, c: Tensor) -> Tensor:
        B, (h0, w0) = zc.shape[0], self.size
        patch = self.what(zc).view(B * self.ch, 1, self.k, self.k)  # each sample's what
        where = torch.softmax(self.where(c).float(), 1).to(zc.dtype).view(1, B, h0, w0)  # sums to 1 per sample
        # one group per sample: its where (1 channel) convolved with its own ch patches; ``wrap``: a
        # patch placed at an edge wraps around (the map is a torus, as ``WrapUp``'s), else is cut
        p = self.k // 2
        h = (F.conv2d(F.pad(where, (p, p, p, p), mode="circular"), patch, groups=B) if self.wrap
             else F.conv2d(where, patch, padding=p, groups=B))  # (1, B * ch, h0, w0)
        return h.view(B, self.ch, h0, w0)


class CodeSplit(nn.Module):
    """c (B, cond_dim) -> (c_where (B, r), c_what (B, cond_dim)): c's coordinates on r learned
    orthonormal directions (the columns of Q, the QR basis of a learned (cond_dim, r) matrix), and c
    with those directions removed, c - (c Q) Q^T. Why: in captioned-fashion's held-out combinations
    G draws, at a place it never drew a class at, the class it saw there (docs/BENCHMARKS.md): the
    layers that draw the item read the caption whole, place included, and learn which classes go
    where. Given c_what they cannot see what the where sees. The split is learned from the losses
    alone: the where pulls the directions toward the place, and the what, which loses them, pushes
    them off everything else it needs. Measured on captioned-fashion (docs/BENCHMARKS.md), the
    directions the where needs are not all of the place: c_what still carries it, and G still
    places the item from it (``FusedGenerator.place_leak`` penalises what of it is linear)."""

    def __init__(self, cond_dim: int, r: int) -> None:
        super().__init__()
        if not 0 < r < cond_dim:
            raise ValueError(f"the where's directions ({r}) must be between 1 and the code's size ({cond_dim}) - 1")
        self.V = nn.Parameter(torch.randn(cond_dim, r) / cond_dim ** 0.5)

    def forward(self, c: Tensor) -> tuple[Tensor, Tensor]:
        Q = torch.linalg.qr(self.V.float())[0]  # (cond_dim, r), orthonormal columns
        c_where = c.float() @ Q  # (B, r)
        return c_where.to(c.dtype), (c.float() - c_where @ Q.T).to(c.dtype)


class FusedGenerator(nn.Module):
    """DCGAN's generator (``DCGANGenerator``'s layers and shapes) whose every batch norm is a
    ``TextAffine`` of the text code: [z, c] -> image, and c again at each scale. Why: the scale
    and shift are the same at every position, so the caption says *what* is drawn at each layer
    the same way wherever the first layer put it; a class never seen at a place is still drawn as
    that class (the held-out combinations of captioned-fashion). With ``where`` the first layer is
    ``WhatWhere``'s instead of DCGAN's projection; with ``where_dims`` r > 0 too, the where reads
    c's coordinates on r learned directions and every other layer c without them (``CodeSplit``).
    With ``wrap`` every layer after the first treats its map as a torus (``WrapUp``), so with
    ``where`` the where alone can place the item."""

    def __init__(self, shape: DataShape, latent_dim: int, cond_dim: int, width: int, where: bool = False,
                 where_dims: int = 0, where_patch: int = 5, wrap: bool = False) -> None:
        super().__init__()
        c, h, w = shape.dims
        h0, w0, n = dcgan_plan(h, w)
        ch = width * 2 ** (n - 1)
        self.split = CodeSplit(cond_dim, where_dims) if where and where_dims else None
        # [z, c] -> (B, ch, h0, w0)
        self.project: nn.Module = (WhatWhere(latent_dim + cond_dim, where_dims or cond_dim, ch, (h0, w0),
                                             where_patch, wrap) if where
                                   else Project(latent_dim + cond_dim, ch, (h0, w0), 1, 0, bias=False))
        self.norms = nn.ModuleList([TextAffine(ch, cond_dim)])
        self.ups = nn.ModuleList()
        for _ in range(n - 1):  # (B, ch, s, t) -> (B, ch/2, 2s, 2t)
            self.ups.append(WrapUp(ch, ch // 2) if wrap else nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False))
            self.norms.append(TextAffine(ch // 2, cond_dim))
            ch //= 2
        self.out = WrapUp(ch, c) if wrap else nn.ConvTranspose2d(ch, c, 4, 2, 1, bias=False)  # -> (B, c, h, w)
        self.apply(init_dcgan_weights)
        for norm in self.norms:
            norm.reset()

    def place_leak(self, c: Tensor) -> Tensor:
        """How much the rest of the codes c (B, cond_dim) of a batch tells of the where's choice:
        the squared correlation, over the batch, of each direction of the rest with each position's
        weight in the where's softmax (held fixed), summed over positions, averaged over directions
        (0: nothing linear; ``split`` only). Penalised in G's loss (``--split-decor``), it asks the
        rest of the code to leave the place to the where's directions alone."""
        assert self.split is not None and isinstance(self.project, WhatWhere), "split fusion only"
        c_where, rest = self.split(c)
        where = torch.softmax(self.project.where(c_where).float(), 1).detach()  # (B, h0 * w0)
        r, w = rest.float() - rest.float().mean(0), where - where.mean(0)
        r, w = r / (r.norm(dim=0) + 1e-6), w / (w.norm(dim=0) + 1e-4)  # columns of unit length
        return (r.T @ w).square().sum(1).mean()  # (cond_dim, h0 * w0) correlations

    def forward(self, z: Tensor, c: Tensor) -> Tensor:
        c_where, c = self.split(c) if self.split is not None else (c, c)  # c: what the rest of G reads
        return self.draw(z, c_where, c)

    def draw(self, z: Tensor, c_where: Tensor, c: Tensor) -> Tensor:
        """The image of z with the where reading ``c_where`` and the rest of G ``c`` (``forward``
        after the split; the two may come from different captions, as bench/text2image_composition.py
        gives them)."""
        zc = torch.cat([z, c], 1)
        h = self.project(zc, c_where) if isinstance(self.project, WhatWhere) else self.project(zc)
        h = torch.relu(self.norms[0](h, c))
        for up, norm in zip(self.ups, self.norms[1:], strict=True):
            h = torch.relu(norm(up(h), c))
        return torch.tanh(self.out(h))


class TextGenerator(nn.Module):
    """G(z, phi, eps) -> (images (B, C, H, W) in [-1, 1], mu, logvar). ``fusion``: where G reads
    the text code c: ``input`` (beside z, Reed et al. 2016), ``affine`` (there and in every batch
    norm's scale and shift, ``FusedGenerator``), ``where`` (that, and a first layer that draws a
    what and places it, ``WhatWhere``) or ``split`` (``where`` with the where reading ``where_dims``
    learned directions of c and the rest of G c without them, ``CodeSplit``); ``pad``: ``zero`` or
    ``wrap`` (the fused G's maps as tori, ``WrapUp``)."""

    def __init__(self, shape: DataShape, latent_dim: int, text_dim: int, cond_dim: int, width: int,
                 text_dims: int = 384, fusion: str = "input", where_dims: int = 8, where_patch: int = 5,
                 pad: str = "zero") -> None:
        super().__init__()
        self.shape, self.latent_dim, self.text_dim, self.cond_dim = shape, latent_dim, text_dim, cond_dim
        self.norm = TextNorm(text_dim, text_dims)
        # torch's fan-in initialisation (not DCGAN's N(0, 0.02)): mu's spread is then about the same
        # whatever text_dims is, and large beside eps from the first step
        self.ca = CondAugment(text_dims, cond_dim)
        # [z, c] -> image (``input`` keeps the state-dict keys of runs from before ``fusion``)
        self.net = (DCGANGenerator(shape, latent_dim + cond_dim, width) if fusion == "input"
                    else FusedGenerator(shape, latent_dim, cond_dim, width, where=fusion in ("where", "split"),
                                        where_dims=where_dims if fusion == "split" else 0,
                                        where_patch=where_patch, wrap=pad == "wrap"))

    def forward(self, z: Tensor, phi: Tensor, eps: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        c, mu, logvar = self.ca(self.norm(phi), eps)
        c = c.to(z.dtype)
        x = self.net(z, c) if isinstance(self.net, FusedGenerator) else self.net(torch.cat([z, c], 1))
        return x, mu, logvar


class TextDiscriminator(nn.Module):
    """D(x, phi) -> logits (B,); ``features(x)`` then ``judge(h, phi)`` is the same in two parts."""

    def __init__(self, shape: DataShape, text_dim: int, width: int, text_dims: int = 384,
                 contrastive: bool = False) -> None:
        super().__init__()
        h0, w0, n = dcgan_plan(*shape.dims[1:])
        ch = width * 2 ** (n - 1)
        # the DCGAN trunk without its readout: (B, C, H, W) -> (B, ch, h0, w0)
        self.trunk = nn.Sequential(*list(DCGANDiscriminator(shape, width).net)[:-1])
        self.text = nn.Sequential(TextNorm(text_dim, text_dims), nn.Linear(text_dims, TEXT_PROJ),
                                  nn.LeakyReLU(0.2, True))
        self.joint = nn.Sequential(nn.Conv2d(ch + TEXT_PROJ, ch, 1, bias=False), nn.LeakyReLU(0.2, True))
        self.readout = Readout(ch, 1, (h0, w0), 1, 0, bias=False)
        self.project = nn.Linear(TEXT_PROJ, ch, bias=False)  # the projection term's caption vector
        for m in (self.joint, self.readout, self.project):  # the caption's layer: fan-in (as G's)
            m.apply(init_dcgan_weights)
        # XMC-GAN's (Zhang et al. 2021) shared space of image and sentence, for the contrastive term:
        # only when it is trained, so a run without it keeps the same weights as before
        self.embed_image = nn.Linear(ch, TEXT_PROJ) if contrastive else None
        self.embed_text = nn.Linear(TEXT_PROJ, TEXT_PROJ) if contrastive else None

    def features(self, x: Tensor) -> Tensor:
        """The image's map (B, ch, h0, w0): what D sees before the caption."""
        return self.trunk(x)

    def judge(self, h: Tensor, phi: Tensor) -> Tensor:
        """Logits (B,) of the maps ``h`` with the captions' embeddings ``phi`` (B, text_dim)."""
        t = self.text(phi.to(h.dtype))  # (B, 128)
        tiled = t[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3])  # replicated spatially
        concat = self.readout(self.joint(torch.cat([h, tiled.to(h.dtype)], 1)))  # Reed et al.'s head
        projection = (h.mean((2, 3)) * self.project(t).to(h.dtype)).sum(1)  # Miyato & Koyama's term
        return concat + projection

    def forward(self, x: Tensor, phi: Tensor) -> Tensor:
        return self.judge(self.features(x), phi)

    def embed(self, h: Tensor, phi: Tensor) -> tuple[Tensor, Tensor]:
        """(image, sentence) embeddings (B, 128) in the contrastive term's shared space: the image's
        map ``h`` pooled over its positions, the caption through D's text layer (needs ``contrastive``)."""
        assert self.embed_image is not None and self.embed_text is not None, "built without contrastive"
        return self.embed_image(h.mean((2, 3)).float()), self.embed_text(self.text(phi.to(h.dtype)).float())


def build_text2image(shape: DataShape, latent_dim: int, text_dim: int, cond_dim: int, width: int | None,
                     embeddings: Tensor | None = None, text_dims: int = 384,
                     contrastive: bool = False, fusion: str = "input",
                     where_dims: int = 8, where_patch: int = 5,
                     g_pad: str = "zero") -> tuple[TextGenerator, TextDiscriminator]:
    """(G, D) for images of ``shape`` (each side divisible by 4, the smaller at least 16), reading
    ``text_dims`` principal directions of the captions' embeddings, G reading the text code as
    ``fusion`` says (``TextGenerator``; ``where_dims``: the where's share of it under ``split``;
    ``where_patch``: the side of the what's patch under ``where`` and ``split``; ``g_pad``: how G's
    maps end, ``zero`` or ``wrap``, a torus, ``WrapUp``);
    with the training captions' ``embeddings`` (N, text_dim), their ``TextNorm`` set from them."""
    w = width or DEFAULT_WIDTH
    if g_pad != "zero" and fusion == "input":
        raise ValueError(f"G's padding {g_pad!r} needs a fused G (fusion affine, where or split), not input")
    G = TextGenerator(shape, latent_dim, text_dim, cond_dim, w, text_dims, fusion, where_dims, where_patch, g_pad)
    D = TextDiscriminator(shape, text_dim, w, text_dims, contrastive)
    if embeddings is not None:
        for m in (*G.modules(), *D.modules()):
            if isinstance(m, TextNorm):
                m.set_stats(embeddings)
    return G, D


def noise(n: int, G: TextGenerator, prior: str, seed: int) -> tuple[Tensor, Tensor]:
    """(z (n, latent_dim) from the prior, eps (n, cond_dim) ~ N(0, I)) drawn on the CPU from ``seed``:
    the same samples on any device."""
    from gankit.models import sample_prior

    g = torch.Generator().manual_seed(seed)
    z = sample_prior(prior, n, G.latent_dim, generator=g)
    return z, torch.randn(n, G.cond_dim, generator=g)


def generate(G: TextGenerator, phi: Tensor, z: Tensor, eps: Tensor, batch_size: int = 500) -> Tensor:
    """G's images (N, C, H, W) float32 in [-1, 1] for embeddings ``phi`` (N, text_dim), in eval mode
    (batch norm's running statistics), in batches; on G's device."""
    from gankit.nn_util import evaluating

    device = next(G.parameters()).device
    out = []
    with evaluating(G):
        for i in range(0, len(phi), batch_size):
            sl = slice(i, i + batch_size)
            out.append(G(z[sl].to(device), phi[sl].to(device), eps[sl].to(device))[0].float())
    return torch.cat(out) if out else torch.zeros(0, *G.shape.dims, device=device)


__all__ = ["ARCH", "DEFAULT_WIDTH", "CodeSplit", "CondAugment", "FusedGenerator", "TextAffine", "TextNorm", "TextDiscriminator",
           "TextGenerator", "WhatWhere", "build_text2image",
           "generate", "noise"]
