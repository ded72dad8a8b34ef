"""Class-conditional G and D around any architecture of the catalogue whose D ends in ``net[-1]``.

G(z, y): the label's embedding is concatenated to z (Mirza & Osindero 2014), so the base G is
built for ``latent_dim + embed_dim`` inputs. Three ways for D to use the label, by name:

- ``cgan`` (Mirza & Osindero 2014): y enters D's input, as one constant plane per class (one-hot
  maps) beside the image's channels (or one-hot features beside a point's coordinates);
- ``acgan`` (Odena et al. 2017): D does not see y; a second head classifies samples, trained on
  the real data's labels, and G is also scored by how surely that head gives its fakes class y;
- ``projection`` (Miyato & Koyama 2018, eq. 3): D(x, y) = psi(phi(x)) + <embed(y), phi(x)>, the
  inner product of the label's embedding with D's last features.

Every conditional D has one contract, ``D(x, y) -> (logits (B,), class_logits (B, K) or None)``:
only ACGAN's second item is a tensor, and the trainer adds its cross-entropy when it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit.errors import GankitError
from gankit.models.base import Builder, DataShape, DSpec
from gankit.nn_util import apply_spectral_norm
from gankit.registry import Registry


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
    """(x, y) -> (logits (B,), None): the base D, built for C + K input channels, sees x and y's
    one-hot planes."""

    def __init__(self, base: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.base, self.num_classes = base, num_classes

    def forward(self, x: Tensor, y: Tensor) -> tuple[Tensor, None]:
        onehot = F.one_hot(y, self.num_classes).to(x.dtype)  # (B, K)
        if x.dim() == 4:  # images: (B, K, H, W) constant planes
            onehot = onehot[:, :, None, None].expand(-1, -1, *x.shape[2:])
        return self.base(torch.cat([x, onehot], 1)), None


class ACGANDiscriminator(nn.Module):
    """x -> (real/fake logit (B,), class logits (B, K)): two heads on one trunk."""

    def __init__(self, base: nn.Module, num_classes: int, feature_dim: int) -> None:
        super().__init__()
        self.trunk, self.head = _split(base)
        self.classify = nn.Linear(feature_dim, num_classes)
        self.num_classes = num_classes

    def forward(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        h = self.trunk(x)  # (B, ...) D's last features
        return self.head(h).reshape(x.shape[0]), self.classify(h.flatten(1))


class ProjectionDiscriminator(nn.Module):
    """(x, y) -> (psi(phi(x)) + <embed(y), phi(x)> (B,), None)."""

    def __init__(self, base: nn.Module, num_classes: int, feature_dim: int) -> None:
        super().__init__()
        self.trunk, self.head = _split(base)
        self.embed = nn.Embedding(num_classes, feature_dim)
        nn.init.normal_(self.embed.weight, 0.0, 0.02)
        self.num_classes = num_classes

    def forward(self, x: Tensor, y: Tensor) -> tuple[Tensor, None]:
        h = self.trunk(x)  # phi(x)
        return self.head(h).reshape(x.shape[0]) + (self.embed(y) * h.flatten(1)).sum(1), None


def feature_dim(base_D: nn.Module, shape: tuple[int, ...]) -> int:
    """Size of D's last features (the input of its logit layer) for one sample of ``shape``."""
    trunk, _ = _split(base_D)
    was = trunk.training
    trunk.eval()
    with torch.no_grad():
        n = trunk(torch.zeros(2, *shape)).flatten(1).shape[1]
    trunk.train(was)
    return n


# --------------------------------------------------------------------------- the conditionings


@dataclass(frozen=True)
class ConditionalRequest:
    """What a conditioning needs to build a class-conditional (G, D) pair: the architecture's
    builder, the data's shape, and the sizes and D's cures a run asks for (no packing: a pack of
    samples has no one label)."""

    build: Builder
    shape: DataShape
    latent_dim: int
    width: int | None
    num_classes: int
    embed_dim: int  # the label embedding's size beside z (K when none was asked for)
    mbstd: bool = False
    spectral_norm: bool = False

    def g_and_base_d(self) -> tuple[ConditionalG, nn.Module]:
        """G(z, y) = base G of cat(z, embed(y)), and the base D built beside it (one call to the
        builder: G's parameters are drawn first, as for an unconditional pair)."""
        G, D = self.build(self.shape, self.latent_dim + self.embed_dim, self.width, DSpec(1, self.mbstd))
        return ConditionalG(G, self.num_classes, self.embed_dim), D

    def cured(self, D: nn.Module) -> nn.Module:
        """D with the cures that apply to its layers (spectral norm), before a head is added."""
        if self.spectral_norm:
            apply_spectral_norm(D)
        return D


ConditionalBuilder = Callable[[ConditionalRequest], tuple[nn.Module, nn.Module]]


def build_cgan(r: ConditionalRequest) -> tuple[nn.Module, nn.Module]:
    """Mirza & Osindero 2014: D is built for the sample's channels plus K one-hot planes."""
    G, _ = r.g_and_base_d()
    c, *rest = r.shape.dims
    _, D = r.build(DataShape((c + r.num_classes, *rest)), r.latent_dim, r.width, DSpec(1, r.mbstd))
    return G, CGANDiscriminator(r.cured(D), r.num_classes)


def build_acgan(r: ConditionalRequest) -> tuple[nn.Module, nn.Module]:
    """Odena et al. 2017: D's trunk feeds its real/fake head and a class head."""
    G, D = r.g_and_base_d()
    D = r.cured(D)
    return G, ACGANDiscriminator(D, r.num_classes, feature_dim(D, r.shape.dims))


def build_projection(r: ConditionalRequest) -> tuple[nn.Module, nn.Module]:
    """Miyato & Koyama 2018: D's logit plus the inner product of embed(y) with D's last features."""
    G, D = r.g_and_base_d()
    D = r.cured(D)
    return G, ProjectionDiscriminator(D, r.num_classes, feature_dim(D, r.shape.dims))


CONDITIONINGS: Registry[ConditionalBuilder] = Registry("conditioning", "conditionings (--conditional)")
CONDITIONINGS.register("cgan", build_cgan,
                       "the label enters D's input as one-hot planes, and G's beside z (Mirza & Osindero 2014)")
CONDITIONINGS.register("acgan", build_acgan,
                       "D classifies its inputs with a second head, G is scored by it (Odena et al. 2017)")
CONDITIONINGS.register("projection", build_projection,
                       "D's logit plus <embed(y), D's features>: projection D (Miyato & Koyama 2018)")


def default_labels(n: int, num_classes: int, device: torch.device | str = "cpu") -> Tensor:
    """0, 1, ..., K-1, 0, 1, ...: n labels spread evenly over the classes (evaluation and sampling
    of a conditional G when no class is asked for: the balanced marginal of a labelled set)."""
    return torch.arange(n, device=device) % num_classes


def class_rows(num_classes: int, per_row: int, max_rows: int = 16) -> Tensor:
    """Labels of a class-per-row grid: row r holds ``per_row`` samples of class r (at most
    ``max_rows`` classes)."""
    return torch.arange(min(num_classes, max_rows)).repeat_interleave(per_row)


def num_classes_of(net: nn.Module) -> int:
    """K for a class-conditional G or D, 0 for an unconditional one."""
    conditional = (ConditionalG, CGANDiscriminator, ACGANDiscriminator, ProjectionDiscriminator)
    return net.num_classes if isinstance(net, conditional) else 0


def class_names(num_classes: int, classes: list[str] | None) -> list[str]:
    """The classes' names, or their indices as text when the data do not name them."""
    return list(classes) if classes else [str(i) for i in range(num_classes)]


def class_slug(name: str) -> str:
    """A class name as the command line and task names spell it: lower case, words joined by
    dashes ("T-shirt/top" -> "t-shirt-top", "Ankle boot" -> "ankle-boot")."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def parse_class(text: str, num_classes: int, classes: list[str] | None) -> int:
    """``--class NAME|INDEX`` -> the class index; a clear error naming the choices otherwise."""
    names = class_names(num_classes, classes)
    slugs = [class_slug(n) for n in names]  # "Ankle boot", "ankle-boot", "ANKLE_BOOT" alike
    if class_slug(text) in slugs:
        return slugs.index(class_slug(text))
    if text.isdigit() and int(text) < num_classes:
        return int(text)
    shown = ", ".join(f"{i} {n}" for i, n in enumerate(names[:20])) + (" ..." if num_classes > 20 else "")
    raise GankitError(f"class {text!r} is not one of this run's {num_classes} classes: {shown}")
