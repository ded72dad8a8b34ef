"""Conditional G and D: each uses the label the way its paper says."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gankit.models import DataShape, build_models
from gankit.models.conditional import (
    ACGANDiscriminator,
    CGANDiscriminator,
    ConditionalG,
    ProjectionDiscriminator,
    feature_dim,
)

SHAPE = DataShape((1, 28, 28))


def test_conditional_g_depends_on_the_label() -> None:
    torch.manual_seed(0)
    base, _ = build_models("dcgan", SHAPE, latent_dim=8 + 4, width=8)
    G = ConditionalG(base, 10, 4).eval()
    z = torch.randn(2, 8)
    a, b = G(z, torch.tensor([0, 0])), G(z, torch.tensor([3, 3]))
    assert a.shape == (2, 1, 28, 28) and not torch.allclose(a, b)


def test_cgan_d_sees_the_one_hot_planes() -> None:
    torch.manual_seed(0)
    _, base = build_models("dcgan", DataShape((1 + 10, 28, 28)), width=8)
    D = CGANDiscriminator(base, 10).eval()
    x = torch.randn(3, 1, 28, 28)
    y = torch.tensor([1, 2, 3])
    manual = base(torch.cat([x, F.one_hot(y, 10).float()[:, :, None, None].expand(-1, -1, 28, 28)], 1))
    assert torch.allclose(D(x, y), manual) and not torch.allclose(D(x, y), D(x, y + 1))


def test_projection_is_psi_plus_the_inner_product_with_the_label_embedding() -> None:
    torch.manual_seed(0)
    _, base = build_models("mlp", DataShape((2,)), width=16)
    D = ProjectionDiscriminator(base, 5, feature_dim(base, (2,))).eval()
    x, y = torch.randn(4, 2), torch.tensor([0, 1, 2, 4])
    phi = D.trunk(x)  # (4, 16)
    expected = D.head(phi).squeeze(1) + (D.embed.weight[y] * phi).sum(1)
    assert torch.allclose(D(x, y), expected, atol=1e-6)
    with torch.no_grad():
        D.embed.weight.zero_()  # no embedding: the label no longer matters
    assert torch.allclose(D(x, y), D(x, (y + 1) % 5))


def test_acgan_d_has_a_class_head_and_ignores_the_label_given() -> None:
    _, base = build_models("dcgan", SHAPE, width=8)
    D = ACGANDiscriminator(base, 10, feature_dim(base, SHAPE.dims)).eval()
    x = torch.randn(3, 1, 28, 28)
    logit, classes = D(x)
    assert logit.shape == (3,) and classes.shape == (3, 10)
    assert torch.equal(D(x, torch.tensor([0, 1, 2]))[0], logit)


@pytest.mark.parametrize("arch", ["mlp", "dcgan"])
def test_feature_dim_matches_the_logit_layer_input(arch: str) -> None:
    shape = SHAPE if arch == "dcgan" else DataShape((2,))
    _, base = build_models(arch, shape, width=8)
    n = feature_dim(base, shape.dims)
    assert n == (8 * 2 * 7 * 7 if arch == "dcgan" else 8)
