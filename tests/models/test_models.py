"""Every registered architecture, on every data shape it claims: shapes, ranges, errors."""

from __future__ import annotations

import pytest
import torch

from gankit.errors import GankitError
from gankit.models import MODELS, DataShape, build_models, dcgan_plan, sample_prior

SHAPES = {
    "mlp": [(2,), (1, 28, 28), (3, 32, 32)],
    "mlp2-tanh": [(2,), (1, 28, 28)],
    "dcgan": [(1, 28, 28), (3, 32, 32), (3, 64, 64), (3, 128, 128), (1, 48, 64), (3, 16, 16)],
    "r3": [(1, 28, 28), (3, 32, 32), (3, 64, 64), (1, 48, 64), (3, 16, 16)],
}


def test_every_model_has_shapes_listed() -> None:
    assert set(SHAPES) == set(MODELS.names())


@pytest.mark.parametrize(("arch", "dims"), [(a, d) for a, ds in SHAPES.items() for d in ds])
def test_shapes(arch: str, dims: tuple[int, ...]) -> None:
    shape = DataShape(dims)
    G, D = build_models(arch, shape, latent_dim=16, width=8)
    z = sample_prior("normal", 3, 16)
    x = G(z)
    assert x.shape == (3, *dims)
    if shape.is_image:
        assert x.min() >= -1 and x.max() <= 1  # tanh: images live in [-1, 1]
    logits = D(x)
    assert logits.shape == (3,)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize(("size", "plan"), [((28, 28), (7, 7, 2)), ((32, 32), (4, 4, 3)),
                                            ((64, 64), (4, 4, 4)), ((128, 128), (4, 4, 5)),
                                            ((48, 64), (6, 8, 3))])
def test_dcgan_plan(size: tuple[int, int], plan: tuple[int, int, int]) -> None:
    assert dcgan_plan(*size) == plan


@pytest.mark.parametrize("size", [(18, 18), (30, 30), (8, 8)])
def test_dcgan_rejects_sizes_it_cannot_make(size: tuple[int, int]) -> None:
    with pytest.raises(GankitError, match="data.image_size"):
        dcgan_plan(*size)


def test_dcgan_on_points_is_a_clear_error() -> None:
    with pytest.raises(GankitError, match="mlp"):
        build_models("dcgan", DataShape((2,)))


def test_unknown_model_lists_choices() -> None:
    with pytest.raises(GankitError, match="mlp, mlp2-tanh, dcgan, r3"):
        build_models("resnet", DataShape((2,)))


def test_priors() -> None:
    g = torch.Generator().manual_seed(0)
    u = sample_prior("uniform", 10000, 4, generator=g)
    assert u.min() >= -1 and u.max() <= 1 and abs(u.mean()) < 0.05
    n = sample_prior("normal", 10000, 4, generator=g)
    assert abs(n.std() - 1) < 0.05
    with pytest.raises(GankitError):
        sample_prior("cauchy", 1, 1)


def test_dcgan_first_and_last_layers_equal_the_convolutions_they_replace() -> None:
    # G's projection of z and D's readout run as matrix products; they must equal the transposed
    # convolution of a 1x1 input and the whole-map convolution, in either memory layout.
    from torch.nn import functional as F

    from gankit.models.dcgan import Project, Readout

    torch.manual_seed(0)
    proj = Project(10, 6, (3, 4), 1, 0, bias=False)
    z = torch.randn(5, 10)
    torch.testing.assert_close(proj(z), F.conv_transpose2d(z[:, :, None, None], proj.weight))
    read = Readout(6, 1, (3, 4), 1, 0, bias=False)
    x = torch.randn(5, 6, 3, 4)
    want = F.conv2d(x, read.weight).flatten()
    torch.testing.assert_close(read(x), want)
    torch.testing.assert_close(read(x.contiguous(memory_format=torch.channels_last)), want)


def test_mlp2_tanh_is_the_benchmark_network() -> None:
    # VEEGAN / Unrolled GAN: two hidden layers of 128 tanh units each in G and D
    G, D = build_models("mlp2-tanh", DataShape((2,)), latent_dim=256)
    for net in (G, D):
        kinds = [type(m).__name__ for m in net.net]
        assert kinds == ["Linear", "Tanh", "Linear", "Tanh", "Linear"]
    assert G.net[0].in_features == 256 and G.net[0].out_features == 128 and G.net[-1].out_features == 2
