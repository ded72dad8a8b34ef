"""Fully connected G and D: the networks of Goodfellow et al. 2014, for 2-D points and small images.

For points G's last layer is linear (the data are unbounded coordinates); for images it is tanh,
because images live in [-1, 1] inside gankit.
"""

from __future__ import annotations

from torch import Tensor, nn

from gankit.models.base import PLAIN_D, DataShape, DSpec, MinibatchStd


def _activation(act: type[nn.Module]) -> nn.Module:
    return nn.LeakyReLU(0.2) if act is nn.LeakyReLU else act()


class MLPGenerator(nn.Module):
    """z (B, latent_dim) -> hidden layers -> sample (B, *dims)."""

    def __init__(self, shape: DataShape, latent_dim: int, hidden: list[int],
                 act: type[nn.Module] = nn.LeakyReLU) -> None:
        super().__init__()
        self.shape, self.latent_dim = shape, latent_dim
        layers: list[nn.Module] = []
        d = latent_dim
        for h in hidden:
            layers += [nn.Linear(d, h), _activation(act)]
            d = h
        layers.append(nn.Linear(d, shape.numel))
        if shape.is_image:
            layers.append(nn.Tanh())  # images are in [-1, 1]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(z.shape[0], *self.shape.dims)


class MLPDiscriminator(nn.Module):
    """sample (B, *dims) -> flatten -> hidden layers -> one logit (B,)."""

    def __init__(self, shape: DataShape, hidden: list[int], spec: DSpec = PLAIN_D,
                 act: type[nn.Module] = nn.LeakyReLU) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        d = shape.numel * spec.pack  # PacGAN: pack samples side by side
        for h in hidden:
            layers += [nn.Linear(d, h), _activation(act)]
            d = h
        if spec.mbstd:
            layers.append(MinibatchStd())  # (B, d) -> (B, d + 1)
            d += 1
        layers.append(nn.Linear(d, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(1)).squeeze(1)


def mlp_width(shape: DataShape) -> int:
    """The MLP's default width: 256 for images (G widens to 1024), 128 units for points."""
    return 256 if shape.is_image else 128


def mlp2_width(shape: DataShape) -> int:
    """The 2-D benchmark networks' width: 128 tanh units (VEEGAN, Table 1)."""
    return 128


def build_mlp(shape: DataShape, latent_dim: int, width: int | None,
              d: DSpec = PLAIN_D) -> tuple[nn.Module, nn.Module]:
    """Points: 3 hidden layers of ``width`` (unset: 128). Images: G widens 256 -> 512 -> 1024,
    D narrows 1024 -> 512 -> 256 (times width/256), as in the common MNIST MLP GAN."""
    if shape.is_image:
        w = width or 256  # None (or an earlier version's 0): the default
        g_hidden, d_hidden = [w, 2 * w, 4 * w], [4 * w, 2 * w, w]
    else:
        w = width or 128
        g_hidden = d_hidden = [w, w, w]
    return MLPGenerator(shape, latent_dim, g_hidden), MLPDiscriminator(shape, d_hidden, d)


def build_mlp2_tanh(shape: DataShape, latent_dim: int, width: int | None,
                    d: DSpec = PLAIN_D) -> tuple[nn.Module, nn.Module]:
    """The 2-D benchmark networks of Unrolled GAN (Metz et al. 2017), VEEGAN (Srivastava et al.
    2017, Table 1) and GDPP: G and D each with two hidden layers of ``width`` (128) tanh units
    (the papers feed G 256-d noise: ``--latent-dim 256``)."""
    w = width or mlp2_width(shape)
    return (MLPGenerator(shape, latent_dim, [w, w], nn.Tanh),
            MLPDiscriminator(shape, [w, w], d, nn.Tanh))
