"""Named datasets, the batch order, and user tensors/Datasets."""

from __future__ import annotations

import gzip
import math
import struct
from pathlib import Path

import pytest
import torch

from gankit.config import DataConfig
from gankit.data import DATASETS, BatchOrder, from_dataset, from_tensor, load_data
from gankit.data.fashion_mnist import CLASSES, read_idx, resize_cover
from gankit.data.toy import grid_centers, ring_centers
from gankit.errors import GankitError
from tests.conftest import needs_fmnist


@pytest.mark.parametrize("name", DATASETS.names())
def test_every_registered_dataset_loads(name: str) -> None:
    if name == "fashion-mnist":
        pytest.importorskip("gankit")
        from tests.conftest import HAS_FMNIST

        if not HAS_FMNIST:
            pytest.skip("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
    d = load_data(DataConfig(source=name))
    assert len(d) > 1000
    x = d.batch(torch.arange(8))
    assert x.dtype == torch.float32 and x.shape[0] == 8
    if d.shape.is_image:
        assert x.min() >= -1 and x.max() <= 1


def test_ring_has_eight_distinct_modes() -> None:
    c = ring_centers()
    assert len(c) == 8
    assert torch.cdist(c, c).add(torch.eye(8) * 9).min() > 0.7  # no repeated centre (VEEGAN's bug)
    assert torch.allclose(c.norm(dim=1), torch.ones(8))
    d = load_data(DataConfig(source="ring"))
    nearest = torch.cdist(d.data, c).min(1).values
    assert nearest.max() < 6 * 0.01  # every point within 6 std of a centre


def test_grid_has_25_modes() -> None:
    c = grid_centers()
    assert len(c) == 25 and set(c[:, 0].tolist()) == {-4.0, -2.0, 0.0, 2.0, 4.0}
    d = load_data(DataConfig(source="grid"))
    assert torch.cdist(d.data, c).min(1).values.max() < 6 * 0.05
    counts = torch.bincount(d.labels, minlength=25).float()  # type: ignore[arg-type]
    assert counts.min() / counts.max() > 0.8  # modes equally likely


def test_batch_order_visits_each_index_once_per_epoch() -> None:
    o = BatchOrder(10, 4, seed=3)
    seq = torch.cat([o.indices(i) for i in range(5)])  # 20 positions = 2 epochs
    assert sorted(seq[:10].tolist()) == list(range(10))
    assert sorted(seq[10:].tolist()) == list(range(10))
    assert seq[:10].tolist() != seq[10:].tolist()  # reshuffled each epoch
    # Any batch can be asked for directly, in any order: this is what makes resume exact.
    fresh = BatchOrder(10, 4, seed=3)
    assert fresh.indices(3).tolist() == o.indices(3).tolist()


def test_batch_larger_than_the_data() -> None:
    o = BatchOrder(1, 64, seed=0)
    assert o.indices(0).tolist() == [0] * 64
    o = BatchOrder(3, 8, seed=0)
    assert torch.bincount(o.indices(0), minlength=3).tolist() in ([3, 3, 2], [3, 2, 3], [2, 3, 3])


def test_idx_reader() -> None:
    raw = struct.pack(">BBBBIII", 0, 0, 8, 3, 2, 2, 3) + bytes(range(12))
    a = read_idx(raw, "x")
    assert a.shape == (2, 2, 3) and a[1, 1, 2] == 11
    with pytest.raises(GankitError, match="truncated"):
        read_idx(raw[:-1], "x")
    with pytest.raises(GankitError, match="not an IDX"):
        read_idx(b"\x1f\x8b\x08\x00", "x")


def test_fashion_mnist_from_a_folder_of_idx_files(tmp_path: Path) -> None:
    imgs = struct.pack(">BBBBIII", 0, 0, 8, 3, 5, 28, 28) + bytes(5 * 28 * 28)
    lbls = struct.pack(">BBBBI", 0, 0, 8, 1, 5) + bytes([0, 1, 2, 3, 9])
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(imgs))
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(lbls))
    d = load_data(DataConfig(source="fashion-mnist", data_root=str(tmp_path), image_size="32", channels=3))
    assert d.data.shape == (5, 3, 32, 32) and d.labels.tolist() == [0, 1, 2, 3, 9]  # type: ignore[union-attr]
    assert d.classes == CLASSES


def test_resize_cover_crops_the_centre() -> None:
    x = torch.zeros(1, 1, 4, 8, dtype=torch.uint8)
    x[..., :, 2:6] = 200  # a bright centre band
    y = resize_cover(x, (4, 4))
    assert y.shape == (1, 1, 4, 4) and y.float().mean() > 150


@needs_fmnist
def test_real_fashion_mnist() -> None:
    d = load_data(DataConfig(source="fashion-mnist"))
    assert d.data.shape == (60000, 1, 28, 28) and d.data.dtype == torch.uint8
    assert torch.bincount(d.labels).tolist() == [6000] * 10  # type: ignore[arg-type]


def test_from_tensor_and_dataset() -> None:
    floats = torch.rand(6, 3, 8, 8) * 2 - 1
    d = from_tensor(floats)
    assert d.data.dtype == torch.uint8
    assert torch.allclose(d.batch(torch.arange(6)), floats, atol=1 / 127.5)
    pts = from_tensor(torch.randn(100, 2))
    assert pts.shape.dims == (2,)
    ds = torch.utils.data.TensorDataset(torch.rand(5, 1, 8, 8) * 2 - 1, torch.arange(5))
    d2 = from_dataset(ds)
    assert len(d2) == 5 and d2.labels.tolist() == [0, 1, 2, 3, 4]  # type: ignore[union-attr]
    with pytest.raises(GankitError, match="1 or 3 channels"):
        from_tensor(torch.rand(2, 4, 8, 8))
    with pytest.raises(GankitError):
        from_tensor(torch.rand(5))
    assert math.isclose(float(from_tensor(torch.full((1, 1, 2, 2), -1.0)).batch(torch.tensor([0])).max()), -1)


def test_built_in_sets_carry_their_traits_and_the_registry_names_them() -> None:
    from gankit.data.base import NO_TRAITS
    from gankit.data.toy import GRID, RING

    ring = load_data(DataConfig(source="ring"))
    assert ring.traits is RING is DATASETS.get("ring").traits
    assert ring.traits.modes is not None and len(ring.traits.modes.centers) == 8
    assert ring.traits.modes.std == 0.01 and not ring.traits.fmnist_classifier
    assert load_data(DataConfig(source="grid")).traits is GRID and len(GRID.modes.centers) == 25
    assert DATASETS.get("stacked-fashion-mnist").traits.modes_total == 1000
    fm = DATASETS.get("fashion-mnist").traits
    assert fm.fmnist_classifier and fm.classes == tuple(CLASSES) and fm.modes is None
    assert from_tensor(torch.randn(10, 2), name="ring").traits is NO_TRAITS


@pytest.mark.parametrize("name", ["ring", "fashion-mnist-copy"])
def test_a_folder_named_like_a_dataset_gets_no_built_in_traits(
        name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    from gankit.data.base import NO_TRAITS
    from gankit.diagnosis import Probe

    folder = tmp_path / "work" / name
    folder.mkdir(parents=True)
    for i in range(3):
        Image.new("L", (28, 28), 40 * i).save(folder / f"{i}.png")
    monkeypatch.chdir(folder.parent)
    source = name if name != "ring" else f"./{name}"  # a bare `ring` is the built-in set
    data = load_data(DataConfig(source=source, image_size="28", cache_dir=str(tmp_path / "cache")))
    assert data.name == source and data.shape.dims == (1, 28, 28)
    assert data.traits is NO_TRAITS
    # so the diagnosis neither counts ring modes nor reads the images with the fmnist classifier
    probe = Probe(data.traits, data.shape, data.batch(torch.arange(3)), torch.randn(3, 8))
    assert probe.modes is None and probe.classifier is None
    with pytest.raises(TypeError, match="traits"):
        Probe(data.name, data.shape, data.batch(torch.arange(3)), torch.randn(3, 8))  # type: ignore[arg-type]
