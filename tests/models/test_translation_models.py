"""The image-translation networks: U-Net shapes and skips, the PatchGAN's receptive field, the
ResNet generator's shapes."""

from __future__ import annotations

import pytest
import torch

from gankit.errors import GankitError
from gankit.models.patchgan import PatchDiscriminator, patch_layers, receptive_field
from gankit.models.resnet_gen import ResnetGenerator
from gankit.models.unet import UNetGenerator, unet_depth


@pytest.mark.parametrize(("size", "depth"), [((28, 28), 2), ((32, 32), 5), ((64, 48), 4), ((256, 256), 8)])
def test_unet_depth(size: tuple[int, int], depth: int) -> None:
    assert unet_depth(size) == depth


@pytest.mark.parametrize("size", [(28, 28), (32, 32), (16, 24)])
def test_unet_maps_an_image_to_an_image_of_the_same_size(size: tuple[int, int]) -> None:
    G = UNetGenerator(1, 3, size, width=8)
    y = G(torch.randn(2, 1, *size))
    assert y.shape == (2, 3, *size) and y.abs().max() <= 1


def test_unet_skips_carry_the_input_past_a_cut_bottleneck() -> None:
    torch.manual_seed(0)
    G = UNetGenerator(1, 1, (32, 32), width=8).eval()
    # Cut the bottleneck: the innermost encoder level outputs zeros whatever the input.
    G.down[-1].register_forward_hook(lambda m, i, o: torch.zeros_like(o))
    x = torch.randn(1, 1, 32, 32, requires_grad=True)
    G(x)[0, 0, 16, 16].backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # information arrives through the skips


def test_unet_outermost_skip_alone_is_a_local_path() -> None:
    # Every level but the first cut: only the outermost skip (one 4x4 stride-2 convolution down,
    # one transposed convolution up) links input and output, so a pixel sees a few pixels around it.
    torch.manual_seed(0)
    G = UNetGenerator(1, 1, (32, 32), width=8).eval()
    for d in G.down[1:]:
        d.register_forward_hook(lambda m, i, o: torch.zeros_like(o))
    x = torch.randn(1, 1, 32, 32, requires_grad=True)
    G(x)[0, 0, 16, 16].backward()
    assert x.grad is not None
    seen = (x.grad[0, 0].abs() > 0).nonzero()
    assert len(seen) > 0 and seen.min() >= 13 and seen.max() <= 19


def test_unet_without_skips_would_lose_the_input() -> None:
    # Control for the test above: cutting the bottleneck *and* the skips leaves no path.
    G = UNetGenerator(1, 1, (32, 32), width=8).eval()
    for d in G.down:
        d.register_forward_hook(lambda m, i, o: torch.zeros_like(o))
    x = torch.randn(1, 1, 32, 32, requires_grad=True)
    out = G(x)
    grad = torch.autograd.grad(out.sum(), x, allow_unused=True)[0] if out.requires_grad else None
    assert grad is None or grad.abs().sum() == 0


def test_unet_rejects_sizes_it_cannot_halve() -> None:
    with pytest.raises(GankitError, match="divisible"):
        UNetGenerator(1, 1, (28, 28), depth=3)


@pytest.mark.parametrize(("n", "rf"), [(1, 16), (2, 34), (3, 70)])
def test_patchgan_receptive_field_formula(n: int, rf: int) -> None:
    assert receptive_field(n) == rf


@pytest.mark.parametrize("n", [1, 2])
def test_patchgan_one_logit_sees_exactly_its_receptive_field(n: int) -> None:
    torch.manual_seed(0)
    D = PatchDiscriminator(2, width=4, n_layers=n).eval()
    x = torch.randn(1, 2, 96, 96, requires_grad=True)
    logits = D(x)  # (1, 1, H', W')
    h, w = logits.shape[-2:]
    logits[0, 0, h // 2, w // 2].backward()
    rows = (x.grad[0].abs().sum((0, 2)) > 0).nonzero().flatten()  # input rows that matter
    cols = (x.grad[0].abs().sum((0, 1)) > 0).nonzero().flatten()
    assert int(rows.max() - rows.min() + 1) == receptive_field(n)
    assert int(cols.max() - cols.min() + 1) == receptive_field(n)


@pytest.mark.parametrize(("size", "n"), [((28, 28), 1), ((64, 64), 1), ((128, 128), 2), ((256, 256), 3)])
def test_patchgan_scales_its_patch_to_the_image(size: tuple[int, int], n: int) -> None:
    assert patch_layers(size) == n
    D = PatchDiscriminator(3, width=4, n_layers=patch_layers(size))
    out = D(torch.randn(2, 3, *size))
    assert out.shape[:2] == (2, 1) and out.shape[-1] >= 2  # a grid of patch logits, not one


@pytest.mark.parametrize("size", [(28, 28), (32, 32)])
def test_resnet_generator_shapes(size: tuple[int, int]) -> None:
    G = ResnetGenerator(1, 1, size, width=8)
    assert G.n_blocks == 4
    y = G(torch.randn(2, 1, *size))
    assert y.shape == (2, 1, *size) and y.abs().max() <= 1
    with pytest.raises(GankitError, match="divisible by 4"):
        ResnetGenerator(1, 1, (30, 30))


def test_every_translate_setting_belongs_to_a_translator() -> None:
    # resolve() refuses a translate.* key the chosen translator does not list, naming the ones that
    # do: a key no translator lists could never be set
    from dataclasses import fields

    from gankit.config.schema import TranslateConfig
    from gankit.models.translators import TRANSLATORS
    from gankit.resolve import EVERY_TRANSLATOR

    listed = {name for e in TRANSLATORS.entries() for name in e.obj.settings}
    assert {f.name for f in fields(TranslateConfig)} - set(EVERY_TRANSLATOR) == listed
