"""Flow proposals symmetrised over a global symmetry of the action: an exact mixture density.

A flow trained by reverse KL pins the global phase of an O(2) field (or the sign of a Z2 one).
The mixture q_G(x) = (1/|G|) Σ_g q(g x) over a finite group G of site maps (Z_K rotations,
φ → φ*) spreads it over |G| copies at the price of |G| − 1 extra encodings per sample, and for an
action invariant under G it is never further from exp(−S)/Z than q (KL is convex).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from .symmetry import act_on_sites

if TYPE_CHECKING:
    from ..model import RGFlowModel


def symmetry_group(n_channels: int, rotations: int, conjugate: bool) -> torch.Tensor:
    """(G, C, C) orthogonal maps of a site's components, the identity first: the rotations by
    2πk/K of a two-component field (K = 2 is φ → −φ), and with `conjugate` each followed by
    φ → φ* (the second component negated). One component has only ±1."""
    if isinstance(rotations, bool) or not isinstance(rotations, int) or rotations < 1:
        raise ValueError(f"rotations must be a positive integer, got {rotations!r}")
    if n_channels == 1:
        if rotations > 2 or conjugate:
            raise ValueError(
                "a one-component field has only the symmetry φ → −φ: use rotations=1 or 2 "
                "and conjugate=false"
            )
        return torch.tensor([1.0, -1.0][:rotations]).reshape(-1, 1, 1).double()
    if n_channels != 2:
        raise ValueError(f"rotations and conjugate need 1 or 2 field components, not {n_channels}")
    angles = 2 * math.pi * torch.arange(rotations, dtype=torch.float64) / rotations
    cos, sin = angles.cos(), angles.sin()
    group = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    if conjugate:
        group = torch.cat([group, group @ torch.diag(torch.tensor([1.0, -1.0]).double())])
    return group


def mixture_log_prob(
    model: RGFlowModel,
    x: torch.Tensor,
    group: torch.Tensor,
    *,
    log_q_identity: torch.Tensor | None = None,
) -> torch.Tensor:
    """ln q_G(x) = ln (1/|G|) Σ_g q(g x), the flow's density averaged over the maps of `group`
    (identity first; its term may be given when known, as it is for the flow's own samples)."""
    first = model.log_prob(x) if log_q_identity is None else log_q_identity
    terms = [first] + [model.log_prob(act_on_sites(g, x)) for g in group[1:]]
    return torch.logsumexp(torch.stack(terms), 0) - math.log(len(group))


@torch.no_grad()
def flow_samples(
    model: RGFlowModel,
    n: int,
    *,
    batch_size: int,
    generator: torch.Generator,
    group: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """n flow samples (float64, CPU) with log q(x), and S(x) when the model has an action.

    With a `group` G of more than the identity, x is drawn from the mixture
    q_G(x) = (1/|G|) Σ_g q(g x): a flow sample x₀ mapped by a uniformly drawn g. Since G is a
    group, q_G(h x₀) = (1/|G|) Σ_g q(g x₀) for every h, so its density needs |G| − 1 encodings
    of x₀ besides the sample's own. For an action invariant under G, q_G is never further from
    exp(−S)/Z than q (KL is convex); rotations spread a flow's pinned global O(2) phase, and
    NeuralRG trains its flows wrapped in G = {±1}. An action that is not invariant is refused.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    fields, log_qs, actions = [], [], []
    for start in range(0, n, batch_size):
        x0, log_q = model.sample(
            min(batch_size, n - start), generator=generator, return_log_prob=True
        )
        x = x0
        if len(group) > 1:
            log_q = mixture_log_prob(model, x0, group, log_q_identity=log_q)
            pick = torch.randint(0, len(group), (len(x0),), generator=generator)
            x = act_on_sites(group[pick], x0.double())  # in float64, so S(x) = S(x0) to round-off
        if model.action is not None:
            action = model.action(x.double())
            if len(group) > 1 and not torch.allclose(model.action(x0.double()), action, rtol=1e-6):
                raise ValueError(
                    "symmetrize needs an action invariant under the mixed symmetries "
                    "(S(−φ) = S(φ), and rotations/conjugation for O(2) fields); "
                    "set symmetrize=false for this model"
                )
            actions.append(action.cpu())
        fields.append(x.double().cpu())
        log_qs.append(log_q.double().cpu())
    return torch.cat(fields), torch.cat(log_qs), torch.cat(actions) if actions else None
