"""A small task defined outside gankit, registered in its task catalogue: proof that a new
application is one task class plus one registry entry, and that it inherits every lifecycle
capability (the generated tests in tests/train/test_tasks.py run it like gankit's own).

G(z) = A z + b learns a 2-D Gaussian N((1, -1), 0.1^2 I); D is a small MLP. Importing this
module registers it as task ``toy`` (``model.arch`` ``toy-linear``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gankit.checkpoint import Checkpoint, optimizer_from_flat, optimizer_to_flat
from gankit.diagnosis import grad_norm
from gankit.images import save_grid
from gankit.losses import LOSSES, d_probability
from gankit.tasks import TASKS, TaskEntry
from gankit.train import distributed
from gankit.train.state import adam
from gankit.train.task import Task

MEAN = torch.tensor([1.0, -1.0])


class ToyTask(Task):
    unit = "pt"

    def setup(self, data: Any | None = None) -> None:
        t = self.cfg.train
        torch.manual_seed(t.seed)
        g = torch.Generator().manual_seed(t.seed + 7)
        self.real = (MEAN + 0.1 * torch.randn(512, 2, generator=g)).to(self.device)
        self.G = nn.Linear(4, 2).to(self.device)
        self.D = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1)).to(self.device)
        self.opt_G, self.opt_D = adam(self.G, t.lr_g, (0.5, 0.999)), adam(self.D, t.lr_d, (0.5, 0.999))
        self.z_gen = torch.Generator(device=self.device).manual_seed(t.seed)
        self.loss = LOSSES.get("nonsaturating")
        self.ctx.notes.append("toy: 512 points of N((1, -1), 0.01 I)")

    def draw(self) -> tuple[Tensor, Tensor]:
        """This rank's shard of a global batch of real points and of noise."""
        n = self.cfg.train.batch_size * self.dist.world
        index = torch.randint(len(self.real), (n,), device=self.device, generator=self.z_gen)
        z = torch.randn(n, 4, device=self.device, generator=self.z_gen)
        return (distributed.shard(self.dist, self.real[index]), distributed.shard(self.dist, z))

    def iteration(self, step: int) -> dict[str, Tensor]:
        real, z = self.draw()
        fake = self.G(z)
        self.opt_D.zero_grad(set_to_none=True)
        logits_real, logits_fake = self.D(real).squeeze(1), self.D(fake.detach()).squeeze(1)
        loss_d = self.loss.d_loss(logits_real, logits_fake)
        loss_d.backward()
        distributed.average_gradients(self.dist, self.D.parameters())
        self.opt_D.step()
        self.opt_G.zero_grad(set_to_none=True)
        loss_g = self.loss.g_loss(self.D(fake).squeeze(1))
        loss_g.backward()
        distributed.average_gradients(self.dist, self.G.parameters())
        self.opt_G.step()
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(), "d_real": d_probability(logits_real),
                "d_fake": d_probability(logits_fake), "grad_g": grad_norm(self.G), "grad_d": grad_norm(self.D)}

    def checkpoint(self) -> tuple[dict[str, Tensor], dict[str, Tensor], dict[str, Any]]:
        model = {f"G.{k}": v for k, v in self.G.state_dict().items()}
        model |= {f"D.{k}": v for k, v in self.D.state_dict().items()}
        tG, mG = optimizer_to_flat("opt_G", self.opt_G)
        tD, mD = optimizer_to_flat("opt_D", self.opt_D)
        return model, {**tG, **tD, "rng.z": self.z_gen.get_state()}, {"optim": {"opt_G": mG, "opt_D": mD}}

    def check_resume(self, meta: dict[str, Any]) -> None:
        pass

    def restore(self, ckpt: Checkpoint) -> None:
        assert ckpt.train is not None
        self.G.load_state_dict(ckpt.module_state("G"))
        self.D.load_state_dict(ckpt.module_state("D"))
        optimizer_from_flat("opt_G", self.opt_G, ckpt.train, ckpt.meta["optim"]["opt_G"])
        optimizer_from_flat("opt_D", self.opt_D, ckpt.train, ckpt.meta["optim"]["opt_D"])
        self.z_gen.set_state(ckpt.train["rng.z"])

    def optimizers(self) -> list[torch.optim.Optimizer]:
        return [self.opt_G, self.opt_D]

    def generators(self) -> list[torch.Generator]:
        return [self.z_gen]

    def save_samples(self, path: Path, step: int) -> None:
        with torch.no_grad():  # 8 tiles, each a point's two coordinates as two gray bars
            pts = self.G(torch.randn(8, 4, generator=torch.Generator().manual_seed(0)).to(self.device))
        tiles = pts.clamp(-1, 1)[:, :, None, None].expand(8, 2, 4, 2).reshape(8, 1, 4, 4)
        save_grid(tiles.cpu(), path, nrow=8, row_labels=["G(z)"])

    def default_eval_key(self) -> str:
        return "mean_error"

    def higher_is_better(self, key: str) -> bool:
        return False

    def evaluate(self, key: str) -> dict[str, float]:
        with torch.no_grad():
            z = torch.randn(1000, 4, generator=torch.Generator().manual_seed(1)).to(self.device)
            return {"mean_error": float((self.G(z).mean(0).cpu() - MEAN).norm())}

    def result(self, run_dir: Path, step: int, history: list[dict[str, Any]]) -> dict[str, Any]:
        return {"run_dir": run_dir, "step": step, "G": self.G}


if "toy" not in TASKS:
    TASKS.register("toy", TaskEntry(ToyTask, lambda: ["toy-linear"], {"data": "toy", "model": "toy-linear"}),
                   "a 2-D Gaussian from a linear G (tests only)")

