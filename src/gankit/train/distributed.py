"""Data-parallel training across processes, as launched by ``torchrun``.

``torchrun --nproc-per-node N -m gankit train ...`` (multi-node through torchrun's rendezvous)
starts N processes with RANK / WORLD_SIZE / LOCAL_RANK in their environment. Each process holds
both networks wrapped in DistributedDataParallel, so gradients are averaged across ranks.

The sharding is chosen so that N ranks at batch B are one process at batch N*B: every rank draws
the same *global* batch of N*B data indices and N*B latent vectors (same seed, same order) and
keeps its own slice [rank*B, (rank+1)*B). Averaging the ranks' gradients of their batch means then
gives exactly the gradient of the global batch mean (for networks without batch norm, whose
statistics are per rank unless ``--sync-bn``). Logging, samples, checkpoints, evaluation and the
report happen on rank 0 only; the logged values are means over all ranks.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


SINGLE = Dist()  # one process, no process group


def from_env() -> Dist:
    """The process's place in a torchrun launch (a single process when not launched so)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE
    return Dist(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def init(d: Dist, device: torch.device) -> None:
    """Join the process group: NCCL between GPUs, gloo between CPU processes."""
    if d.enabled and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend)


def shutdown(d: Dist) -> None:
    if d.enabled and dist.is_initialized():
        dist.destroy_process_group()


def barrier(d: Dist) -> None:
    if d.enabled:
        dist.barrier()


def broadcast_object(d: Dist, obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not d.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_mean(d: Dist, t: Tensor) -> Tensor:
    if d.enabled:
        t = t.clone()
        dist.all_reduce(t)
        t /= d.world
    return t


def shard(d: Dist, global_batch: Tensor) -> Tensor:
    """This rank's slice of a global batch of world * B rows."""
    if not d.enabled:
        return global_batch
    b = global_batch.shape[0] // d.world
    return global_batch[d.rank * b:(d.rank + 1) * b]


def wrap(d: Dist, module: nn.Module, device: torch.device, sync_bn: bool) -> nn.Module:
    """DistributedDataParallel around ``module`` (itself when not distributed)."""
    if not d.enabled:
        return module
    if sync_bn:
        module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids)


def average_gradients(d: Dist, params: Iterable[nn.Parameter]) -> None:
    """Average the parameters' gradients over the ranks, in place, in one collective (a flat
    buffer). What DistributedDataParallel does during backward, done after it: for networks used
    several times in one iteration (CycleGAN's generators), or whose step freezes some of them."""
    if not d.enabled:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= d.world
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()
