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


# The modules that drive the page in Chromium run first. Their tours failed in the full suite
# (and passed alone): after the app had been launched and closed for several modules in one
# process, the page re-sent every view of image A about every 3 s with A unchanged (its img src
# did not change), so the maps were always being redrawn and the tours' waits ran out. Each
# launch now serves a Blocks built anew (app_env.fresh_app); running these first as well keeps
# them in the state they were written against: a process like `python app.py`'s.
FIRST = ("test_browser", "test_page_eps")


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: not item.module.__name__.startswith(FIRST))   # stable: in order
