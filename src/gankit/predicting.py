"""Applying a trained next-frame predictor (Mathieu, Couprie & LeCun 2016): rebuilding G from a
checkpoint (no unpickling), the run's held-out videos, G rolled out on a sequence, and the animated
GIF of ``gankit predict`` (input, prediction and, when known, truth side by side). Used by the CLI,
the task and bench/nextframe.py; nothing here knows the training loop.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from gankit.checkpoint import STATE, Checkpoint, checkpoint_is, load_checkpoint, load_module
from gankit.config import Config, config_from_dict
from gankit.data.base import to_float
from gankit.data.video import VIDEOS, VideoData, load_video, read_sequence
from gankit.errors import GankitError, display_path
from gankit.models.nextframe import ARCH, MultiScaleGenerator, build_nextframe, rollout
from gankit.rundir import RunDir
from gankit.validate import Damaged

TASK = "nextframe"
DATA_SEED = 0  # the built-in sets are drawn from this seed, whatever the run's


def load_run_videos(cfg: Config, split: str = "train", context: int = 1, sequences: int | None = None) -> VideoData:
    """The videos of a run's config (``split`` "test": the built-in set's test sequences; a folder
    has one split); every sequence must hold ``context`` + 1 frames."""
    d = cfg.data
    data = load_video(d.source, split, d.size(), d.channels, d.data_root, _cache(cfg), sequences, DATA_SEED,
                      context + 1)
    longest = int(data.lengths.max())
    if longest < context + 1:
        raise GankitError(f"nextframe.context {context} leaves no frame to predict in data.source={d.source}'s "
                          f"sequences of {longest} frames; at most {longest - 1}")
    return data


def _cache(cfg: Config) -> Path:
    from gankit.data import default_cache_dir

    return Path(os.path.expanduser(cfg.data.cache_dir)) if cfg.data.cache_dir is not None else default_cache_dir()


def check_nextframe_meta(ckpt: Checkpoint) -> None:
    """``Damaged`` unless state.json's ``nextframe`` says how G is rebuilt: the frame shape, the
    context and the width."""
    t = ckpt.fields().object("nextframe")
    assert t is not None  # absent: Damaged, naming the key
    t.integers("shape", lo=1, hi=1 << 16, min_len=3, max_len=3)
    t.integer("context", lo=1, hi=1 << 10)
    t.integer("horizon", lo=1, hi=1 << 10)
    t.integer("width", lo=1, hi=1 << 12)


@dataclass
class LoadedPredictor:
    """G of a next-frame checkpoint, eval mode, with what it was trained on."""

    G: MultiScaleGenerator
    config: Config
    step: int
    run_dir: Path | None
    meta: dict[str, Any]  # state.json's "nextframe": shape, context, horizon, width, data

    @property
    def context(self) -> int:
        return int(self.meta["context"])

    def predict(self, frames: Tensor, horizon: int) -> Tensor:
        """frames (N, T >= context, C, H, W) in [-1, 1] -> (N, horizon, C, H, W), on the CPU."""
        device = next(self.G.parameters()).device
        return rollout(self.G, frames[:, -self.context:].to(device), horizon).cpu()


def _rebuild(ckpt: Checkpoint) -> tuple[MultiScaleGenerator, Config]:
    check_nextframe_meta(ckpt)
    info, state = ckpt.meta["nextframe"], ckpt.path / STATE
    cfg = config_from_dict(ckpt.meta["config"], str(state))
    try:
        G, _ = build_nextframe(int(info["context"]), tuple(info["shape"]), int(info["width"]),  # type: ignore[arg-type]
                               cfg.nextframe.frame_g)
    except (GankitError, ValueError, RuntimeError, TypeError) as e:
        raise Damaged(state, f"its shape {info['shape']} and context build no generator ({e})") from None
    load_module(ckpt, ckpt.sampling_G, G)
    return G, cfg


def load_predictor(path: str | Path, device: str | torch.device = "cpu") -> LoadedPredictor:
    """Rebuild G from a next-frame run directory or checkpoint, verified first."""
    built: dict[Path, tuple[MultiScaleGenerator, Config]] = {}

    def check(c: Checkpoint) -> None:
        if c.meta.get("task") != TASK:
            raise GankitError(f"{display_path(c.path)} is not a next-frame run (model.arch={ARCH}); "
                              "`gankit predict` needs one")
        built[c.path] = _rebuild(c)

    ckpt = load_checkpoint(path, with_train_state=False, check=check)
    G, cfg = built[ckpt.path]
    run = RunDir.of_checkpoint(ckpt.path)
    return LoadedPredictor(G.to(device).eval().requires_grad_(False), cfg, ckpt.step, run.path if run else None,
                           dict(ckpt.meta["nextframe"]))


def is_nextframe_checkpoint(path: str | Path) -> bool:
    """Whether the run directory or checkpoint at ``path`` is a next-frame run's (its state.json's
    task, else its run's config.yaml)."""
    return checkpoint_is(path, lambda meta: meta.get("task") == TASK, lambda arch: arch == ARCH)


def evaluate_predictor(lp: LoadedPredictor, n: int = 10_000, horizon: int | None = None) -> dict[str, float]:
    """G's rollouts on the first ``n`` held-out sequences long enough (a built-in set's test split;
    a folder's own), scored per horizon (``gankit.metrics.nextframe``), and the copy-last baseline's
    (``copy_last_mse@1``, ...)."""
    from gankit.metrics.nextframe import copy_last

    horizon = horizon or int(lp.meta["horizon"])
    src = lp.config.data.source
    data = load_run_videos(lp.config, "test", lp.context,
                           min(n, VIDEOS.get(src).test_sequences) if src in VIDEOS else None)
    firsts = [int(data.starts[s]) for s in range(len(data)) if int(data.lengths[s]) >= lp.context + horizon][:n]
    if not firsts:
        raise GankitError(f"no held-out sequence holds {lp.context} + {horizon} frames; lower --horizon")
    clips = data.clips(torch.tensor(firsts), lp.context + horizon)
    device = next(lp.G.parameters()).device
    base = score_in_chunks(lambda x, h: copy_last(x, h), clips, lp.context, horizon)
    return {**score_in_chunks(lambda x, h: rollout(lp.G, x.to(device), h).cpu(), clips, lp.context, horizon),
            "n": float(len(firsts)), **{f"copy_last_{k}": v for k, v in base.items()}}


def score_in_chunks(predict: Callable[[Tensor, int], Tensor], clips: Tensor, context: int, horizon: int,
                    chunk: int = 256) -> dict[str, float]:
    """``gankit.metrics.nextframe.score_rollouts`` of ``predict(context frames, horizon)`` on uint8
    clips (N, context + horizon, C, H, W), ``chunk`` clips at a time (every score is a mean over
    the clips, so the chunks' means weighted by their sizes are the whole's)."""
    from gankit.metrics.nextframe import score_rollouts

    total: dict[str, float] = {}
    for i in range(0, len(clips), chunk):
        x = to_float(clips[i:i + chunk])
        part = score_rollouts(predict(x[:, :context], horizon), x[:, context:context + horizon])
        for k, v in part.items():
            total[k] = total.get(k, 0.0) + v * len(x)
    return {k: v / len(clips) for k, v in total.items()}


def sequence_for(lp: LoadedPredictor, sequence: str) -> Tensor:
    """uint8 frames (T, C, H, W) of ``sequence``: ``test:N`` (the run's held-out sequence N, a
    built-in set's) or the path of a folder of frames or a video file."""
    c, h, w = (int(v) for v in lp.meta["shape"])
    if sequence.startswith("test:") and sequence[5:].isdigit():
        n = int(sequence[5:])
        src = lp.config.data.source
        count = VIDEOS.get(src).test_sequences if src in VIDEOS else None
        data = load_run_videos(lp.config, "test", lp.context, n + 1 if count is not None else None)
        if n >= len(data):
            raise GankitError(f"{sequence}: the run's held-out videos hold {len(data)} sequences")
        return data.sequence(n)
    frames = read_sequence(sequence, (h, w), c)
    if len(frames) < lp.context:
        raise GankitError(f"{display_path(sequence)}: {len(frames)} frame(s), shorter than the run's context of "
                          f"{lp.context} frames")
    return frames


TIMELINE = 2  # rows of the time bar under the panels


def strips(frames: Tensor, context: int, pred: Tensor) -> Tensor:
    """The frames of the animation (context + horizon, C, H + 1 + TIMELINE, n_panels * W + gaps),
    float in [-1, 1]: [input | prediction | truth]. During the context all panels show the input;
    then the input holds its last frame, the prediction shows G's and the truth the real frame (a
    panel left out where the sequence ends before the horizon: not known). Under the panels a time
    bar fills up frame by frame, gray over the context and white over the predictions (so no two
    frames are the same, which a GIF writer would merge)."""
    x = to_float(frames)
    horizon = len(pred)
    known = len(x) >= context + horizon
    inp = torch.cat([x[:context], x[context - 1:context].expand(horizon, -1, -1, -1)])
    prd = torch.cat([x[:context], pred])
    panels = [inp, prd] + ([x[:context + horizon]] if known else [])
    gap = torch.ones(*inp.shape[:3], 2)  # a white line between panels
    out = [panels[0]]
    for p in panels[1:]:
        out += [gap, p]
    body = torch.cat(out, -1)  # (T, C, H, W')
    T, width = len(body), body.shape[-1]
    bar = -torch.ones(T, body.shape[1], 1 + TIMELINE, width)
    for t in range(T):
        bar[t, :, 1:, :max(1, round(width * (t + 1) / T))] = 0.0 if t < context else 1.0
    return torch.cat([body, bar], -2)


def write_gif(frames: Tensor, path: str | os.PathLike, ms: int = 200, scale: int = 1) -> None:
    """An animated GIF of ``frames`` (T, C, H, W) in [-1, 1], ``ms`` per frame, looping, written
    atomically (Pillow)."""
    import io

    from PIL import Image

    from gankit.fsutil import atomic_write_bytes

    x = ((frames.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()
    if scale > 1:
        x = x.repeat_interleave(scale, -1).repeat_interleave(scale, -2)
    mode = "L" if x.shape[1] == 1 else "RGB"
    images = [Image.fromarray(f[0].numpy() if mode == "L" else f.permute(1, 2, 0).numpy(), mode) for f in x]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=ms, loop=0)
    atomic_write_bytes(path, buf.getvalue())


__all__ = ["DATA_SEED", "LoadedPredictor", "TASK", "check_nextframe_meta", "evaluate_predictor",
           "is_nextframe_checkpoint", "load_predictor", "load_run_videos", "score_in_chunks", "sequence_for", "strips", "write_gif"]
