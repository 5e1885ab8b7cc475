"""A small U-Net eps_theta(x_t, t) that predicts the noise in x_t (28x28, levels 28 -> 14 -> 7)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding of (B,) float timesteps -> (B, dim) (Vaswani et al.; Ho et al.)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]                          # (B, half)
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


def fourier_features(x: Tensor, exponents: tuple[int, ...]) -> Tensor:
    """sin / cos(2^n pi x) of every pixel for n in exponents: (B, C, H, W) -> (B, 2 C len(n), H, W).

    They let the network see fine position within the 2/255-wide pixel bins, which the
    likelihood rewards (Kingma et al. 2021, sec. 3.3)."""
    feats = []
    for n in exponents:
        w = (2.0 ** n) * math.pi
        feats += [torch.sin(w * x), torch.cos(w * x)]
    return torch.cat(feats, dim=1)


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, channels), channels)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, with the time embedding added in between, and a skip path."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int, dropout: float):
        super().__init__()
        self.norm1, self.conv1 = _norm(c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, c_out)
        self.norm2, self.conv2 = _norm(c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.dropout = nn.Dropout(dropout)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))                        # (B, c_out, H, W)
        h = h + self.emb(F.silu(emb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Single-head self-attention over the H*W positions, residual."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = _norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, h * w).unbind(1)    # (B, C, HW) each
        a = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return x + self.out(a.transpose(1, 2).reshape(b, c, h, w))


class UNet(nn.Module):
    """eps_theta(x_t, t): (B, 1, 28, 28), (B,) -> (B, 1, 28, 28).

    `channels` gives the width at each resolution 28, 14, 7 (len(channels) levels);
    `time_scale` maps the step t in 0..T to the embedded value (t * 1000 / T)."""

    def __init__(self, channels: tuple[int, ...] = (32, 64, 64), res_blocks: int = 1,
                 attention: bool = True, dropout: float = 0.0,
                 fourier_exponents: tuple[int, ...] = (6, 7), in_channels: int = 1,
                 time_scale: float = 1.0):
        super().__init__()
        self.fourier_exponents = tuple(fourier_exponents)
        self.time_scale = time_scale
        c0 = channels[0]
        self.emb_dim = 4 * c0
        self.time_mlp = nn.Sequential(nn.Linear(c0, self.emb_dim), nn.SiLU(),
                                      nn.Linear(self.emb_dim, self.emb_dim))
        c_feat = in_channels * (1 + 2 * len(self.fourier_exponents))
        self.stem = nn.Conv2d(c_feat, c0, 3, padding=1)

        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        skips, c = [c0], c0
        for level, ch in enumerate(channels):
            blocks = nn.ModuleList()
            for _ in range(res_blocks):
                blocks.append(ResBlock(c, ch, self.emb_dim, dropout))
                c = ch
                skips.append(c)
            self.down.append(blocks)
            if level < len(channels) - 1:
                self.downsample.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
                skips.append(c)
        self.mid1 = ResBlock(c, c, self.emb_dim, dropout)
        self.mid_attn = SelfAttention(c) if attention else nn.Identity()
        self.mid2 = ResBlock(c, c, self.emb_dim, dropout)

        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for level, ch in reversed(list(enumerate(channels))):
            blocks = nn.ModuleList()
            for _ in range(res_blocks + 1):
                blocks.append(ResBlock(c + skips.pop(), ch, self.emb_dim, dropout))
                c = ch
            self.up.append(blocks)
            if level > 0:
                self.upsample.append(nn.Conv2d(c, c, 3, padding=1))
        self.head = nn.Sequential(_norm(c), nn.SiLU(), nn.Conv2d(c, in_channels, 3, padding=1))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        emb = self.time_mlp(timestep_embedding(t.float() * self.time_scale, self.stem.out_channels))
        feats = [x]
        if self.fourier_exponents:
            feats.append(fourier_features(x, self.fourier_exponents))
        h = self.stem(torch.cat(feats, dim=1))                       # (B, c0, 28, 28)
        hs = [h]
        for level, blocks in enumerate(self.down):
            for block in blocks:
                h = block(h, emb)
                hs.append(h)
            if level < len(self.downsample):
                h = self.downsample[level](h)                        # halve H, W
                hs.append(h)
        h = self.mid2(self.mid_attn(self.mid1(h, emb)), emb)
        for i, blocks in enumerate(self.up):
            for block in blocks:
                h = block(torch.cat([h, hs.pop()], dim=1), emb)
            if i < len(self.upsample):
                h = self.upsample[i](F.interpolate(h, scale_factor=2, mode="nearest"))
        return self.head(h)
