"""gankit's shipped Fashion-MNIST classifier: weights file, accuracy, input adapter, speed."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from gankit.data.fashion_mnist import CLASSES, load_arrays
from gankit.errors import GankitError
from gankit.metrics import fmnist_classifier as fc
from gankit.metrics.features import get_extractor
from gankit.metrics.fmnist_classifier import (
    FEATURE_DIM,
    NUM_CLASSES,
    WEIGHTS,
    FMNISTClassifier,
    FMNISTFeatures,
    load_fmnist_classifier,
    prepare,
    weights_metadata,
)
from tests.conftest import needs_fmnist


@pytest.fixture(scope="module")
def test_set() -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = load_arrays("test")
    return images.float() / 127.5 - 1.0, labels


def _random_images(n: int, channels: int = 1, size: int = 28, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, channels, size, size, generator=g) * 2 - 1


def test_weights_file_is_small_safetensors() -> None:
    assert WEIGHTS.is_file(), f"missing {WEIGHTS}: run python bench/train_fmnist_classifier.py"
    raw = WEIGHTS.read_bytes()
    assert len(raw) <= 3 * 1024 * 1024
    # safetensors layout: u64 little-endian header length, then a JSON header; no pickle (zip).
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    assert not raw.startswith(b"PK") and not raw.startswith(b"\x80")
    meta = header["__metadata__"]
    assert float(meta["test_accuracy"]) >= 0.92
    for key in ("epochs", "seed", "torch_version", "command"):
        assert meta[key]
    assert weights_metadata() == meta
    expected = FMNISTClassifier().state_dict()
    assert set(header) - {"__metadata__"} == set(expected)
    for k, v in expected.items():
        assert header[k]["shape"] == list(v.shape), k


def test_loaded_model_is_frozen_cached_eval() -> None:
    m = load_fmnist_classifier()
    assert m is load_fmnist_classifier("cpu") is load_fmnist_classifier(torch.device("cpu"))
    assert not m.training
    assert not any(p.requires_grad for p in m.parameters())


@needs_fmnist
def test_test_set_accuracy(test_set: tuple[torch.Tensor, torch.Tensor]) -> None:
    images, labels = test_set
    model = load_fmnist_classifier()
    with torch.inference_mode():
        pred = torch.cat([model(images[i:i + 1000]).argmax(1) for i in range(0, len(images), 1000)])
    acc = (pred == labels).float().mean().item()
    assert acc >= 0.92, f"test accuracy {acc:.4f}"


def test_shapes_dtypes_and_protocol() -> None:
    ext = FMNISTFeatures()
    assert ext.name == "fmnist" and ext.dim == FEATURE_DIM and ext.num_classes == NUM_CLASSES == 10
    assert ext.classes == list(CLASSES)
    x = _random_images(7)
    f, z = ext.features_and_logits(x)
    assert f.shape == (7, FEATURE_DIM) and f.dtype == torch.float32 and f.device.type == "cpu"
    assert z.shape == (7, NUM_CLASSES) and z.dtype == torch.float32
    assert (f >= 0).all()  # after the ReLU
    assert torch.equal(ext.features(x), f) and torch.equal(ext.logits(x), z)
    assert torch.allclose(ext.features(x.double()), f, atol=1e-6)
    f0, z0 = ext.features_and_logits(x[:0])
    assert f0.shape == (0, FEATURE_DIM) and z0.shape == (0, NUM_CLASSES)
    m = load_fmnist_classifier()
    with torch.inference_mode():
        assert m(x).shape == (7, 10) and m.features(x).shape == (7, FEATURE_DIM)
        mf, mz = m.features_and_logits(x)
    assert torch.allclose(mf, f, atol=1e-5) and torch.allclose(mz, z, atol=1e-5)


def test_bad_inputs_are_refused() -> None:
    ext = FMNISTFeatures()
    with pytest.raises(ValueError, match="uint8"):
        ext.features(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))
    with pytest.raises(ValueError, match="C in"):
        ext.features(torch.zeros(2, 2, 28, 28))
    with pytest.raises(ValueError, match="C in"):
        ext.features(torch.zeros(28, 28))
    with pytest.raises(TypeError):
        ext.features([[0.0]])  # type: ignore[arg-type]


def test_adapter_rgb_and_resize() -> None:
    gray = _random_images(5)
    rgb = gray.expand(-1, 3, -1, -1)
    assert torch.allclose(prepare(rgb), gray, atol=1e-6)
    colour = _random_images(5, channels=3)
    luma = 0.299 * colour[:, :1] + 0.587 * colour[:, 1:2] + 0.114 * colour[:, 2:]
    assert torch.allclose(prepare(colour), luma, atol=1e-6)
    big = _random_images(5, size=64)
    expected = F.interpolate(big, size=(28, 28), mode="bilinear", antialias=True,
                             align_corners=False)
    assert torch.equal(prepare(big), expected)
    assert prepare(_random_images(2, size=28)).shape == (2, 1, 28, 28)
    assert prepare(torch.zeros(2, 1, 20, 36)).shape == (2, 1, 28, 28)
    ext = FMNISTFeatures()
    assert torch.allclose(ext.logits(rgb), ext.logits(gray), atol=1e-4)


@needs_fmnist
def test_rgb_32px_gives_nearly_the_same_predictions(
    test_set: tuple[torch.Tensor, torch.Tensor],
) -> None:
    images, labels = test_set[0][:1000], test_set[1][:1000]
    up = F.interpolate(images, size=(32, 32), mode="bilinear", antialias=True, align_corners=False)
    ext = FMNISTFeatures()
    z28 = ext.logits(images)
    z32 = ext.logits(up.expand(-1, 3, -1, -1))
    agree = (z28.argmax(1) == z32.argmax(1)).float().mean().item()
    assert agree >= 0.95, f"only {agree:.3f} of predictions survive a 28 -> 32 -> 28 round trip"
    assert (z32.argmax(1) == labels).float().mean().item() >= 0.90


def test_deterministic_and_batch_independent() -> None:
    ext = FMNISTFeatures()
    x = _random_images(2100, seed=1)
    a, b = ext.features(x), ext.features(x)
    assert torch.equal(a, b)
    assert torch.allclose(ext.features(x[2000:]), a[2000:], atol=1e-5)


def test_speed_10k() -> None:
    ext = FMNISTFeatures()
    x = _random_images(10_000, seed=2)
    ext.features(x[:100])  # warm-up
    t0 = time.perf_counter()
    f = ext.features(x)
    dt = time.perf_counter() - t0
    assert f.shape == (10_000, FEATURE_DIM)
    assert dt < 10.0, f"10,000 images took {dt:.1f} s"


def test_missing_weights_say_how_to_rebuild(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fc, "WEIGHTS", tmp_path / "nope.safetensors")
    fc._load.cache_clear()
    try:
        with pytest.raises(GankitError, match=r"missing.*bench/train_fmnist_classifier\.py"):
            load_fmnist_classifier()
        with pytest.raises(GankitError, match="missing"):
            FMNISTFeatures()
    finally:
        fc._load.cache_clear()


def test_damaged_weights_are_a_gankit_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 16)
    monkeypatch.setattr(fc, "WEIGHTS", bad)
    fc._load.cache_clear()
    try:
        with pytest.raises(GankitError, match="train_fmnist_classifier"):
            load_fmnist_classifier()
    finally:
        fc._load.cache_clear()


def test_loading_the_classifier_leaves_the_global_rng_alone() -> None:
    # A run's probe loads it mid-training, once per process: if loading drew random numbers, a run
    # resumed in a fresh process would differ from one whose process had loaded it before.
    from gankit.metrics.fmnist_classifier import _load

    _load.cache_clear()
    torch.manual_seed(0)
    before = torch.get_rng_state()
    get_extractor("fmnist")
    assert torch.equal(torch.get_rng_state(), before)
