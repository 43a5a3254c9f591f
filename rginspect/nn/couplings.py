"""Block bijectors: stacks of masked couplings (affine, or rational-quadratic spline) on rows of D entries.

One affine step with a binary mask m keeps m·y and maps the rest as
    push: y -> m·y + (1−m)·(y·exp(s) + t),   log-det +Σs
    pull: y -> m·y + (1−m)·(y − t)·exp(−s),  log-det −Σs
with s, t computed from m·y. RG-Flow encodes with push steps in order; NeuralRG encodes with pull steps
in reverse order (its push is the generative direction). `encode_pushes` records which.
"""

from __future__ import annotations

import torch
from torch import nn

from .splines import rational_quadratic


class CouplingStack(nn.Module):
    """Masked affine couplings; step i uses mask `masks[i]` and conditioner pair `net_of_step[i]`."""

    def __init__(
        self,
        masks: torch.Tensor,
        s_nets: nn.ModuleList,
        t_nets: nn.ModuleList,
        net_of_step: list[int],
        encode_pushes: bool,
    ) -> None:
        super().__init__()
        if masks.shape[0] != len(net_of_step):
            raise ValueError("one mask per coupling step is needed")
        self.register_buffer("masks", masks)
        self.s_nets = s_nets
        self.t_nets = t_nets
        self.net_of_step = list(net_of_step)
        self.encode_pushes = encode_pushes

    def encode(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._run(y, push=self.encode_pushes)

    def decode(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._run(y, push=not self.encode_pushes)

    def _run(self, y: torch.Tensor, push: bool) -> tuple[torch.Tensor, torch.Tensor]:
        steps = range(len(self.net_of_step))
        logdet = y.new_zeros(y.shape[0])
        for i in steps if push else reversed(steps):
            mask = self.masks[i]
            free = 1 - mask
            kept = mask * y
            net = self.net_of_step[i]
            s = self.s_nets[net](kept) * free
            t = self.t_nets[net](kept) * free
            if push:
                y = kept + free * (y * torch.exp(s) + t)
                logdet = logdet + s.sum(-1)
            else:
                y = kept + free * (y - t) * torch.exp(-s)
                logdet = logdet - s.sum(-1)
        return y, logdet


class SplineCouplingStack(nn.Module):
    """Masked rational-quadratic spline couplings: step i keeps `masks[i]`·y and moves each free
    entry through its own monotone spline, whose 3K−1 parameters `nets[i]` computes from the kept
    entries. Splines shape multimodal and skewed conditionals that an affine step cannot;
    encoding runs the steps in order with the spline's forward map, as RG-Flow's pushes."""

    def __init__(self, masks: torch.Tensor, nets: nn.ModuleList, bound: float) -> None:
        super().__init__()
        if masks.shape[0] != len(nets):
            raise ValueError("one conditioner per coupling step is needed")
        self.register_buffer("masks", masks)
        self.nets = nets
        self.bound = bound

    def encode(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._run(y, inverse=False)

    def decode(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._run(y, inverse=True)

    def _run(self, y: torch.Tensor, inverse: bool) -> tuple[torch.Tensor, torch.Tensor]:
        steps = range(len(self.nets))
        logdet = y.new_zeros(y.shape[0])
        for i in reversed(steps) if inverse else steps:
            free = 1 - self.masks[i]
            kept = self.masks[i] * y
            moved, log_slope = rational_quadratic(y, self.nets[i](kept), self.bound, inverse)
            y = kept + free * moved
            logdet = logdet + (free * log_slope).sum(-1)
        return y, logdet
