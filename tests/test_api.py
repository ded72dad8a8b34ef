"""The notebook API of the README: build, train on a tensor or a Dataset, sample."""

from __future__ import annotations

from pathlib import Path

import torch

import gankit
from tests.conftest import tiny_images


def test_readme_api(tmp_path: Path) -> None:
    G, D = gankit.build_models("dcgan", gankit.DataShape((1, 28, 28)), latent_dim=64)
    z = gankit.sample_prior("normal", 4, 64)
    assert D(G(z)).shape == (4,)

    points = torch.randn(2000, 2) * 0.1 + torch.tensor([1.0, -1.0])
    run = gankit.fit(points, model="mlp", steps=30, latent_dim=4, out=str(tmp_path / "pts"),
                       progress=False, lr_g=1e-3, lr_d=1e-3)
    assert run.step == 30 and (run.run_dir / "report.html").exists()
    assert run.sample(10).shape == (10, 2)
    assert len(run.history) > 0 and {"loss_d", "loss_g", "d_real", "d_fake"} <= set(run.history[-1])

    ds = torch.utils.data.TensorDataset(tiny_images(40, 16).float() / 127.5 - 1, torch.zeros(40))
    run2 = gankit.fit(ds, model="dcgan", width=8, latent_dim=8, steps=5, batch_size=8,
                        out=str(tmp_path / "img"), progress=False)
    x = gankit.sample(run2.run_dir, n=6, seed=1)
    assert x.shape == (6, 1, 16, 16) and x.min() >= -1 and x.max() <= 1
    assert torch.equal(x, gankit.sample(run2, n=6, seed=1))  # run object and directory agree


def test_train_by_name_with_a_yaml_config(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: mlp\nlatent_dim: 4\ntrain:\n  steps: 10\nlog:\n  progress: false\n")
    run = gankit.fit("grid", config=cfg, out=str(tmp_path / "g"))
    assert run.config.data.source == "grid" and run.step == 10
