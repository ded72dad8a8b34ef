"""Drawing from a trained G, and looking at D: grids, interpolations, D's probability field."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from gankit.config import Config, config_from_dict
from gankit.errors import GankitError
from gankit.models import DataShape, Packed, models_for, sample_prior
from gankit.models.conditional import default_labels, num_classes_of
from gankit.nn_util import evaluating  # re-exported: its home is below metrics and models
from gankit.rundir import RunDir


def generate(G: nn.Module, z: Tensor, y: Tensor | None = None, batch_size: int = 256) -> Tensor:
    """G(z) in eval mode, in batches -> (N, *dims) on z's device.

    A conditional G is given the labels ``y`` (N,); by default 0, 1, ..., K-1, 0, ... (every class
    equally often)."""
    K = num_classes_of(G)
    if K and y is None:
        y = default_labels(len(z), K, z.device)
    with evaluating(G):
        if not K:
            return torch.cat([G(z[i:i + batch_size]) for i in range(0, len(z), batch_size)])
        assert y is not None
        return torch.cat([G(z[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(z), batch_size)])


def sample_from(G: nn.Module, cfg: Config, n: int, seed: int = 0, y: Tensor | None = None) -> Tensor:
    """n samples of G (eval mode) at latents drawn from the run's prior with ``seed``; on G's device.
    ``y``: a conditional G's labels (default: every class in turn)."""
    g = torch.Generator().manual_seed(seed)
    z = sample_prior(cfg.model.prior, n, cfg.model.latent_dim, generator=g)
    device = next(G.parameters()).device
    return generate(G, z.to(device), None if y is None else y.to(device))


def interpolate_latents(z0: Tensor, z1: Tensor, n: int, prior: str) -> Tensor:
    """``n`` latents from z0 to z1: spherical for a normal prior (White 2016, "Sampling generative
    networks": the straight line passes through improbably small norms), linear for uniform."""
    t = torch.linspace(0, 1, n, device=z0.device)[:, None]
    if prior == "uniform":
        return (1 - t) * z0 + t * z1
    a, b = z0 / z0.norm(), z1 / z1.norm()
    omega = torch.arccos((a * b).sum().clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega) / so) * z0 + (torch.sin(t * omega) / so) * z1


def d_probability_field(D: nn.Module, extent: tuple[float, float, float, float], resolution: int = 160,
                        device: torch.device | str = "cpu") -> np.ndarray:
    """D's probability "real" on a resolution x resolution grid over extent; row 0 is ymin."""
    xmin, xmax, ymin, ymax = extent
    xs = torch.linspace(xmin, xmax, resolution, device=device)
    ys = torch.linspace(ymin, ymax, resolution, device=device)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    pts = torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)
    if isinstance(D, Packed):  # PacGAN: D judges m copies of each point
        pts = pts.repeat_interleave(D.m, 0)
    K = num_classes_of(D)
    with evaluating(D):
        if K:  # a conditional D: its probability averaged over the classes
            prob = torch.stack([torch.sigmoid(D(pts, torch.full((len(pts),), k, device=device))[0])
                                for k in range(K)]).mean(0).reshape(resolution, resolution)
        else:
            prob = torch.sigmoid(D(pts)).reshape(resolution, resolution)
    return prob.float().cpu().numpy()


def points_extent(points: np.ndarray, margin: float = 0.25) -> tuple[float, float, float, float]:
    lo, hi = points.min(0), points.max(0)
    pad = (hi - lo).max() * margin + 1e-3
    return float(lo[0] - pad), float(hi[0] + pad), float(lo[1] - pad), float(hi[1] + pad)


@dataclass
class LoadedGenerator:
    """G rebuilt from a checkpoint, with what is needed to sample from it."""

    G: nn.Module
    D: nn.Module
    config: Config
    shape: DataShape
    step: int
    extent: tuple[float, float, float, float] | None
    run_dir: Path | None  # the run the checkpoint belongs to, if it lies in one
    num_classes: int = 0  # K of a class-conditional run
    classes: list[str] | None = None

    def sample(self, n: int, seed: int = 0, y: Tensor | None = None) -> Tensor:
        return sample_from(self.G, self.config, n, seed, y)


def load_generator(path: str, device: str = "cpu") -> LoadedGenerator:
    """Rebuild G and D from a run directory or checkpoint (no unpickling)."""
    from gankit.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path, with_train_state=False)
    cfg = config_from_dict(ckpt.meta["config"], f"{ckpt.path}/state.json")
    shape = DataShape(tuple(ckpt.meta["data_shape"]))
    num_classes = int(ckpt.meta.get("num_classes") or 0)
    G, D = models_for(cfg, shape, num_classes)
    try:
        # With --ema the moving average is the generator to sample from (it is what the run's
        # samples, report and evaluation showed); ``G_ema`` exists only in such checkpoints.
        G.load_state_dict(ckpt.module_state("G_ema") or ckpt.module_state("G"))
        D.load_state_dict(ckpt.module_state("D"))
    except RuntimeError as e:
        raise GankitError(f"checkpoint {ckpt.path} does not match its own config: {e}") from None
    extent = ckpt.meta.get("extent")
    run = RunDir.of_checkpoint(ckpt.path)  # RUN_DIR/checkpoints/step-N, or a copied-out checkpoint
    return LoadedGenerator(G.to(device), D.to(device), cfg, shape, ckpt.step,
                           tuple(extent) if extent else None, run.path if run else None, num_classes,
                           ckpt.meta.get("classes"))
