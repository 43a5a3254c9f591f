"""A per-site radial map for O(n) fields, and the chain that puts it in front of a block's couplings.

An O(n)-symmetric single-site distribution is a ring: affine couplings that move a site's components
together cannot shape it, and with κ = 0 a flow of them stops at the best isotropic Gaussian. The
radial map rescales each site's vector φ by a monotone spline of ln|φ| and leaves its direction
alone, so it commutes with every global O(n) rotation and reproduces any radial profile:
    φ -> φ·exp(h(u) − u),  u = ln|φ|,  log|det| = n·(h(u) − u) + ln h′(u)
for n components (the direction keeps its n−1 angles; |φ| picks up the factor (r′/r)^(n−1)·dr′/dr).
One spline, shared by every site, keeps the flow translation invariant.
"""

from __future__ import annotations

import torch
from torch import nn

from .splines import IDENTITY_SLOPE_PARAMETER, rational_quadratic, spline_parameters

TINY_RADIUS = 1e-12  # |φ| below this is treated as this (ln 0 is not a number)


class RadialSiteMap(nn.Module):
    """Bijector on rows (N, C·S) of S sites with C components each, channel-major as the MERA
    gathers them; `decode` maps towards the data (h), `encode` back (h⁻¹)."""

    def __init__(self, channels: int, n_bins: int = 16, bound: float = 4.0) -> None:
        super().__init__()
        self.channels = channels
        self.bound = bound
        slopes = torch.full((n_bins - 1,), IDENTITY_SLOPE_PARAMETER)
        self.spline = nn.Parameter(torch.cat([torch.zeros(2 * n_bins), slopes]))
        if self.spline.numel() != spline_parameters(n_bins):
            raise AssertionError("spline parameter count")

    def decode(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._run(rows, inverse=False)

    def encode(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._run(rows, inverse=True)

    def _run(self, rows: torch.Tensor, inverse: bool) -> tuple[torch.Tensor, torch.Tensor]:
        sites = rows.reshape(rows.shape[0], self.channels, -1)
        u = torch.log(sites.norm(dim=1).clamp_min(TINY_RADIUS))  # (N, S)
        h, log_slope = rational_quadratic(u, self.spline, self.bound, inverse=inverse)
        moved = sites * torch.exp(h - u)[:, None, :]
        logdet = (self.channels * (h - u) + log_slope).sum(-1)
        return moved.reshape(rows.shape), logdet


class BijectorChain(nn.Module):
    """Row bijectors applied in order when encoding and in reverse when decoding."""

    def __init__(self, steps: list[nn.Module]) -> None:
        super().__init__()
        self.steps = nn.ModuleList(steps)

    def encode(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._run(rows, list(self.steps), "encode")

    def decode(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._run(rows, list(self.steps)[::-1], "decode")

    @staticmethod
    def _run(rows: torch.Tensor, steps: list[nn.Module], direction: str):
        logdet = rows.new_zeros(rows.shape[0])
        for step in steps:
            rows, step_logdet = getattr(step, direction)(rows)
            logdet = logdet + step_logdet
        return rows, logdet
