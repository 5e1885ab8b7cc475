"""Standard normal draws that do not depend on where the model runs."""

from __future__ import annotations

import torch
from torch import Tensor


def standard_normal(shape, generator: torch.Generator | None = None, device=None,
                    dtype: torch.dtype = torch.float32) -> Tensor:
    """eps ~ N(0, I) of `shape`, drawn on the generator's own device and moved to `device`.

    A CPU generator therefore drives a model on the GPU, and one seed gives the same draw
    wherever the model runs. Without a generator the draw is made on `device` directly."""
    where = generator.device if generator is not None else device
    return torch.randn(tuple(shape), generator=generator, device=where, dtype=dtype).to(device)
