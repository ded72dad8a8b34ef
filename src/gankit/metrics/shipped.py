"""Networks whose weights ship with gankit as safetensors (the Fashion-MNIST and emoji classifiers):
loading them never unpickles, never moves the caller's random stream, and a missing or damaged file
is one message saying how to rebuild it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch
from torch import Tensor, nn

from gankit.errors import GankitError, display_path

M = TypeVar("M", bound=nn.Module)


def read_tensors(path: Path, missing: str, fix: str, what: str = "") -> dict[str, Tensor]:
    """The tensors of the safetensors file ``path`` (never a pickle). A GankitError ``missing`` where
    there is no such file; where it does not read, one naming ``what`` (a config key, say), the file, why,
    and ``fix`` (what to do: "; rebuild it with ...")."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise GankitError(missing)
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise GankitError(f"{what}cannot read {display_path(path)} as safetensors ({e}){fix}") from None


def load_shipped(weights: Path, build: Callable[[], M], rebuild: str, missing: str, device: str) -> M:
    """``build()`` with ``weights`` loaded, on ``device``, in eval mode and without gradients.
    ``missing``: the message when the file is absent; ``rebuild``: the command that remakes it."""
    state = read_tensors(weights, missing, f"; rebuild it with `{rebuild}`")
    # Built without touching the global RNG (its layers' random init is overwritten at once): a
    # classifier is loaded once per process, and a training run (whose probe loads it) must draw the
    # same random numbers whether or not something earlier in the process already had.
    with torch.random.fork_rng(devices=[]):
        model = build()
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise GankitError(f"{weights} does not fit {type(model).__name__} ({str(e).splitlines()[0]}); "
                          f"rebuild it with `{rebuild}`") from None
    return model.to(device).eval().requires_grad_(False)


def shipped_metadata(weights: Path, missing: str) -> dict[str, str]:
    """The metadata stored with shipped weights (accuracy, seed, the command that made them, ...)."""
    from safetensors import safe_open

    if not weights.is_file():
        raise GankitError(missing)
    with safe_open(str(weights), framework="pt") as f:
        return dict(f.metadata() or {})


__all__ = ["load_shipped", "shipped_metadata"]
