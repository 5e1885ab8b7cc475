"""Draw samples: `python -m explorer.sample {vae,hvae,vdm} --dataset ... --n N --seed K
[--sampler ddpm|ddim|dpmpp2m --steps S --spacing karras|linspace] --out FILE.npy` writes a uint8 array
of shape (N, 28, 28)."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from explorer import cli
from explorer.checkpoint import load_checkpoint
from explorer.data import to_uint8
from explorer.samplers import DEFAULT_TIMESTEP_SPACING, KARRAS_RHO, SAMPLERS, TIMESTEP_SPACINGS


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m explorer.sample", description=__doc__.split("\n")[0])
    cli.add_common_args(p)
    p.add_argument("--checkpoint", default=None,
                   help="checkpoint stem (default pretrained/<dataset>/<model>)")
    p.add_argument("--n", type=int, default=64, help="number of images")
    p.add_argument("--sampler", choices=SAMPLERS, default="ddim",
                   help="VDM sampler (dpmpp2m: DPM-Solver++(2M))")
    p.add_argument("--steps", type=int, default=50, help="VDM sampling steps (<= T)")
    p.add_argument("--eta", type=float, default=0.0, help="DDIM eta (0 = deterministic)")
    p.add_argument("--spacing", choices=TIMESTEP_SPACINGS, default=DEFAULT_TIMESTEP_SPACING,
                   help="VDM timestep spacing: karras (rho = %g) or linspace (even in t)"
                        % KARRAS_RHO)
    p.add_argument("--temperature", type=float, default=1.0, help="VAE / HVAE prior temperature")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--out", required=True, help="output .npy file")
    return p.parse_args(argv)


@torch.no_grad()
def draw(model, n: int, seed: int, sampler: str = "ddim", steps: int = 50, eta: float = 0.0,
         temperature: float = 1.0, batch_size: int = 256,
         timestep_spacing: str = DEFAULT_TIMESTEP_SPACING) -> np.ndarray:
    """n samples as uint8 (n, 28, 28), reproducible from `seed`."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for start in range(0, n, batch_size):
        m = min(batch_size, n - start)
        if model.kind == "vdm":
            x = model.sample(m, generator=gen, sampler=sampler, steps=steps, eta=eta,
                             timestep_spacing=timestep_spacing)
        else:
            x = model.sample(m, temperature=temperature, generator=gen)
        out.append(to_uint8(x.cpu()))
    return np.concatenate(out, axis=0)


def main(argv=None) -> int:
    args = parse_args(argv)
    cli.set_threads(args.threads)
    if args.n < 1:
        raise SystemExit("--n must be at least 1")
    model, _ = load_checkpoint(args.checkpoint or cli.default_stem(args.model, args.dataset),
                               map_location=args.device)
    if model.kind == "vdm" and not 1 <= args.steps <= model.T:
        raise SystemExit(f"--steps must be in 1..{model.T}")
    started = time.time()
    images = draw(model, args.n, args.seed, args.sampler, args.steps, args.eta,
                  args.temperature, args.batch_size, args.spacing)
    np.save(args.out, images)
    print(f"wrote {args.out}: {images.shape} {images.dtype} in {time.time() - started:.1f} s",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
