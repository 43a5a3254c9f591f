"""What analyses of field models share: the proposal's symmetrisation parameters
(SYMMETRY_PARAMETERS), the group it mixes over (proposal_group), the run's shared flow samples
(run_flow_samples, via context.once), how the mixture is named (mixture_name, proposal_harmonic),
and the action's couplings as dataset attributes (action_attrs).

An analysis that declares SYMMETRY_PARAMETERS and draws with run_flow_samples sees the same
samples as every other analysis of the run with the same settings, drawn once: correlation and
free_energy, say, then average over one mixture and agree on what "the flow's samples" are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from .analysis import Parameter
from .physics.proposals import flow_samples, symmetry_group

if TYPE_CHECKING:
    from .analysis import RunContext
    from .model import RGFlowModel

SYMMETRY_PARAMETERS = {  # the proposal's symmetrisation, shared by every analysis of flow samples
    "symmetrize": Parameter(
        bool, True, "sample the flow mixed over symmetries of the action (see rotations)"
    ),
    "rotations": Parameter(
        int, 2, "K of the Z_K rotations mixed over (2: φ → ±φ; more spread a pinned O(2) phase)"
    ),
    "conjugate": Parameter(bool, False, "also mix over φ → φ* (two-component fields)"),
}


def proposal_group(context: RunContext) -> torch.Tensor:
    """The symmetries the analysis' SYMMETRY_PARAMETERS mix the flow over: symmetry_group when
    `symmetrize` is on and the model has an action, else the identity alone."""
    p, channels = context.parameters, context.model.data_shape[0]
    if p["symmetrize"] and context.model.action is not None:
        return symmetry_group(channels, p["rotations"], p["conjugate"])
    return torch.eye(channels, dtype=torch.float64)[None]


def run_flow_samples(
    context: RunContext, n: int, *, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """flow_samples seeded by the run, drawn once per run, with the symmetrisation the
    analysis' SYMMETRY_PARAMETERS ask for (none without an action): fields x, ln q(x) and the
    action S(x) (None without an action). Analyses with the same settings average over the same
    samples, so the second reuses the first's."""
    group = proposal_group(context)
    return context.once(
        ("flow_samples", n, batch_size, tuple(group.flatten().tolist()), context.seed),
        lambda: flow_samples(
            context.model, n, batch_size=batch_size, generator=context.generator(), group=group
        ),
    )


def proposal_harmonic(context: RunContext) -> int:
    """The harmonic of the global phase at which the flow's proposal shows whether it covers
    U(1): K for a mixture over Z_K rotations of a two-component field, else 1."""
    if context.model.data_shape[0] == 2 and len(proposal_group(context)) > 1:
        return context.parameters["rotations"]
    return 1


def mixture_name(context: RunContext) -> str:
    """How the flow samples were symmetrised, for the report ("" when they were not)."""
    p, size = context.parameters, len(proposal_group(context))
    if size == 1:
        return ""
    if size == 2 and not p["conjugate"]:
        return "mirrored mixture ½[q(x) + q(−x)]"
    return f"mixture over Z_{p['rotations']} rotations" + (" and φ → φ*" if p["conjugate"] else "")


def action_attrs(model: RGFlowModel) -> dict[str, Any]:
    """The action's name and couplings as dataset attributes (κ, λ, T, ...), for sweeps; none
    for a model without an action."""
    if model.action is None:
        return {}
    config = dict(model.action.config())
    return {"action": config.pop("name"), **config}
