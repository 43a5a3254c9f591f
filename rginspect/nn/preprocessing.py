"""RG-Flow's image preprocessing: optional dequantization, squeeze into [0.05, 0.95], logit."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.functional import softplus


class LogitTransform(nn.Module):
    """images01 in [0, 1] <-> unbounded model space x, with the log-det of the forward map."""

    def __init__(self, constraint: float = 0.9) -> None:
        super().__init__()
        self.constraint = constraint

    def forward(
        self,
        images01: torch.Tensor,
        dequantize: bool = False,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        y = dequantized(images01, generator) if dequantize else images01
        # the same operation order as upstream, so float32 results match to the last bit
        y = ((y * 2 - 1) * self.constraint + 1) / 2
        x = torch.log(y) - torch.log(1 - y)
        return x, self.log_det_at(x)

    def log_det_at(self, x: torch.Tensor) -> torch.Tensor:
        """log|det ∂x/∂images01| per sample at model-space x: finite at any x, where inverting
        first would round sigmoid(x) to 1 in the tails (model samples reach there)."""
        pre_logit_scale = math.log(self.constraint) - math.log(1 - self.constraint)
        ldj = softplus(x) + softplus(-x) - math.log1p(math.exp(-pre_logit_scale))
        return ldj.reshape(x.shape[0], -1).sum(1)

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.sigmoid(x)
        return ((y * 2 - 1) / self.constraint + 1) / 2


def dequantized(images01: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """8-bit images in [0, 1] spread uniformly over their bins: (255·x + u)/256, u ~ U[0, 1)."""
    where = generator.device if generator is not None else images01.device
    noise = torch.rand(images01.shape, generator=generator, device=where).to(images01)
    return (images01 * 255 + noise) / 256
