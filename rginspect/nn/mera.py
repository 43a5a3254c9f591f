"""The MERA hierarchy shared by RG-Flow and NeuralRG: block index tables, latent levels, and the flow.

Both published architectures apply one local bijector to every K×K block of a sublayer, level by level.
Level i has two sublayers over blocks of dilation 2^i and stride K·2^i on the periodic lattice: a
disentangler at offset 0 and a decimator at offset K·2^i/2. Encoding runs the sublayers finest first.
The block index tables below are the single source of truth for the architecture's locality: the flow
gathers through them, and the structural causal cone is derived from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from ..errors import ArchitectureError

Grouping = Literal["block", "neuralrg"]


@dataclass(frozen=True)
class MERAGeometry:
    """Where each sublayer's blocks sit on an L×L periodic lattice."""

    L: int
    kernel: int
    n_levels: int
    repeats: int = 1

    def __post_init__(self) -> None:
        full = full_depth(self.L, self.kernel)
        if not 1 <= self.n_levels <= full:
            raise ArchitectureError(
                f"a MERA with L={self.L}, kernel={self.kernel} has 1..{full} levels, not {self.n_levels}"
            )

    @property
    def n_sublayers(self) -> int:
        return 2 * self.n_levels * self.repeats

    def sublayer_level(self, sublayer: int) -> int:
        return sublayer // (2 * self.repeats)

    def block_sites(self, sublayer: int) -> np.ndarray:
        """Flat site indices r·L + c of every block, shape (n_blocks, K²), blocks and entries row-major."""
        level = self.sublayer_level(sublayer)
        dilation = 2**level
        stride = self.kernel * dilation
        offset = 0 if sublayer % 2 == 0 else stride // 2
        starts = np.arange(0, self.L, stride)
        within = np.arange(self.kernel) * dilation
        rows = (starts[:, None, None, None] + within[None, None, :, None] + offset) % self.L
        cols = (starts[None, :, None, None] + within[None, None, None, :] + offset) % self.L
        sites = rows * self.L + cols
        return sites.reshape(len(starts) ** 2, self.kernel**2)

    def latent_level(self) -> np.ndarray:
        """RG level of each site, shape (L, L): min(v2(row), v2(col), n_levels−1), v2(0) = ∞."""
        idx = np.arange(self.L)
        v2 = np.array([_two_adic_valuation(int(i), self.n_levels - 1) for i in idx])
        return np.minimum(v2[:, None], v2[None, :])


def full_depth(L: int, kernel: int) -> int:
    """Number of levels of a complete MERA: log2(L/K) + 1; L/K must be a power of two."""
    if kernel < 2 or L < kernel or L % kernel or (L // kernel) & (L // kernel - 1):
        raise ArchitectureError(
            f"L={L} must be the kernel size {kernel} times a power of two (e.g. L=32, kernel=4)"
        )
    return (L // kernel).bit_length()


def _two_adic_valuation(i: int, cap: int) -> int:
    if i == 0:
        return cap
    return min((i & -i).bit_length() - 1, cap)


class MERAFlow(nn.Module):
    """Applies a block bijector to every block of every sublayer; pure, batched, torch.func friendly.

    `blocks[s]` is the bijector shared by all blocks of sublayer s. It maps rows (N, D) to rows and
    returns a per-row log-det. How the gathered (B, C, P, K²) values become rows differs upstream:
    "block" puts all channels of one block in a row (RG-Flow); "neuralrg" reshapes the gathered tensor
    without transposing (NeuralRG), which for C > 1 groups one channel of consecutive blocks.
    """

    def __init__(
        self,
        geometry: MERAGeometry,
        channels: int,
        blocks: nn.ModuleList,
        grouping: Grouping = "block",
    ) -> None:
        super().__init__()
        if len(blocks) < geometry.n_sublayers:
            raise ArchitectureError(
                f"the hierarchy has {geometry.n_sublayers} sublayers but only {len(blocks)} blocks"
            )
        self.geometry = geometry
        self.channels = channels
        self.grouping = grouping
        self.blocks = blocks
        n_sites = geometry.L**2
        for s in range(geometry.n_sublayers):
            sites = geometry.block_sites(s)
            rest = np.setdiff1d(np.arange(n_sites), sites.ravel())
            order = np.concatenate([sites.ravel(), rest])
            self.register_buffer(f"order_{s}", torch.from_numpy(order), persistent=False)
            self.register_buffer(
                f"inverse_order_{s}", torch.from_numpy(np.argsort(order)), persistent=False
            )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z, logdets = self.encode_by_sublayer(x)
        return z, logdets.sum(1)

    def decode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, logdets = self._run(z, reversed(range(self.geometry.n_sublayers)), "decode")
        return x, logdets.sum(1)

    def encode_by_sublayer(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode, keeping log|det| of each sublayer apart: shape (batch, n_sublayers)."""
        return self._run(x, range(self.geometry.n_sublayers), "encode")

    def _run(self, x: torch.Tensor, sublayers, direction: str) -> tuple[torch.Tensor, torch.Tensor]:
        batch = x.shape[0]
        flat = x.reshape(batch, self.channels, -1)
        logdets = []
        for s in sublayers:
            flat, logdet = self.apply_sublayer(flat, s, direction)
            logdets.append(logdet)
        return flat.reshape(x.shape), torch.stack(logdets, 1)

    def sublayer_rows(self, flat: torch.Tensor, sublayer: int) -> torch.Tensor:
        """The bijector inputs of one sublayer, (batch·rows, D), from values (batch, C, L²)."""
        n_active = self.geometry.block_sites(sublayer).size
        return self.to_rows(flat[:, :, getattr(self, f"order_{sublayer}")][:, :, :n_active])

    def apply_sublayer(
        self, flat: torch.Tensor, sublayer: int, direction: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One sublayer on values (batch, C, L²): new values and log|det| per sample."""
        batch = flat.shape[0]
        n_active = self.geometry.block_sites(sublayer).size
        rest = flat[:, :, getattr(self, f"order_{sublayer}")][:, :, n_active:]
        rows, row_logdet = getattr(self.blocks[sublayer], direction)(
            self.sublayer_rows(flat, sublayer)
        )
        active = self.from_rows(rows, batch)
        flat = torch.cat([active, rest], dim=2)[:, :, getattr(self, f"inverse_order_{sublayer}")]
        return flat, row_logdet.reshape(batch, -1).sum(1)

    def to_rows(self, active: torch.Tensor) -> torch.Tensor:
        """(B, C, P·K²) gathered values -> (rows, D) bijector inputs."""
        k2 = self.geometry.kernel**2
        batch = active.shape[0]
        grouped = active.reshape(batch, self.channels, -1, k2)
        if self.grouping == "block":
            grouped = grouped.permute(0, 2, 1, 3)
        return grouped.reshape(-1, self.channels * k2)

    def from_rows(self, rows: torch.Tensor, batch: int) -> torch.Tensor:
        k2 = self.geometry.kernel**2
        if self.grouping == "block":
            grouped = rows.reshape(batch, -1, self.channels, k2).permute(0, 2, 1, 3)
        else:
            grouped = rows.reshape(batch, self.channels, -1, k2)
        return grouped.reshape(batch, self.channels, -1)

    def entry_groups(self, sublayer: int) -> np.ndarray:
        """Flat data-entry indices (c·L² + site) that one bijector row mixes, shape (rows, D).

        Computed by pushing entry labels through the same gathering the flow uses, so the
        structural causal cone can never disagree with the computation.
        """
        n = self.channels * self.geometry.L**2
        labels = torch.arange(n).reshape(1, self.channels, -1)
        n_active = self.geometry.block_sites(sublayer).size
        active = labels[:, :, getattr(self, f"order_{sublayer}").cpu()][:, :, :n_active]
        return self.to_rows(active).numpy()
