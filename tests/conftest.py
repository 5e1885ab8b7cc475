import os

import pytest
import torch

torch.set_num_threads(min(2, os.cpu_count() or 1))


def grid_images(n: int, seed: int = 0) -> torch.Tensor:
    """n random images on the 8-bit pixel grid, (n, 1, 28, 28) in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    k = torch.randint(0, 256, (n, 1, 28, 28), generator=g)
    return k.float() * 2 / 255 - 1


@pytest.fixture
def images():
    return grid_images(8)
