"""Drawing from a trained G, and looking at D: grids, interpolations, D's probability field."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from gankit.checkpoint import STATE, Checkpoint, load_checkpoint, load_module
from gankit.config import Config, config_from_dict
from gankit.errors import GankitError, display_path, short_repr
from gankit.models import MODELS, DataShape, Packed, models_for, sample_prior
from gankit.models.conditional import default_labels, num_classes_of
from gankit.nn_util import evaluating  # re-exported: its home is below metrics and models
from gankit.rundir import RunDir
from gankit.validate import Damaged


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


def field_snapshot(D: nn.Module, real: np.ndarray, fake: Tensor, extent: tuple[float, float, float, float],
                   step: int, resolution: int = 64, max_points: int = 512) -> dict:
    """A 2-D run's game at ``step`` as data (the JSON beside each sample grid, which ``gankit lab``
    draws GAN Lab style, Kahng et al. 2018): D's probability field on a ``resolution`` x
    ``resolution`` grid over ``extent`` (row 0 is ymin, as :func:`d_probability_field`), up to
    ``max_points`` real and generated points, and at each generated point the direction G's
    update moves it: the gradient of log D(x) there (the non-saturating G loss's descent; empty
    for a packed or conditional D), and the grid estimates of KL(p_data || p_G) and JS between
    the real and generated points (:func:`grid_divergences`). Numbers are rounded to 4 decimals."""
    device = fake.device
    prob = d_probability_field(D, extent, resolution, device)
    fake = fake[:max_points].detach().float()
    arrows: list[list[float]] = []
    if not isinstance(D, Packed) and not num_classes_of(D):
        was_training = D.training
        D.eval()  # not ``evaluating``: its inference mode has no gradients
        try:
            with torch.enable_grad():
                x = fake.clone().requires_grad_(True)
                (grad,) = torch.autograd.grad(torch.nn.functional.logsigmoid(D(x).float()).sum(), x)
        finally:
            D.train(was_training)
        g = grad.cpu().numpy()
        if np.isfinite(g).all():
            arrows = np.round(g, 4).tolist()

    def r(a: np.ndarray) -> list:
        return np.round(np.nan_to_num(np.asarray(a, dtype=np.float64)), 4).tolist()

    kl, js = grid_divergences(np.asarray(real[:max_points]), fake.cpu().numpy(), extent)
    return {"step": step, "extent": [float(v) for v in extent], "resolution": resolution,
            "field": r(prob), "real": r(real[:max_points]), "fake": r(fake.cpu().numpy()), "arrows": arrows,
            "kl": round(kl, 4), "js": round(js, 4)}


GRID_BINS = 20  # the histograms' grid of the 2-D divergence estimates (GAN Lab's is coarse too)
PSEUDO_COUNT = 0.01  # added to each bin's count: KL stays finite where G puts no point


def grid_divergences(real: np.ndarray, fake: np.ndarray, extent: tuple[float, float, float, float],
                     bins: int = GRID_BINS) -> tuple[float, float]:
    """(KL(p_data || p_G), JS(p_data, p_G)) in nats, estimated as GAN Lab shows them (Kahng et al.
    2018): the two point sets' histograms on a ``bins`` x ``bins`` grid over ``extent`` (points
    outside count in the border bins), each count plus ``PSEUDO_COUNT``, normalised. Identical
    sets give 0 and 0; sets in disjoint bins give a JS near log 2, its bound."""
    def hist(points: np.ndarray) -> np.ndarray:
        x = np.clip(points[:, 0], extent[0], extent[1])
        y = np.clip(points[:, 1], extent[2], extent[3])
        h, _, _ = np.histogram2d(x, y, bins=bins, range=[extent[:2], extent[2:]])
        h = h + PSEUDO_COUNT
        return h / h.sum()

    p, q = hist(np.asarray(real, dtype=np.float64)), hist(np.asarray(fake, dtype=np.float64))
    m = 0.5 * (p + q)
    kl = float((p * np.log(p / q)).sum())
    js = float(0.5 * (p * np.log(p / m)).sum() + 0.5 * (q * np.log(q / m)).sum())
    return kl, js


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


def check_gan_meta(ckpt: Checkpoint) -> None:
    """``Damaged`` unless state.json holds what a GAN's checkpoint has, of the right types and
    ranges: the task (gan), ``real_batches``, ``data_shape``, ``num_classes``, ``classes``,
    ``extent``, and a config whose ``model.arch`` is a GAN model."""
    f = ckpt.fields()
    task = f.string("task", default="gan")
    if task != "gan":
        if task in ckpt.meta or "translator" in ckpt.meta:  # another task's own, not damage
            raise GankitError(f"{display_path(ckpt.path)} is a {short_repr(task)} checkpoint, not a GAN's: "
                              "drawing from noise alone needs a GAN's generator (a text -> image run samples with "
                              "gankit sample RUN --text CAPTION, a translator with gankit translate RUN IN --out OUT)")
        raise f.bad("task", f"is {short_repr(task)}, not 'gan', and the checkpoint holds nothing of another task")
    f.integer("real_batches")  # the data order's position: every GAN checkpoint has it
    shape = f.integers("data_shape", lo=1, hi=1 << 16, min_len=1, max_len=3)
    if len(shape) == 2:
        raise f.bad("data_shape", f"must be [D] (points) or [C, H, W] (images), got {shape}")
    k = f.integer("num_classes", hi=1 << 20, default=0)
    classes = f.strings("classes", default=None)
    if classes is not None and len(classes) != k:
        raise f.bad("classes", f"must name the {k} classes of num_classes, got {len(classes)} names")
    extent = f.numbers("extent", 4, 4, default=None)
    if extent is not None and not (extent[0] < extent[1] and extent[2] < extent[3]):
        raise f.bad("extent", f"must be [xmin, xmax, ymin, ymax] with min < max, got {extent}")
    arch = f.object("config").object("model").string("arch")  # type: ignore[union-attr]
    if arch not in MODELS.names():
        raise Damaged(ckpt.path / STATE, f"its config's model.arch {arch!r} is no GAN model gankit has "
                                         f"({', '.join(MODELS.names())})")


def _rebuild(ckpt: Checkpoint) -> tuple[nn.Module, nn.Module, Config, DataShape, int]:
    """G and D as the checkpoint's config builds them, its weights loaded (``Damaged`` if they do
    not fit); G is the moving average where the run kept one."""
    check_gan_meta(ckpt)
    state = ckpt.path / STATE
    cfg = config_from_dict(ckpt.meta["config"], str(state))
    shape = DataShape(tuple(ckpt.meta["data_shape"]))
    num_classes = int(ckpt.meta.get("num_classes") or 0)
    try:
        G, D = models_for(cfg, shape, num_classes)
    except (GankitError, ValueError, RuntimeError, TypeError) as e:
        raise Damaged(state, f"its config and data_shape {list(shape.dims)} build no networks ({e})") from None
    load_module(ckpt, ckpt.sampling_G, G)
    load_module(ckpt, "D", D)
    return G, D, cfg, shape, num_classes


def load_generator(path: str, device: str = "cpu") -> LoadedGenerator:
    """Rebuild G and D from a run directory or checkpoint (no unpickling), verified first
    (``gankit.checkpoint.load_checkpoint``: a damaged checkpoint is a clear error naming the file
    and the newest intact checkpoint to use instead)."""
    built: dict[Path, tuple[nn.Module, nn.Module, Config, DataShape, int]] = {}

    def check(c: Checkpoint) -> None:
        built[c.path] = _rebuild(c)

    ckpt = load_checkpoint(path, with_train_state=False, check=check)
    G, D, cfg, shape, num_classes = built[ckpt.path]
    extent = ckpt.meta.get("extent")
    run = RunDir.of_checkpoint(ckpt.path)  # RUN_DIR/checkpoints/step-N, or a copied-out checkpoint
    return LoadedGenerator(G.to(device), D.to(device), cfg, shape, ckpt.step,
                           tuple(extent) if extent else None, run.path if run else None, num_classes,
                           ckpt.meta.get("classes"))
