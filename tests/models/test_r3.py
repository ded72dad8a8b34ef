"""R3GAN's norm-free residual architecture (Huang et al. 2024): shapes, the Fixup-style identity
at init, the [1, 2, 1] resampling filters, gradients, projection conditioning, a short training."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

import gankit
from gankit.errors import GankitError
from gankit.models import DataShape, build_models
from gankit.models.r3 import (
    Downsample,
    GenerativeBasis,
    R3Discriminator,
    R3Generator,
    ResidualBlock,
    Upsample,
    binomial_filter,
    stage_channels,
)
from tests.conftest import tiny_images

NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm2d, nn.SyncBatchNorm)


@pytest.mark.parametrize("dims", [(1, 28, 28), (3, 28, 28), (1, 32, 32), (3, 32, 32), (3, 64, 64),
                                  (1, 128, 128), (3, 48, 64)])
def test_shapes_for_every_resolution_and_channel_count(dims: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    G, D = build_models("r3", DataShape(dims), latent_dim=8, width=4)
    x = G(torch.randn(2, 8))
    assert x.shape == (2, *dims) and x.abs().max() <= 1
    assert D(x).shape == (2,)
    basis = G.net[0]
    assert isinstance(basis, GenerativeBasis)
    assert basis.basis.shape[1:] == ((7, 7) if dims[1] == 28 else (6, 8) if dims[1] == 48 else (4, 4))


def test_channels_double_per_halving_up_to_eight_times_the_width() -> None:
    assert stage_channels(8, 3) == [64, 32, 16, 8]  # 4x4, 8x8, 16x16, 32x32
    assert stage_channels(8, 5) == [64, 64, 64, 32, 16, 8]  # 128 px: capped at 8 x width


def test_no_normalisation_layers() -> None:
    G, D = build_models("r3", DataShape((3, 32, 32)), latent_dim=8, width=4, blocks=2)
    for net in (G, D):
        assert not [m for m in net.modules() if isinstance(m, NORMS)]
        assert sum(isinstance(m, ResidualBlock) for m in net.modules()) == 2 * 4  # 2 per resolution


def test_residual_blocks_are_the_identity_at_init() -> None:
    torch.manual_seed(0)
    block = ResidualBlock(16, num_blocks=4)
    assert torch.count_nonzero(block.conv3.weight) == 0
    x = torch.randn(3, 16, 5, 5)
    assert torch.equal(block(x), x)
    # so G at init is its linear path: basis, 1x1 convolutions and resampling (no block contributes)
    G = R3Generator(DataShape((1, 16, 16)), 8, 4, blocks=1)
    for m in G.modules():
        if isinstance(m, ResidualBlock):
            h = torch.randn(2, m.conv1.in_channels, 4, 4)
            assert torch.equal(m(h), h)


def test_fixup_scale_of_the_first_convolutions() -> None:
    # He's std for leaky ReLU 0.2, times L^(-1/(2m - 2)) = L^(-1/4) with m = 3 convolutions per branch
    torch.manual_seed(0)
    L, c = 16, 64
    block = ResidualBlock(c, num_blocks=L)
    gain = math.sqrt(2 / (1 + 0.2**2))
    want1 = gain / math.sqrt(c) * L ** -0.25
    groups = block.conv2.groups
    want2 = gain / math.sqrt(2 * c // groups * 9) * L ** -0.25
    assert groups == 2 * c // 16  # groups of 16 channels (ResNeXt cardinality as in R3GAN)
    assert block.conv1.weight.std().item() == pytest.approx(want1, rel=0.05)
    assert block.conv2.weight.std().item() == pytest.approx(want2, rel=0.05)


def test_binomial_filter_is_normalised_and_passes_dc() -> None:
    f = binomial_filter()
    assert f.sum().item() == pytest.approx(1.0)
    assert torch.equal(f * 16, torch.tensor([[1.0, 2, 1], [2, 4, 2], [1, 2, 1]]))
    # frequency response of the 1-D taps [1, 2, 1] / 4: H(w) = cos^2(w / 2)
    taps = f.sum(0)
    w = torch.linspace(0, math.pi, 9)
    response = (taps[None, :] * torch.exp(-1j * w[:, None] * torch.tensor([-1.0, 0, 1]))).sum(1)
    assert torch.allclose(response.real, torch.cos(w / 2) ** 2, atol=1e-6)
    assert response.abs()[0].item() == pytest.approx(1.0) and response.abs()[-1].item() < 1e-6


def test_resampling_keeps_constants_and_kills_nyquist() -> None:
    ones = torch.ones(1, 2, 8, 8)
    down, up = Downsample()(ones), Upsample()(ones)
    assert down.shape == (1, 2, 4, 4) and up.shape == (1, 2, 16, 16)
    assert torch.allclose(down[..., 1:, 1:], torch.ones(1, 2, 3, 3))  # away from the zero padding
    assert torch.allclose(up[..., :-1, :-1], torch.ones(1, 2, 15, 15))
    checker = (torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2 * 2.0 - 1  # +-1 at Nyquist
    assert Downsample()(checker[None, None])[..., 1:, 1:].abs().max() < 1e-6
    # upsampling is bilinear: even pixels copy, odd ones average their neighbours
    x = torch.arange(4.0).reshape(1, 1, 1, 4).expand(1, 1, 4, 4)
    row = Upsample()(x)[0, 0, 2]
    assert torch.allclose(row[:7], torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]))
    # and the adjoint of downsampling, times 4: <down(a), b> = <a, up(b)> / 4
    a, b = torch.randn(1, 1, 8, 8), torch.randn(1, 1, 4, 4)
    assert torch.allclose((Downsample()(a) * b).sum(), (a * Upsample()(b)).sum() / 4, atol=1e-5)
    # under bf16 autocast the filter runs in fp32 and hands back the input's dtype
    with torch.autocast("cpu", torch.bfloat16):
        y = Downsample()(a.bfloat16())
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), Downsample()(a.bfloat16().float()), atol=1e-2, rtol=1e-2)


def test_every_parameter_learns_after_the_zero_convolutions_move() -> None:
    torch.manual_seed(0)
    G, D = build_models("r3", DataShape((1, 16, 16)), latent_dim=8, width=4)
    opt = torch.optim.SGD([*G.parameters(), *D.parameters()], lr=0.1)
    for step in range(2):
        opt.zero_grad()
        loss = torch.nn.functional.softplus(-D(G(torch.randn(4, 8)))).mean()
        loss.backward()
        if step == 0:  # the zero last convolutions get gradients at once; their branches' inner ones wait
            for m in [*G.modules(), *D.modules()]:
                if isinstance(m, ResidualBlock):
                    assert m.conv3.weight.grad.abs().sum() > 0
                    assert m.conv1.weight.grad.abs().sum() == 0
        opt.step()
    for name, p in [*G.named_parameters(), *D.named_parameters()]:
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_projection_conditioning_changes_the_logit_with_the_label() -> None:
    torch.manual_seed(0)
    G, D = build_models("r3", DataShape((1, 28, 28)), latent_dim=8, width=4,
                        conditional="projection", num_classes=10)
    x = torch.randn(3, 1, 28, 28)
    y = torch.tensor([0, 1, 2])
    logit, classes = D(x, y)
    assert classes is None and logit.shape == (3,)
    assert not torch.allclose(logit, D(x, (y + 1) % 10)[0])
    # phi(x) is the discriminative basis's (B, C) features: the logit is head(phi) + <embed(y), phi>
    phi = D.trunk(x)
    assert phi.shape == (3, 4 * 4)
    want = D.head(phi)[:, 0] + (D.embed(y) * phi).sum(1)
    torch.testing.assert_close(logit, want)
    assert G(torch.randn(3, 8), y).shape == (3, 1, 28, 28)


@pytest.mark.parametrize("kind", ["cgan", "acgan"])
def test_the_other_conditionings_build(kind: str) -> None:
    G, D = build_models("r3", DataShape((1, 28, 28)), latent_dim=8, width=4, conditional=kind, num_classes=3)
    y = torch.tensor([0, 2])
    logit, classes = D(G(torch.randn(2, 8), y), y)
    assert logit.shape == (2,) and (classes is not None) == (kind == "acgan")


def test_clear_errors() -> None:
    with pytest.raises(GankitError, match="r3 models images"):
        build_models("r3", DataShape((2,)))
    with pytest.raises(GankitError, match="r3 cannot make 18x18"):
        build_models("r3", DataShape((1, 18, 18)))
    with pytest.raises(GankitError, match="spectral_norm"):
        build_models("r3", DataShape((1, 16, 16)), spectral_norm=True)
    with pytest.raises(GankitError, match="model.blocks does not apply to model.arch=dcgan"):
        build_models("dcgan", DataShape((1, 16, 16)), blocks=2)


def test_mbstd_and_pack_widen_d_as_the_cures_ask() -> None:
    D = R3Discriminator(DataShape((1, 16, 16)), 4, 1, gankit.models.DSpec(pack=2, mbstd=True))
    assert D.net[0].in_channels == 2 and D.net[-1].in_features == 4 * 4 + 1
    assert D(torch.randn(8, 2, 16, 16)).shape == (8,)


def test_a_short_training_run(tmp_path: Path) -> None:
    labels = torch.arange(32) % 2
    ds = torch.utils.data.TensorDataset(tiny_images(32, 16).float() / 127.5 - 1, labels)
    run = gankit.fit(ds, model="r3", width=4, blocks=1, latent_dim=8, steps=4, batch_size=8,
                     conditional="projection", precision="fp32", out=str(tmp_path / "r3"), progress=False)
    assert run.step == 4 and run.config.model.arch == "r3"
    x = gankit.sample(run.run_dir, n=4, seed=0)
    assert x.shape == (4, 1, 16, 16) and torch.isfinite(x).all()
