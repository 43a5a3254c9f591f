"""Monotone rational-quadratic splines (Durkan et al. 2019), identity outside [−bound, bound].

A spline of K bins is set by K unnormalised widths, K heights and K−1 interior slopes; softmax and
softplus keep it strictly increasing, and slopes of one at ±bound make it join the identity tails
smoothly. All-zero widths and heights with slopes of one are the identity, so a freshly built
layer starts as the identity, like the affine couplings.
"""

from __future__ import annotations

import math

import torch
from torch.nn.functional import softplus

MIN_BIN = 1e-3  # smallest bin width/height, as a fraction of the interval
MIN_SLOPE = 1e-3
IDENTITY_SLOPE_PARAMETER = math.log(math.e - 1)  # softplus of it is 1


def spline_parameters(n_bins: int) -> int:
    """Unconstrained numbers one spline needs: widths, heights, interior slopes."""
    return 3 * n_bins - 1


def rational_quadratic(
    x: torch.Tensor, parameters: torch.Tensor, bound: float, inverse: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """y = f(x) (or f⁻¹ with `inverse`) and log|dy/dx| elementwise.

    `parameters` has shape x.shape + (3K−1,) or broadcasts to it; the log-derivative is that of
    the map applied, so for `inverse` it is −log f′ at the result.
    """
    n_bins = (parameters.shape[-1] + 1) // 3
    widths = _knots(parameters[..., :n_bins], bound)
    heights = _knots(parameters[..., n_bins : 2 * n_bins], bound)
    ones = torch.ones_like(parameters[..., :1])
    slopes = torch.cat(
        [ones, MIN_SLOPE + softplus(parameters[..., 2 * n_bins :]) * (1 - MIN_SLOPE), ones], -1
    )
    # knots are computed on the parameters as given (one shared spline costs K operations)
    # and only broadcast, as views, to the shape of x for the lookups
    widths, heights, slopes = (k.expand(*x.shape, n_bins + 1) for k in (widths, heights, slopes))
    inside = (x > -bound) & (x < bound)
    clamped = x.clamp(-bound, bound)
    edges = heights if inverse else widths
    # the bin holding each value: how many interior knots lie below it (K is small, and this
    # reads the broadcast knots in place where searchsorted would copy them)
    bin_index = (edges[..., 1:-1] < clamped[..., None]).sum(-1, keepdim=True)

    def pick(knots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return knots.gather(-1, bin_index)[..., 0], knots.gather(-1, bin_index + 1)[..., 0]

    x0, x1 = pick(widths)
    y0, y1 = pick(heights)
    d0, d1 = pick(slopes)
    width, height = x1 - x0, y1 - y0
    slope = height / width
    if inverse:
        dy = clamped - y0
        a = height * (slope - d0) + dy * (d1 + d0 - 2 * slope)
        b = height * d0 - dy * (d1 + d0 - 2 * slope)
        c = -slope * dy
        theta = (2 * c / (-b - torch.sqrt((b * b - 4 * a * c).clamp_min(0)))).clamp(0, 1)
        value = x0 + theta * width
    else:
        theta = ((clamped - x0) / width).clamp(0, 1)
        denominator = slope + (d1 + d0 - 2 * slope) * theta * (1 - theta)
        value = y0 + height * (slope * theta**2 + d0 * theta * (1 - theta)) / denominator
    denominator = slope + (d1 + d0 - 2 * slope) * theta * (1 - theta)
    log_slope = (
        2 * torch.log(slope)
        + torch.log(d1 * theta**2 + 2 * slope * theta * (1 - theta) + d0 * (1 - theta) ** 2)
        - 2 * torch.log(denominator)
    )
    if inverse:
        log_slope = -log_slope
    return torch.where(inside, value, x), torch.where(inside, log_slope, torch.zeros_like(x))


def _knots(unnormalised: torch.Tensor, bound: float) -> torch.Tensor:
    """K+1 increasing knot positions from −bound to bound."""
    n_bins = unnormalised.shape[-1]
    # softmax by hand: torch's CPU kernel over a last dimension of a few bins is 4× slower
    weights = (unnormalised - unnormalised.amax(-1, keepdim=True)).exp()
    fractions = MIN_BIN + (1 - MIN_BIN * n_bins) * weights / weights.sum(-1, keepdim=True)
    knots = torch.cumsum(fractions, -1) * 2 * bound - bound
    start = torch.full_like(knots[..., :1], -bound)
    return torch.cat([start, knots[..., :-1], torch.full_like(start, bound)], -1)
