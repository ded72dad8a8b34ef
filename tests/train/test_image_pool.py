"""CycleGAN's history of generated images."""

from __future__ import annotations

import torch

from gankit.train.image_pool import ImagePool


def batch(value: float, n: int = 4) -> torch.Tensor:
    return torch.full((n, 1, 2, 2), value)


def test_size_zero_passes_the_batch_through() -> None:
    x = batch(1.0)
    assert ImagePool(0).query(x) is x


def test_filling_returns_the_new_images_and_stores_them_detached() -> None:
    pool = ImagePool(6)
    x = batch(1.0).requires_grad_()
    out = pool.query(x)
    assert torch.equal(out, batch(1.0)) and not out.requires_grad and len(pool.images) == 4
    pool.query(batch(2.0))
    assert len(pool.images) == 6  # full: 4 ones, 2 twos; the last 2 twos came back unchanged


def test_once_full_about_half_the_batch_is_older_fakes_which_the_new_ones_replace() -> None:
    pool = ImagePool(50, seed=0)
    pool.query(batch(0.0, 50))  # full of zeros
    new = torch.arange(1, 401, dtype=torch.float32).view(400, 1, 1, 1).expand(400, 1, 2, 2)
    out = pool.query(new)[:, 0, 0, 0]
    swapped = out != new[:, 0, 0, 0]
    assert 150 < swapped.sum() < 250  # each image swapped with probability 1/2
    # what came back instead is older: a zero from the start or a fake stored earlier in the batch
    for i in swapped.nonzero().flatten().tolist():
        assert out[i] == 0 or out[i] < new[i, 0, 0, 0]
    stored = torch.stack(pool.images)[:, 0, 0, 0]
    assert (stored > 0).any() and stored.numel() == 50  # the new ones took old ones' places


def test_a_restored_pool_draws_the_same() -> None:
    a = ImagePool(8, seed=3)
    a.query(torch.randn(8, 1, 2, 2))
    b = ImagePool(8, seed=99)
    b.load_state_tensors(a.state_tensors())
    x = torch.randn(16, 1, 2, 2)
    assert torch.equal(a.query(x), b.query(x))
