"""FID Inception-v3: state-dict layout of pytorch-fid's weights, loading, preprocessing, errors.

The real weights file is never needed: a randomly initialised network saved with torch.save
stands in for it. Inception at 299 px costs ~6 GFLOP per image on the CPU, so every forward
pass here uses at most 2 images.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gankit.errors import GankitError
from gankit.metrics.inception import (
    FID_WEIGHTS_NAME,
    FIDInceptionV3,
    InceptionFeatures,
    preprocess,
)

KEYS_FILE = Path(__file__).with_name("fid_inception_keys.txt")
N_ENTRIES = 566  # 94 BasicConv2d x 6 + fc.weight + fc.bias
N_PARAMS = 23_850_960  # fc (1008 x 2048 + 1008 = 2,065,392) included


def expected_shapes() -> dict[str, tuple[int, ...]]:
    """Read ``key shape`` lines; shape ``-`` is a 0-d tensor."""
    out: dict[str, tuple[int, ...]] = {}
    for line in KEYS_FILE.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key, shape = line.split()
        assert key not in out, f"duplicate key {key} in {KEYS_FILE.name}"
        out[key] = () if shape == "-" else tuple(int(s) for s in shape.split(","))
    return out


def _lively(model: FIDInceptionV3, seed: int = 0) -> FIDInceptionV3:
    """Re-initialise so activations stay O(1) through all 94 conv layers (and differ from the
    default initialisation, so a load that silently kept the defaults would be caught)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
            elif isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(1.0 + 0.1 * torch.randn(n, generator=g))
                m.bias.copy_(0.1 * torch.randn(n, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + torch.rand(n, generator=g))
                m.num_batches_tracked.fill_(7)
            elif isinstance(m, nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) / m.in_features**0.5)
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
    return model.eval()


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """One intra-op thread: on a shared 2-core machine, 2 spinning threads under contention
    made a 2-image forward pass 10-30x slower; 1 thread keeps it at ~0.5 s."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[FIDInceptionV3, Path]:
    model = _lively(FIDInceptionV3())
    path = tmp_path_factory.mktemp("weights") / FID_WEIGHTS_NAME
    torch.save(model.state_dict(), path)
    return model, path


def test_state_dict_matches_pytorch_fid_weights_layout() -> None:
    expected = expected_shapes()
    assert len(expected) == N_ENTRIES
    model = FIDInceptionV3()
    sd = model.state_dict()
    got = {k: tuple(v.shape) for k, v in sd.items()}
    assert set(got) == set(expected), (
        f"missing {sorted(set(expected) - set(got))[:5]}, extra {sorted(set(got) - set(expected))[:5]}"
    )
    assert got == expected
    assert list(got) == list(expected)  # same order as torchvision's registration
    assert not any(k.startswith("AuxLogits") for k in sd)
    assert sum(p.numel() for p in model.parameters()) == N_PARAMS
    assert sd["fc.weight"].shape == (1008, 2048)
    for k, v in sd.items():
        assert v.dtype == (torch.int64 if k.endswith("num_batches_tracked") else torch.float32)
    # TF quirks: BatchNorm eps 0.001, convolutions without bias.
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert m.eps == pytest.approx(0.001)
        if isinstance(m, nn.Conv2d):
            assert m.bias is None


def test_preprocess_is_pytorch_fid_resize_and_normalize() -> None:
    g = torch.Generator().manual_seed(1)
    gray = torch.rand(2, 1, 28, 28, generator=g) * 2 - 1
    x01 = (gray + 1) / 2
    manual = (
        2
        * F.interpolate(
            x01.repeat(1, 3, 1, 1), size=(299, 299), mode="bilinear", align_corners=False
        )
        - 1
    )
    out = preprocess(gray)
    assert out.shape == (2, 3, 299, 299) and out.dtype == torch.float32
    torch.testing.assert_close(out, manual, rtol=0, atol=1e-6)
    torch.testing.assert_close(preprocess(gray.repeat(1, 3, 1, 1)), out, rtol=0, atol=0)
    # Already 299 x 299: the bilinear resize is the identity, only the range maps round-trip.
    big = torch.rand(1, 3, 299, 299, generator=g) * 2 - 1
    torch.testing.assert_close(preprocess(big), big, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="shape"):
        preprocess(torch.zeros(2, 2, 8, 8))
    with pytest.raises(ValueError, match="float"):
        preprocess(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))


def test_round_trip_gray_matches_documented_preprocessing(
    reference: tuple[FIDInceptionV3, Path],
) -> None:
    model, path = reference
    ext = InceptionFeatures(path, batch_size=1)  # batch of 1: exercises the batching loop
    assert (ext.name, ext.dim, ext.num_classes, ext.classes) == ("inception", 2048, 1008, None)
    images = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(2)) * 2 - 1
    feats, logits = ext.features_and_logits(images)
    assert feats.shape == (2, 2048) and feats.dtype == torch.float32
    assert logits.shape == (2, 1008) and logits.dtype == torch.float32
    assert torch.isfinite(feats).all() and torch.isfinite(logits).all()
    assert feats.std() > 1e-3  # the lively weights keep activations O(1): not a trivial check
    assert (feats >= 0).all()  # average pool of ReLU outputs

    # Reference: the documented preprocessing by hand, then the saved network itself.
    x = ((images + 1) / 2).expand(-1, 3, -1, -1)  # [0, 1], gray -> RGB
    x = 2 * F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False) - 1
    with torch.inference_mode():
        ref_feats, ref_logits = model(x)
    torch.testing.assert_close(feats, ref_feats, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(logits, ref_logits, rtol=1e-4, atol=1e-5)


def test_round_trip_rgb_and_methods_agree(reference: tuple[FIDInceptionV3, Path]) -> None:
    _, path = reference
    ext = InceptionFeatures(str(path))
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(3)) * 2 - 1
    feats, logits = ext.features_and_logits(images)
    assert feats.shape == (2, 2048) and feats.dtype == torch.float32
    assert logits.shape == (2, 1008) and logits.dtype == torch.float32
    assert torch.isfinite(feats).all() and torch.isfinite(logits).all()
    assert not torch.allclose(feats[0], feats[1])
    torch.testing.assert_close(ext.features(images[:1]), feats[:1], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(ext.logits(images[1:]), logits[1:], rtol=1e-4, atol=1e-5)
    assert ext.features(torch.zeros(0, 3, 16, 16)).shape == (0, 2048)
    assert ext.logits(torch.zeros(0, 1, 16, 16)).shape == (0, 1008)


def test_missing_file_says_where_to_get_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / FID_WEIGHTS_NAME
    with pytest.raises(GankitError) as info:
        InceptionFeatures(missing)
    msg = str(info.value)
    assert str(missing) in msg
    assert FID_WEIGHTS_NAME in msg and "inception:" in msg
    assert "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" in msg
    assert "never downloads" in msg


def test_wrong_keys_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "linear.pth"
    torch.save(nn.Linear(3, 2).state_dict(), path)
    with pytest.raises(GankitError) as info:
        InceptionFeatures(path)
    msg = str(info.value)
    assert str(path) in msg and "not the pytorch-fid FID Inception weights" in msg
    assert "unexpected keys: bias, weight" in msg or "unexpected keys: weight, bias" in msg
    assert "missing keys: Conv2d_1a_3x3.conv.weight" in msg
    assert "(472 in all)" in msg  # lists 5, counts the rest (num_batches_tracked are filled)


def test_unreadable_files_name_the_file(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a torch file at all")
    tensor = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), tensor)
    for path in (garbage, tensor):
        with pytest.raises(GankitError, match="not the pytorch-fid FID Inception weights") as info:
            InceptionFeatures(path)
        assert str(path) in str(info.value)


def test_num_batches_tracked_optional_everything_else_strict(tmp_path: Path) -> None:
    sd = FIDInceptionV3().state_dict()
    without = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    assert len(without) == N_ENTRIES - 94
    path = tmp_path / "no_nbt.pth"
    torch.save(without, path)
    ext = InceptionFeatures(path)  # loads: the counters are filled in
    loaded = ext.model.state_dict()
    torch.testing.assert_close(
        loaded["Mixed_7c.branch_pool.bn.running_var"], sd["Mixed_7c.branch_pool.bn.running_var"]
    )

    del without["Mixed_6e.branch7x7dbl_5.bn.running_var"]
    torch.save(without, path)
    with pytest.raises(
        GankitError, match=r"missing keys: Mixed_6e\.branch7x7dbl_5\.bn\.running_var"
    ):
        InceptionFeatures(path)

    wrong = dict(sd)
    wrong["fc.weight"] = torch.zeros(1000, 2048)
    wrong["fc.bias"] = torch.zeros(1000)
    torch.save(wrong, path)
    with pytest.raises(GankitError, match=r"wrong shapes: fc\.weight \(1000, 2048\)"):
        InceptionFeatures(path)
