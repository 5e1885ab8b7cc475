"""Helpers for the app tests: a pretrained/ folder of tiny untrained models, and the app launched
in-process against it, so the tests never depend on what training has produced so far.

The folder holds both galleries (copied from the real pretrained/), a VAE, an HVAE and a VDM
(learned schedule, T = 1000, its prior fitted to the gallery) for both datasets, and the 2-D VAE
for MNIST only: the Fashion-MNIST 2-D VAE is missing on purpose. Their ONNX graphs and onnx.json
are exported beside them (explorer/export.py), so the page can run them itself (ui/compute.py).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import warnings
from pathlib import Path

import torch

from explorer import export
from explorer.checkpoint import save_checkpoint
from explorer.data import DATASETS, load_gallery
from explorer.models import HVAE, VAE, VDM, HVAEConfig, VAEConfig, VDMConfig
from explorer.paths import PRETRAINED_ENV

REPO = Path(__file__).resolve().parent.parent
TINY = dict(channels=(4, 8, 8), blocks=(1, 1, 1))


def build_pretrained(root: Path) -> Path:
    """Write galleries, tiny models and their ONNX graphs into root/<dataset>/; returns root."""
    torch.manual_seed(0)
    for dataset in DATASETS:
        folder = root / dataset
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / "pretrained" / dataset / "gallery.npz", folder / "gallery.npz")
        save_checkpoint(VAE(VAEConfig(latent_dim=6, **TINY)), folder / "vae")
        save_checkpoint(HVAE(HVAEConfig(latent_shapes=((2, 7, 7), (3, 7, 7), (4, 1, 1)),
                                        hidden=16, **TINY)), folder / "hvae")
        vdm = VDM(VDMConfig(channels=(8, 8, 8), attention=False, prior="fitted", prior_rank=8))
        vdm.fit_prior(load_gallery(dataset, folder / "gallery.npz").tensor())   # as shipped
        save_checkpoint(vdm, folder / "vdm")
    save_checkpoint(VAE(VAEConfig(latent_dim=2, **TINY)), root / "mnist" / "vae2d")
    with pretrained_env(root):                   # export reads the models from pretrained_dir()
        for dataset in DATASETS:
            export_graphs(dataset, root / dataset)
    return root


_EXPORTED: dict[str, Path] = {}                  # dataset -> a folder its graphs were exported to


def export_graphs(dataset: str, folder: Path) -> None:
    """The dataset's ONNX graphs and onnx.json in `folder` ($EXPLORER_PRETRAINED_DIR = its
    parent). Exporting takes ~2.5 s a dataset, and every build makes the same models (seed 0):
    the graphs of an earlier build are copied, and exported again only when check_exports finds
    them made from other weights."""
    if dataset in _EXPORTED:
        try:
            for name in [export.MANIFEST, *(f"{graph}.onnx" for graph in export.SOURCES)]:
                shutil.copy(_EXPORTED[dataset] / name, folder / name)
            if not export.check_exports(dataset, folder):
                return
        except OSError:                          # that folder is gone: export
            pass
    export_quietly(dataset, folder)
    _EXPORTED[dataset] = folder


def export_quietly(dataset: str, folder: Path) -> None:
    """explorer.export.export without the TorchScript exporter's deprecation and tracer
    warnings (about torch's own code, not ours), which would crowd every test's report."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export.export(dataset, folder)


@contextlib.contextmanager
def pretrained_env(root: Path):
    """$EXPLORER_PRETRAINED_DIR set to `root` inside the block, restored after it."""
    previous = os.environ.get(PRETRAINED_ENV)
    os.environ[PRETRAINED_ENV] = str(root)
    try:
        yield root
    finally:
        if previous is None:
            os.environ.pop(PRETRAINED_ENV, None)
        else:
            os.environ[PRETRAINED_ENV] = previous


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fresh_app():
    """The `app` module with a Blocks built anew (its page, its queue). Gradio keeps a Blocks'
    queue across close() and launch(), with the count of running events of each concurrency
    group, so an event still running when a test module closed the app would hold its group's
    slot (the projection group has one) in every later launch. Each launch here serves a Blocks
    that was never launched, as `python app.py` does."""
    import importlib

    import app
    return importlib.reload(app)


def launch_app(root: Path):
    """Point the app at `root`, (re)load its store, launch it; returns (app module, url).

    Another test module may have imported `app` already with the real pretrained/, so the store
    is reloaded explicitly. The environment variable is restored by `close_app`."""
    previous = os.environ.get(PRETRAINED_ENV)
    os.environ[PRETRAINED_ENV] = str(root)
    from ui.store import STORE
    STORE.reload()
    app = fresh_app()                           # its page's first values from these models
    _, url, _ = app.launch(server_name="127.0.0.1", server_port=free_port(),
                           prevent_thread_lock=True, quiet=True)
    app._test_previous_env = previous
    return app, url


def close_app(app) -> None:
    app.demo.close()
    previous = getattr(app, "_test_previous_env", None)
    if previous is None:
        os.environ.pop(PRETRAINED_ENV, None)
    else:
        os.environ[PRETRAINED_ENV] = previous
