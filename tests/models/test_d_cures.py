"""D's architectural cures: spectral normalisation, the minibatch-std feature, PacGAN packing."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gankit.models import MODELS, DataShape, MinibatchStd, Packed, build_models

SHAPES = {"mlp": DataShape((2,)), "mlp2-tanh": DataShape((2,)), "dcgan": DataShape((1, 16, 16)),
          "r3": DataShape((1, 16, 16))}


def _layers(D: nn.Module) -> list[nn.Module]:
    return [m for m in D.modules() if isinstance(m, nn.Conv2d | nn.Linear)]


@pytest.mark.parametrize("arch", [a for a in MODELS.names() if MODELS.get(a).spectral_norm])
def test_spectral_norm_makes_every_layer_singular_value_one(arch: str) -> None:
    torch.manual_seed(0)
    _, D = build_models(arch, SHAPES[arch], 8, 16, spectral_norm=True)
    x = torch.randn(32, *SHAPES[arch].dims)
    for _ in range(30):  # power iteration advances once per training forward pass
        D(x)
    layers = _layers(D)
    assert layers
    for m in layers:
        w = m.weight.detach().flatten(1)  # the normalised weight, as the forward pass uses it
        sigma = torch.linalg.matrix_norm(w, ord=2).item()
        assert sigma == pytest.approx(1.0, abs=0.03), f"{m}: largest singular value {sigma}"
        raw = m.parametrizations.weight.original.detach().flatten(1)
        assert torch.linalg.matrix_norm(raw, ord=2).item() != pytest.approx(1.0, abs=0.03)


def test_minibatch_std_by_hand() -> None:
    x = torch.tensor([[0.0, 2.0], [2.0, 2.0], [0.0, 4.0], [2.0, 4.0]])  # one group of 4
    out = MinibatchStd(group=4)(x)
    # per-feature std over the group (population): [1, 1] -> mean 1, appended to every sample
    assert out.shape == (4, 3)
    assert torch.allclose(out[:, 2], torch.ones(4), atol=1e-6)
    assert torch.equal(out[:, :2], x)
    same = MinibatchStd(group=4)(torch.ones(4, 3, 5, 5))  # a collapsed batch: std 0
    assert same.shape == (4, 4, 5, 5) and same[:, 3].abs().max() < 1e-3


def test_minibatch_std_groups() -> None:
    # 8 samples, groups of 4: sample i belongs to group i % 2. Group 0 is constant, group 1 varies.
    x = torch.zeros(8, 1)
    x[1::2, 0] = torch.tensor([0.0, 2.0, 0.0, 2.0])
    s = MinibatchStd(group=4)(x)[:, 1]
    assert torch.allclose(s[0::2], torch.zeros(4), atol=1e-3)
    assert torch.allclose(s[1::2], torch.ones(4), atol=1e-6)


@pytest.mark.parametrize("arch", MODELS.names())
def test_minibatch_std_lets_d_tell_a_collapsed_batch(arch: str) -> None:
    torch.manual_seed(0)
    shape = SHAPES[arch]
    _, D = build_models(arch, shape, 8, 16, mbstd=True)
    D.eval()
    varied = torch.randn(8, *shape.dims)
    collapsed = varied[:1].expand(8, *shape.dims).contiguous()
    # the first sample is the same in both batches; only the batch around it differs
    assert D(varied)[0] != D(collapsed)[0]


@pytest.mark.parametrize("arch", MODELS.names())
def test_pacgan_d_sees_m_samples_per_decision(arch: str) -> None:
    torch.manual_seed(0)
    shape, m = SHAPES[arch], 4
    _, D = build_models(arch, shape, 8, 16, pack=m)
    assert isinstance(D, Packed)
    D.eval()
    x = torch.randn(12, *shape.dims)
    logits = D(x)
    assert logits.shape == (12 // m,)
    # changing sample 5 changes the decision of its pack (samples 4..7) and no other
    y = x.clone()
    y[5] += 1.0
    changed = (D(y) != logits).tolist()
    assert changed == [False, True, False]
    with pytest.raises(ValueError, match="packs 4"):
        D(torch.randn(10, *shape.dims))
