"""Conditional G and D: each uses the label the way its paper says."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gankit.errors import GankitError
from gankit.losses import class_loss
from gankit.models import DataShape, build_models
from gankit.models.conditional import (
    ACGANDiscriminator,
    CGANDiscriminator,
    ConditionalG,
    ProjectionDiscriminator,
    class_rows,
    default_labels,
    feature_dim,
    num_classes_of,
    parse_class,
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
    logits, classes = D(x, y)
    assert classes is None
    assert torch.allclose(logits, manual) and not torch.allclose(logits, D(x, y + 1)[0])


def test_projection_is_psi_plus_the_inner_product_with_the_label_embedding() -> None:
    torch.manual_seed(0)
    _, base = build_models("mlp", DataShape((2,)), width=16)
    D = ProjectionDiscriminator(base, 5, feature_dim(base, (2,))).eval()
    x, y = torch.randn(4, 2), torch.tensor([0, 1, 2, 4])
    phi = D.trunk(x)  # (4, 16)
    expected = D.head(phi).squeeze(1) + (D.embed.weight[y] * phi).sum(1)
    assert torch.allclose(D(x, y)[0], expected, atol=1e-6) and D(x, y)[1] is None
    with torch.no_grad():
        D.embed.weight.zero_()  # no embedding: the label no longer matters
    assert torch.allclose(D(x, y)[0], D(x, (y + 1) % 5)[0])


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


@pytest.mark.parametrize("kind", ["cgan", "acgan", "projection"])
@pytest.mark.parametrize("arch", ["mlp", "dcgan"])
def test_build_models_makes_every_conditioning_for_every_architecture(kind: str, arch: str) -> None:
    shape = SHAPE if arch == "dcgan" else DataShape((2,))
    G, D = build_models(arch, shape, latent_dim=8, width=8, conditional=kind, num_classes=10, embed_dim=4)
    y = torch.tensor([0, 9, 3])
    x = G(torch.randn(3, 8), y)
    assert x.shape == (3, *shape.dims)
    logits, classes = D(x, y)
    assert logits.shape == (3,)
    assert (classes is not None) == (kind == "acgan")
    assert num_classes_of(G) == num_classes_of(D) == 10
    assert num_classes_of(build_models(arch, shape, width=8)[0]) == 0


def test_conditioning_needs_classes_and_no_packing() -> None:
    with pytest.raises(GankitError, match="at least 2 classes"):
        build_models("mlp", DataShape((2,)), conditional="cgan", num_classes=1)
    with pytest.raises(GankitError, match="packing"):
        build_models("mlp", DataShape((2,)), conditional="cgan", num_classes=4, pack=2)
    with pytest.raises(GankitError, match="unknown conditioning"):
        build_models("mlp", DataShape((2,)), conditional="infogan", num_classes=4)


def test_class_rows_default_labels_and_parse_class() -> None:
    assert class_rows(3, 2).tolist() == [0, 0, 1, 1, 2, 2]
    assert len(class_rows(100, 8)) == 16 * 8  # at most 16 rows in a grid
    assert default_labels(7, 3).tolist() == [0, 1, 2, 0, 1, 2, 0]
    names = ["T-shirt/top", "Trouser", "Sneaker"]
    assert parse_class("sneaker", 3, names) == 2 and parse_class("1", 3, names) == 1
    assert parse_class("2", 3, None) == 2
    with pytest.raises(GankitError, match="0 T-shirt/top, 1 Trouser, 2 Sneaker"):
        parse_class("shoe", 3, names)
    with pytest.raises(GankitError, match="not one of"):
        parse_class("3", 3, names)


def test_acgan_class_loss_is_the_cross_entropy_by_hand() -> None:
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    y = torch.tensor([0, 1])
    p0 = math.exp(2) / (math.exp(2) + 1 + math.exp(-1))
    p1 = math.exp(0.5) / (2 * math.exp(0.5) + math.exp(3))
    expected = -(math.log(p0) + math.log(p1)) / 2
    assert class_loss(logits, y).item() == pytest.approx(expected, rel=1e-6)
    # its gradient raises the right class's logit: descending it moves toward y
    logits.requires_grad_(True)
    class_loss(logits, y).backward()
    assert logits.grad[0, 0] < 0 and logits.grad[1, 1] < 0 and logits.grad[1, 2] > 0


@pytest.mark.parametrize(("kind", "d_class"), [("cgan", CGANDiscriminator), ("acgan", ACGANDiscriminator),
                                               ("projection", ProjectionDiscriminator)])
def test_each_conditioning_entry_builds_its_discriminator(kind: str, d_class: type) -> None:
    from gankit.models import CONDITIONINGS, MODELS
    from gankit.models.conditional import ConditionalRequest

    assert kind in CONDITIONINGS and CONDITIONINGS.names() == ["cgan", "acgan", "projection"]
    request = ConditionalRequest(MODELS.get("mlp").build, DataShape((2,)), 8, 16, num_classes=5, embed_dim=3)
    G, D = CONDITIONINGS.get(kind)(request)
    assert type(D) is d_class and isinstance(G, ConditionalG) and G.embed.weight.shape == (5, 3)
    assert type(build_models("mlp", DataShape((2,)), 8, 16, conditional=kind, num_classes=5)[1]) is d_class
    help_line = next(e.help for e in CONDITIONINGS.entries() if e.name == kind)
    assert {"cgan": "Mirza & Osindero 2014", "acgan": "Odena et al. 2017",
            "projection": "Miyato & Koyama 2018"}[kind] in help_line


@pytest.mark.parametrize("kind", ["cgan", "acgan", "projection"])
def test_conditional_builds_draw_as_before(kind: str) -> None:
    """The registry's builders draw the parameters in the order the old if-chain did: the base pair
    (G's z + embedding input), G's embedding, then (cgan) D for C + K channels, spectral norm, the head."""
    from gankit.models import MODELS, apply_spectral_norm

    build, shape, K = MODELS.get("dcgan").build, SHAPE, 10
    torch.manual_seed(5)
    G, D = build_models("dcgan", shape, 8, 8, spectral_norm=True, conditional=kind, num_classes=K)
    torch.manual_seed(5)
    G0, D0 = build(shape, 8 + K, 8)
    G0 = ConditionalG(G0, K, K)
    if kind == "cgan":
        _, D0 = build(DataShape((1 + K, 28, 28)), 8, 8)
    apply_spectral_norm(D0)
    D0 = {"cgan": lambda: CGANDiscriminator(D0, K),
          "acgan": lambda: ACGANDiscriminator(D0, K, feature_dim(D0, shape.dims)),
          "projection": lambda: ProjectionDiscriminator(D0, K, feature_dim(D0, shape.dims))}[kind]()
    for new, old in ((G, G0), (D, D0)):
        a, b = new.state_dict(), old.state_dict()
        assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
