"""CycleGAN's history of generated images (Zhu et al. 2017, section 4; Shrivastava et al. 2017).

D is updated on fakes drawn half from the newest batch and half from a buffer of the last
``size`` (50) generated images, so it does not forget what G produced before and G cannot
oscillate between old tricks. The random choices come from the pool's own generator and the
buffer is part of the checkpoint, so a resumed run draws the same.
"""

from __future__ import annotations

import torch
from torch import Tensor


class ImagePool:
    """query(fakes) -> a batch of the same shape: each image is, with probability 1/2 once the
    pool is full, swapped for a stored older fake (which the new one replaces)."""

    def __init__(self, size: int = 50, seed: int = 0) -> None:
        self.size = size
        self.images: list[Tensor] = []
        self.gen = torch.Generator().manual_seed(seed)

    def query(self, fakes: Tensor) -> Tensor:
        if self.size == 0:
            return fakes
        out = []
        for img in fakes.detach():  # (C, H, W) each; D's step needs no graph back to G
            if len(self.images) < self.size:  # filling up: store it and use it
                self.images.append(img.clone())
                out.append(img)
                continue
            # one draw decides use-an-old-one, one picks which (CycleGAN's image_pool.py)
            if torch.rand((), generator=self.gen).item() < 0.5:
                k = int(torch.randint(self.size, (), generator=self.gen))
                out.append(self.images[k].clone())
                self.images[k] = img.clone()
            else:
                out.append(img)
        return torch.stack(out)

    def state_tensors(self, prefix: str = "pool") -> dict[str, Tensor]:
        """Buffer and RNG state as tensors (for safetensors)."""
        t = {f"{prefix}.rng": self.gen.get_state()}
        if self.images:
            t[f"{prefix}.images"] = torch.stack(self.images)
        return t

    def load_state_tensors(self, tensors: dict[str, Tensor], prefix: str = "pool") -> None:
        self.gen.set_state(tensors[f"{prefix}.rng"])
        imgs = tensors.get(f"{prefix}.images")
        self.images = [] if imgs is None else [x.clone() for x in imgs]
