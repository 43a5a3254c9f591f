"""The global symmetry of a field ensemble: how much of it an ensemble covers, and how to turn
every field to one direction.

The actions rginspect knows are invariant under a global map of every site's components: φ → −φ
for one-component fields, rotations of the phase for O(2) fields. On a finite lattice the action's
own ensemble covers the whole group, so the magnetisation M = Σ_x φ_x / L² points every way; a flow
trained by reverse KL often pins it (its samples all lie near one phase or one sign). The mean
resultant length of M's direction over an ensemble measures that: 0 for an ensemble that covers
the group, 1 for one that never leaves one direction, and about 1/√n for n independent fields
that cover it.
"""

from __future__ import annotations

import math

import numpy as np
import torch

# an ensemble covering the group shows a resultant this improbable (for its effective samples)
# so rarely that one that does is taken to pin the symmetry
PINNED_P_VALUE = 1e-3


def act_on_sites(maps: torch.Tensor, fields: torch.Tensor) -> torch.Tensor:
    """Each site's components mapped: `maps` (C, C) for every field or (B, C, C) one per field."""
    pattern = "ij,bjxy->bixy" if maps.ndim == 2 else "bij,bjxy->bixy"
    return torch.einsum(pattern, maps.to(fields), fields)


def magnetization(fields: torch.Tensor) -> torch.Tensor:
    """(n, C) site-averaged field of every configuration (n, C, L, L)."""
    return fields.double().mean((2, 3))


def global_direction(fields: torch.Tensor) -> torch.Tensor:
    """(n,) the direction of each field's magnetisation: its phase atan2(M₂, M₁) for a
    two-component field, its sign (±1, +1 at M = 0) for a one-component one."""
    m = magnetization(fields)
    if m.shape[1] == 1:
        return torch.where(m[:, 0] < 0, -1.0, 1.0).double()
    if m.shape[1] == 2:
        return torch.atan2(m[:, 1], m[:, 0])
    raise ValueError(f"a global direction needs 1 or 2 field components, got {m.shape[1]}")


def mean_resultant_length(fields: torch.Tensor, harmonic: int = 1) -> float:
    """|⟨e^{ikθ}⟩| of the fields' global phases θ for k = `harmonic` (two components), |⟨sign M⟩|
    (one component): 0 for an ensemble that covers the group evenly, 1 for one pinned to one
    direction. A proposal mixed over Z_K rotations has |⟨e^{ikθ}⟩| = 0 for k < K whatever its
    flow does; k = K shows whether the flow pins its phase before the mixing copies it K times."""
    direction = global_direction(fields)
    if fields.shape[1] == 1:
        return float(direction.mean().abs())
    angle = harmonic * direction
    return float(torch.complex(angle.cos(), angle.sin()).mean().abs())


def mean_direction(fields: torch.Tensor) -> float:
    """The ensemble's mean direction: the phase of ⟨e^{iθ}⟩ (two components), the sign of
    ⟨sign M⟩ (one component, +1 on a tie)."""
    direction = global_direction(fields)
    if fields.shape[1] == 1:
        return 1.0 if float(direction.mean()) >= 0 else -1.0
    return float(torch.atan2(direction.sin().mean(), direction.cos().mean()))


def coverage_p_value(resultant_length: float, effective_samples: float, n_channels: int) -> float:
    """How probable a mean resultant length at least this large is for `effective_samples`
    independent fields that cover the group evenly: Rayleigh's exp(−n R²) for a phase (its
    large-n law), the two-sided normal tail erfc(R √(n/2)) for a sign."""
    n = max(float(effective_samples), 1.0)
    if n_channels == 1:
        return math.erfc(resultant_length * math.sqrt(n / 2))
    return math.exp(-n * resultant_length**2)


def pins_symmetry(resultant_length: float, effective_samples: float, n_channels: int) -> bool:
    """Whether an ensemble's resultant is far beyond what covering the group evenly gives."""
    return coverage_p_value(resultant_length, effective_samples, n_channels) < PINNED_P_VALUE


def align(fields: torch.Tensor, direction: float) -> torch.Tensor:
    """Every field mapped by the global symmetry so that its magnetisation points along
    `direction` (a phase for two components, a sign for one): a rotation by direction − θ of
    each site's (φ₁, φ₂), or a sign flip. The action is invariant, so aligned fields keep their
    weight; only their global direction is taken out."""
    theta = global_direction(fields)
    if fields.shape[1] == 1:
        return fields * (theta * float(np.sign(direction) or 1.0)).to(fields)[:, None, None, None]
    turn = direction - theta
    cos, sin = turn.cos(), turn.sin()
    maps = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    return act_on_sites(maps, fields)
