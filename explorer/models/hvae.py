"""A Markovian hierarchical VAE: L stochastic layers, bottom-up encoder, top-down decoder.

    encoder   q(z_1|x) q(z_2|z_1) ... q(z_L|z_{L-1}),        each N(mean, diag exp(logvar))
    decoder   p(z_L) = N(0, I),  p(z_{l-1}|z_l) Gaussian,  p(x|z_1) discretized logistic per pixel

-ELBO, term by term as in Luo, "Understanding Diffusion Models" (2022): the first ELBO
decomposition of the VDM section (reconstruction, prior matching, consistency terms), which holds
for any Markovian HVAE. One sample z_{1:L} ~ q(z_{1:L}|x), z_0 = x:

    reconstruction  = -log p(x|z_1)
    consistency_l   = E_q[log q(z_l|z_{l-1})] - log p(z_l|z_{l+1})      l = 1 .. L-1
                      (the entropy of q in closed form, the prior log-density at the sample)
    prior_matching  = KL(q(z_L|z_{L-1}) || N(0, I))                   (closed form)

Their sum has the same expectation as the one-sample log q(z_{1:L}|x) - log p(x, z_{1:L})
(`log_importance_weight`); the closed-form entropies cut its variance once q is much narrower
than p, as in a trained model (at initialisation, where q ~ p, the direct estimate is tighter).

Indexing: Python lists hold the layers bottom-up, so list index i is layer l = i + 1 (z_1 first).
Every z_l has shape (B, *config.latent_shapes[i]); a vector layer is (B, D, 1, 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import prod

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from explorer.config import ELBOTerms
from explorer.likelihood import (discretized_logistic_log_prob, gaussian_entropy, gaussian_kl,
                                 gaussian_log_prob, sum_except_batch)
from explorer.models.layers import (MLP, ConvDecoder, ConvEncoder, ResBlock, gaussian_sample,
                                    logistic_params, resolution_after, soft_clamp_logvar)
from explorer.models.vae import kl_weight

FLAT_CHANNELS = 32  # a 7x7 map is squeezed to this many channels before a Linear layer

Shape = tuple[int, int, int]


@dataclass(frozen=True)
class HVAEConfig:
    # (C, H, W) of z_1 .. z_L, bottom-up; H = W = 1 is a vector, else H = W = the tower's output
    # resolution (7 for three levels). Default: a spatial 8x7x7 z_1 under a 32-d vector z_2.
    latent_shapes: tuple[tuple[int, int, int], ...] = ((8, 7, 7), (32, 1, 1))
    channels: tuple[int, ...] = (16, 48, 96)    # conv widths at 28, 14, 7 of the x <-> z_1 nets
    blocks: tuple[int, ...] = (1, 1, 1)         # residual blocks at each of those resolutions
    hidden: int = 256                           # MLP width of the maps between latent layers
    warmup_steps: int = 2000                    # latent terms' weight rises 0 -> 1 over these
    free_bits: float = 0.1                      # per-layer floor, nats per latent dim

    def __post_init__(self):
        r = resolution_after(len(self.channels))
        if len(self.blocks) != len(self.channels):
            raise ValueError(f"blocks {self.blocks} needs one entry per level of {self.channels}")
        if len(self.latent_shapes) < 2:
            raise ValueError("a hierarchical VAE needs at least 2 latent layers")
        for shape in self.latent_shapes:
            if len(shape) != 3 or shape[0] < 1 or shape[1] != shape[2] or shape[1] not in (1, r):
                raise ValueError(f"latent shape {shape} must be (C, 1, 1) or (C, {r}, {r})")
        if self.warmup_steps < 0 or self.free_bits < 0:
            raise ValueError("warmup_steps and free_bits must be >= 0")


@dataclass
class LayerLatent:
    """One layer of the encoder: q(z_l|z_{l-1}) = N(mean, diag exp(logvar)) and its draw z."""
    mean: Tensor     # (B, C, H, W)
    logvar: Tensor   # (B, C, H, W)
    z: Tensor        # (B, C, H, W); equals mean when encoded with use_mean=True


@dataclass
class HVAEDecoded:
    """A top-down pass: every layer's z (bottom-up, z_1 first) and the mean of p(x|z_1)."""
    zs: list[Tensor]   # zs[i]: (B, *latent_shapes[i])
    x_mean: Tensor     # (B, 1, 28, 28) in [-1, 1]


class GaussianMap(nn.Module):
    """Parameters (mean, logvar) of a diagonal Gaussian over `out_shape` given a tensor of
    `in_shape`: conv + ResBlock at r x r, MLPs for vectors, Linear layers between the two."""

    def __init__(self, in_shape: Shape, out_shape: Shape, width: int, hidden: int):
        super().__init__()
        self.out_shape = out_shape
        c_in, r_in, _ = in_shape
        c_out, r_out, _ = out_shape
        layers: list[nn.Module] = []
        if r_in > 1:  # spatial input: convolve at r x r
            layers += [nn.Conv2d(c_in, width, 3, padding=1), ResBlock(width), nn.SiLU()]
            if r_out > 1:
                layers += [nn.Conv2d(width, 2 * c_out, 3, padding=1)]
            else:
                layers += [nn.Conv2d(width, FLAT_CHANNELS, 1), nn.Flatten(), nn.SiLU(),
                           MLP(FLAT_CHANNELS * r_in * r_in, (hidden,), 2 * c_out)]
        elif r_out > 1:  # vector -> spatial: project to a r x r map, then convolve
            layers += [nn.Flatten(), MLP(c_in, (hidden,), FLAT_CHANNELS * r_out * r_out),
                       nn.Unflatten(1, (FLAT_CHANNELS, r_out, r_out)), nn.SiLU(),
                       nn.Conv2d(FLAT_CHANNELS, width, 3, padding=1), ResBlock(width), nn.SiLU(),
                       nn.Conv2d(width, 2 * c_out, 3, padding=1)]
        else:  # vector -> vector
            layers += [nn.Flatten(), MLP(c_in, (hidden, hidden), 2 * c_out)]
        self.net = nn.Sequential(*layers)

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        out = self.net(h).view(h.shape[0], 2 * self.out_shape[0], *self.out_shape[1:])
        mean, logvar = out.chunk(2, dim=1)                                   # (B, C, H, W) each
        return mean, soft_clamp_logvar(logvar)


class HVAE(nn.Module):
    """Markovian hierarchical VAE over 28x28 images (see the module docstring for the ELBO)."""

    kind = "hvae"
    config_cls = HVAEConfig

    def __init__(self, config: HVAEConfig = HVAEConfig()):
        super().__init__()
        self.config = config
        shapes = config.latent_shapes
        width, r = config.channels[-1], resolution_after(len(config.channels))
        c1, r1, _ = shapes[0]
        # q(z_1|x): conv tower to (width, r, r), then a conv (spatial z_1) or a Linear (vector)
        self.x_encoder = ConvEncoder(1, config.channels, config.blocks)
        self.to_z1 = (nn.Conv2d(width, 2 * c1, 3, padding=1) if r1 > 1 else
                      nn.Sequential(nn.Flatten(), nn.Linear(width * r * r, 2 * c1)))
        # q(z_{l+1}|z_l) for l = 1 .. L-1 and p(z_l|z_{l+1}) for l = 1 .. L-1
        self.q_maps = nn.ModuleList(GaussianMap(shapes[i], shapes[i + 1], width, config.hidden)
                                    for i in range(len(shapes) - 1))
        self.p_maps = nn.ModuleList(GaussianMap(shapes[i + 1], shapes[i], width, config.hidden)
                                    for i in range(len(shapes) - 1))
        # p(x|z_1): back to (width, r, r), then the mirrored tower to 2 channels (mean, log-scale)
        self.from_z1 = (nn.Conv2d(c1, width, 3, padding=1) if r1 > 1 else
                        nn.Sequential(nn.Flatten(), nn.Linear(c1, width * r * r),
                                      nn.Unflatten(1, (width, r, r))))
        self.x_decoder = ConvDecoder(2, config.channels, config.blocks)

    @property
    def num_layers(self) -> int:
        """L, the number of stochastic layers."""
        return len(self.config.latent_shapes)

    @property
    def latent_dims(self) -> list[int]:
        """Flattened size C*H*W of each layer, bottom-up."""
        return [prod(shape) for shape in self.config.latent_shapes]

    # --- inference network q ----------------------------------------------------------------

    def encode(self, x: Tensor, generator: torch.Generator | None = None,
               use_mean: bool = False) -> list[LayerLatent]:
        """Bottom-up pass through q(z_1|x), q(z_2|z_1), ..., q(z_L|z_{L-1}); one LayerLatent per
        layer (z_1 first). Each z is a draw (or, with use_mean=True, the mean, and the next
        layer is conditioned on that mean)."""
        c1 = self.config.latent_shapes[0]
        h = self.to_z1(self.x_encoder(x)).view(x.shape[0], 2 * c1[0], *c1[1:])
        mean, logvar = h.chunk(2, dim=1)                                     # (B, C1, H1, W1)
        logvar = soft_clamp_logvar(logvar)
        latents = []
        for i in range(self.num_layers):
            if i > 0:
                mean, logvar = self.q_maps[i - 1](latents[-1].z)             # q(z_l|z_{l-1})
            z = mean if use_mean else gaussian_sample(mean, logvar, 1.0, generator)
            latents.append(LayerLatent(mean=mean, logvar=logvar, z=z))
        return latents

    # --- generative network p -----------------------------------------------------------------

    def prior_params(self, index: int, z_above: Tensor) -> tuple[Tensor, Tensor]:
        """(mean, logvar) of p(z_l|z_{l+1}) for list index `index` = l - 1 < L - 1, given
        z_above = z_{l+1}; each (B, *latent_shapes[index]). The top prior p(z_L) is N(0, I)."""
        if not 0 <= index < self.num_layers - 1:
            raise ValueError(f"prior_params takes index 0..{self.num_layers - 2}; "
                             f"the top layer's prior is N(0, I)")
        return self.p_maps[index](z_above)

    def likelihood_params(self, z1: Tensor) -> tuple[Tensor, Tensor]:
        """Parameters of p(x|z_1): per-pixel logistic (mean, log_scale), each (B, 1, 28, 28)."""
        h = F.silu(self.from_z1(z1))                                         # (B, width, r, r)
        return logistic_params(self.x_decoder(h))

    def decode(self, latents: Sequence[Tensor | None], temperature: float = 1.0,
               generator: torch.Generator | None = None, n: int | None = None) -> HVAEDecoded:
        """Top-down ancestral pass from z_L to z_1, then the mean of p(x|z_1).

        latents[i] is z_{i+1} (bottom-up, like `encode`): a tensor is kept fixed; None is drawn
        from p(z_L) = N(0, I) (top) or p(z_l|z_{l+1}), with its std times `temperature`
        (0 gives the mean). n is the batch size when every layer is None.
        """
        if len(latents) != self.num_layers:
            raise ValueError(f"decode needs {self.num_layers} layers (tensor or None), "
                             f"got {len(latents)}")
        given = [z for z in latents if z is not None]
        batch = given[0].shape[0] if given else n
        if batch is None:
            raise ValueError("decode with every layer None needs the batch size n")
        device = next(self.parameters()).device
        zs: list[Tensor | None] = [None] * self.num_layers
        for i in reversed(range(self.num_layers)):
            if latents[i] is not None:
                zs[i] = latents[i]
                continue
            if i == self.num_layers - 1:                                     # p(z_L) = N(0, I)
                mean = torch.zeros((batch, *self.config.latent_shapes[i]), device=device)
                logvar = torch.zeros_like(mean)
            else:                                                            # p(z_l|z_{l+1})
                mean, logvar = self.prior_params(i, zs[i + 1])
            zs[i] = gaussian_sample(mean, logvar, temperature, generator)
        mean, _ = self.likelihood_params(zs[0])
        return HVAEDecoded(zs=zs, x_mean=mean.clamp(-1.0, 1.0))

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0,
               generator: torch.Generator | None = None) -> Tensor:
        """Ancestral sample z_L -> ... -> z_1 -> mean of p(x|z_1): (n, 1, 28, 28) in [-1, 1]."""
        return self.decode([None] * self.num_layers, temperature, generator, n=n).x_mean

    # --- objectives -----------------------------------------------------------------------------

    def elbo(self, x: Tensor, generator: torch.Generator | None = None) -> ELBOTerms:
        """One-sample -ELBO terms per example, (B,) nats, in the order reconstruction,
        consistency_1 .. consistency_{L-1}, prior_matching (module docstring)."""
        latents = self.encode(x, generator)
        mean, log_scale = self.likelihood_params(latents[0].z)
        terms = ELBOTerms(reconstruction=-sum_except_batch(
            discretized_logistic_log_prob(x, mean, log_scale)))
        for i in range(self.num_layers - 1):
            q = latents[i]
            p_mean, p_logvar = self.prior_params(i, latents[i + 1].z)
            terms[f"consistency_{i + 1}"] = sum_except_batch(
                -gaussian_entropy(q.logvar) - gaussian_log_prob(q.z, p_mean, p_logvar))
        top = latents[-1]
        terms["prior_matching"] = sum_except_batch(gaussian_kl(top.mean, top.logvar))
        return terms

    def log_importance_weight(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """log p(x, z_{1:L}) - log q(z_{1:L}|x) at one draw z_{1:L} ~ q, (B,) nats. Its mean is
        the ELBO; a log-mean-exp over K draws is the importance-weighted bound."""
        latents = self.encode(x, generator)
        mean, log_scale = self.likelihood_params(latents[0].z)
        log_w = sum_except_batch(discretized_logistic_log_prob(x, mean, log_scale))
        for i, q in enumerate(latents):
            if i < self.num_layers - 1:
                p_mean, p_logvar = self.prior_params(i, latents[i + 1].z)
            else:
                p_mean, p_logvar = torch.zeros_like(q.z), torch.zeros_like(q.z)
            log_w = log_w + sum_except_batch(gaussian_log_prob(q.z, p_mean, p_logvar)
                                             - gaussian_log_prob(q.z, q.mean, q.logvar))
        return log_w

    def training_loss(self, x: Tensor, step: int,
                      generator: torch.Generator | None = None) -> tuple[Tensor, ELBOTerms]:
        """Scalar loss = mean reconstruction + beta(step) * sum_l max(mean T_l, free_bits * dim_l),
        over the latent terms T_l (consistency_1 .. consistency_{L-1}, prior_matching).

        beta rises linearly 0 -> 1 over config.warmup_steps (KL warm-up). Free bits act per
        layer on the batch mean: a layer whose term is below free_bits * dim_l nats gets no
        gradient pushing it lower, so no layer can be switched off early (Kingma et al. 2016,
        IAF, "free bits" over groups = layers). Returns the loss and the true, detached terms;
        with warmup_steps = 0 and free_bits = 0 the loss is exactly the mean -ELBO.
        """
        terms = self.elbo(x, generator)
        latent_terms = list(terms.values())[1:]
        latent_loss = 0.0
        for term, dim in zip(latent_terms, self.latent_dims):
            floor = self.config.free_bits * dim
            latent_loss = latent_loss + (term.mean().clamp(min=floor) if floor > 0 else term.mean())
        beta = kl_weight(step, self.config.warmup_steps)
        loss = terms["reconstruction"].mean() + beta * latent_loss
        return loss, ELBOTerms((k, v.detach()) for k, v in terms.items())

    @torch.no_grad()
    def active_units(self, x: Tensor, threshold: float = 0.01) -> list[int]:
        """Per layer, the number of dims with Cov_x(E_q[z_l|x]) > threshold over the batch x
        (Burda et al. 2016), following the chain of encoder means z_l = E[q(z_l|z_{l-1})]."""
        latents = self.encode(x, use_mean=True)
        return active_units([q.mean.flatten(1) for q in latents], threshold)


def active_units(means, threshold: float = 0.01) -> list[int]:
    """Per layer, the number of dims whose encoder mean varies over the examples:
    Var_x(E_q[z_l | x]) > threshold (Burda et al. 2016, unbiased variance). `means`: one (N, dim_l)
    tensor or array per layer."""
    return [int((torch.as_tensor(m).var(dim=0) > threshold).sum()) for m in means]
