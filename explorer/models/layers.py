"""Small convolutional building blocks shared by the VAE and the hierarchical VAE.

Images are 28x28; a conv tower with widths `channels = (c_28, c_14, c_7)` halves the resolution
at each level (28 -> 14 -> 7), so `len(channels)` levels end at resolution 28 / 2**(levels-1).
No normalisation layers: residual branches start small instead, so train and eval behave alike.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from explorer.noise import standard_normal

IMAGE_SIZE = 28
LOG_SCALE_MIN = -7.0   # floor of the logistic log-scale (PixelCNN++); bins are 2/255 wide
LOG_SCALE_MAX = 2.0    # soft ceiling: a scale of e^2 is already flat over [-1, 1]
LOGVAR_LIMIT = 10.0    # Gaussian log-variances are soft-clamped to (-10, 10)


def resolution_after(levels: int) -> int:
    """Spatial size after a conv tower of `levels` levels: 28, 14 or 7."""
    if levels not in (1, 2, 3):
        raise ValueError(f"a conv tower has 1, 2 or 3 levels (28, 14, 7), got {levels}")
    return IMAGE_SIZE // 2 ** (levels - 1)


def soft_clamp_logvar(logvar: Tensor) -> Tensor:
    """LIMIT * tanh(logvar / LIMIT): identity near 0, bounded, never a zero gradient."""
    return LOGVAR_LIMIT * torch.tanh(logvar / LOGVAR_LIMIT)


def logistic_params(h: Tensor) -> tuple[Tensor, Tensor]:
    """Split a (B, 2, 28, 28) decoder output into the mean and log-scale of p(x|z).

    The mean is left free (the edge bins take the tails, so a mean beyond +-1 is meaningful);
    the log-scale is softly capped at LOG_SCALE_MAX and floored at LOG_SCALE_MIN.
    """
    mean, raw = h[:, :1], h[:, 1:2]                                          # (B, 1, 28, 28) each
    log_scale = (LOG_SCALE_MAX - F.softplus(LOG_SCALE_MAX - raw)).clamp(min=LOG_SCALE_MIN)
    return mean, log_scale


def gaussian_sample(mean: Tensor, logvar: Tensor, temperature: float = 1.0,
                    generator: torch.Generator | None = None) -> Tensor:
    """z = mean + temperature * sigma * eps, eps ~ N(0, I) drawn from `generator`.

    temperature 0 returns the mean and draws nothing.
    """
    if temperature == 0:
        return mean
    eps = standard_normal(mean.shape, generator, mean.device, mean.dtype)
    return mean + temperature * torch.exp(0.5 * logvar) * eps


class ResBlock(nn.Module):
    """x + conv(SiLU(conv(SiLU(x)))), 3x3 convolutions at constant width and resolution."""

    def __init__(self, channels: int, residual_scale: float = 0.1):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        with torch.no_grad():  # start close to the identity
            self.conv2.weight.mul_(residual_scale)
            self.conv2.bias.zero_()

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(F.silu(self.conv1(F.silu(x))))                  # (B, C, H, W)


class ConvEncoder(nn.Module):
    """(B, in_ch, 28, 28) -> (B, channels[-1], r, r), r = 28 / 2**(len(channels)-1).

    Each level: blocks[i] ResBlocks, then a stride-2 3x3 conv to the next width.
    """

    def __init__(self, in_ch: int, channels: tuple[int, ...], blocks: tuple[int, ...]):
        super().__init__()
        self.out_resolution = resolution_after(len(channels))
        layers: list[nn.Module] = [nn.Conv2d(in_ch, channels[0], 3, padding=1)]
        for i, width in enumerate(channels):
            layers += [ResBlock(width) for _ in range(blocks[i])]
            if i + 1 < len(channels):
                layers += [nn.SiLU(), nn.Conv2d(width, channels[i + 1], 3, stride=2, padding=1)]
        layers.append(nn.SiLU())
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)                                                   # (B, C_last, r, r)


class ConvDecoder(nn.Module):
    """(B, channels[-1], r, r) -> (B, out_ch, 28, 28), the mirror of ConvEncoder.

    Each level (coarse to fine): blocks[i] ResBlocks, then nearest x2 upsampling and a 3x3 conv.
    """

    def __init__(self, out_ch: int, channels: tuple[int, ...], blocks: tuple[int, ...]):
        super().__init__()
        self.in_resolution = resolution_after(len(channels))
        layers: list[nn.Module] = []
        rev, rev_blocks = list(reversed(channels)), list(reversed(blocks))
        for i, width in enumerate(rev):
            layers += [ResBlock(width) for _ in range(rev_blocks[i])]
            if i + 1 < len(rev):
                layers += [nn.Upsample(scale_factor=2, mode="nearest"),
                           nn.Conv2d(width, rev[i + 1], 3, padding=1)]
        layers += [nn.SiLU(), nn.Conv2d(channels[0], out_ch, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, h: Tensor) -> Tensor:
        return self.net(h)                                                   # (B, out_ch, 28, 28)


class MLP(nn.Module):
    """Linear -> SiLU -> ... -> Linear on (B, in_dim); `hidden` widths between."""

    def __init__(self, in_dim: int, hidden: tuple[int, ...], out_dim: int):
        super().__init__()
        dims = (in_dim, *hidden, out_dim)
        layers: list[nn.Module] = []
        for i in range(len(dims) - 1):
            layers.append(nn.Linear(dims[i], dims[i + 1]))
            if i + 2 < len(dims):
                layers.append(nn.SiLU())
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)                                                   # (B, out_dim)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
