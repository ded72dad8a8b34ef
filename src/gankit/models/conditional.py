"""Class-conditional G and D around any architecture of the catalogue whose D ends in ``net[-1]``.

G(z, y): the label's embedding is concatenated to z (Mirza & Osindero 2014), so the base G is
built for ``latent_dim + embed_dim`` inputs. Three ways for D to use the label, by name:

- ``cgan`` (Mirza & Osindero 2014): y enters D's input, as one constant plane per class (one-hot
  maps) beside the image's channels (or one-hot features beside a point's coordinates);
- ``acgan`` (Odena et al. 2017): D does not see y; a second head classifies every sample, real or
  fake, and both players are also scored by that classifier's cross-entropy;
- ``projection`` (Miyato & Koyama 2018, eq. 3): D(x, y) = psi(phi(x)) + <embed(y), phi(x)>, the
  inner product of the label's embedding with D's last features.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit.errors import GankitError

CONDITIONINGS = ("cgan", "acgan", "projection")


class ConditionalG(nn.Module):
    """(z (B, latent_dim), y (B,) int64) -> samples: base G of cat(z, embed(y))."""

    def __init__(self, base: nn.Module, num_classes: int, embed_dim: int) -> None:
        super().__init__()
        self.base, self.embed = base, nn.Embedding(num_classes, embed_dim)
        self.num_classes = num_classes

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        return self.base(torch.cat([z, self.embed(y)], 1))


def _split(D: nn.Module) -> tuple[nn.Module, nn.Module]:
    net = getattr(D, "net", None)
    if not isinstance(net, nn.Sequential):
        raise GankitError(f"{type(D).__name__} has no `net` Sequential ending in its logit layer: "
                          "it cannot be made conditional")
    return net[:-1], net[-1]


class CGANDiscriminator(nn.Module):
    """(x, y) -> logit: the base D, built for C + K input channels, sees x and y's one-hot planes."""

    def __init__(self, base: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.base, self.num_classes = base, num_classes

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        onehot = F.one_hot(y, self.num_classes).to(x.dtype)  # (B, K)
        if x.dim() == 4:  # images: (B, K, H, W) constant planes
            onehot = onehot[:, :, None, None].expand(-1, -1, *x.shape[2:])
        return self.base(torch.cat([x, onehot], 1))


class ACGANDiscriminator(nn.Module):
    """x -> (real/fake logit (B,), class logits (B, K)): two heads on one trunk."""

    def __init__(self, base: nn.Module, num_classes: int, feature_dim: int) -> None:
        super().__init__()
        self.trunk, self.head = _split(base)
        self.classify = nn.Linear(feature_dim, num_classes)

    def forward(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        h = self.trunk(x)  # (B, ...) D's last features
        return self.head(h).reshape(x.shape[0]), self.classify(h.flatten(1))


class ProjectionDiscriminator(nn.Module):
    """(x, y) -> psi(phi(x)) + <embed(y), phi(x)> (B,)."""

    def __init__(self, base: nn.Module, num_classes: int, feature_dim: int) -> None:
        super().__init__()
        self.trunk, self.head = _split(base)
        self.embed = nn.Embedding(num_classes, feature_dim)
        nn.init.normal_(self.embed.weight, 0.0, 0.02)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        h = self.trunk(x)  # phi(x)
        return self.head(h).reshape(x.shape[0]) + (self.embed(y) * h.flatten(1)).sum(1)


def feature_dim(base_D: nn.Module, shape: tuple[int, ...]) -> int:
    """Size of D's last features (the input of its logit layer) for one sample of ``shape``."""
    trunk, _ = _split(base_D)
    was = trunk.training
    trunk.eval()
    with torch.no_grad():
        n = trunk(torch.zeros(2, *shape)).flatten(1).shape[1]
    trunk.train(was)
    return n
