"""Small network helpers shared by the layers that apply models: models, metrics, sampling,
translation. Nothing here knows runs, checkpoints or the training loop, so any of them may import it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn


@contextmanager
def evaluating(*modules: nn.Module) -> Iterator[None]:
    """Eval mode (batch norm uses its running statistics) and no autograd, then back as it was."""
    modes = [m.training for m in modules]
    try:
        for m in modules:
            m.eval()
        with torch.inference_mode():
            yield
    finally:
        for m, mode in zip(modules, modes, strict=True):
            m.train(mode)


def apply_in_batches(net: nn.Module, x: Tensor, batch_size: int = 256) -> Tensor:
    """net(x) in eval mode (batch norm's running statistics, no dropout: one output per input,
    whatever else is in the batch), in batches of ``batch_size``. x on net's device."""
    with evaluating(net):
        return torch.cat([net(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])


def apply_spectral_norm(D: nn.Module) -> None:
    """Miyato et al. 2018: divide each weight by its largest singular value, estimated by one step
    of power iteration per training forward pass, so every layer (and D) is 1-Lipschitz. Applied to
    every convolution and linear layer of D (torch's parametrisation; state-dict keys change)."""
    for m in list(D.modules()):
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.utils.parametrizations.spectral_norm(m)


__all__ = ["apply_in_batches", "apply_spectral_norm", "evaluating"]
