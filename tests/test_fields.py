"""rginspect.fields, what analyses of field models share: the group the proposal mixes over and
its name, the harmonic its coverage is read at, the action's couplings, and flow samples drawn
once per run with the run's seed."""

import pytest
import torch

from rginspect.analysis import RunContext
from rginspect.fields import (
    SYMMETRY_PARAMETERS,
    action_attrs,
    mixture_name,
    proposal_group,
    proposal_harmonic,
    run_flow_samples,
)
from rginspect.model import RGFlowModel
from rginspect.nn.architectures import rgflow_config
from rginspect.physics import Phi4Action
from rginspect.physics.proposals import flow_samples, mixture_log_prob, symmetry_group

DEFAULTS = {name: parameter.default for name, parameter in SYMMETRY_PARAMETERS.items()}


def field_model(channels: int, action: bool = True) -> RGFlowModel:
    config = rgflow_config(channels=channels, L=4, kernel=2, prior="gaussian", domain="field")
    phi4 = Phi4Action(4, 0.3, 1.0, n_channels=channels) if action else None
    return RGFlowModel.from_config(config, action=phi4).double()


def context(model: RGFlowModel, shared: dict | None = None, **parameters) -> RunContext:
    return RunContext(model, DEFAULTS | parameters, seed=5, shared={} if shared is None else shared)


@pytest.mark.parametrize(
    ("channels", "parameters", "size", "name", "harmonic"),
    [
        (1, {}, 2, "mirrored mixture ½[q(x) + q(−x)]", 1),
        (2, {}, 2, "mirrored mixture ½[q(x) + q(−x)]", 2),
        (2, {"rotations": 8}, 8, "mixture over Z_8 rotations", 8),
        (2, {"rotations": 5, "conjugate": True}, 10, "mixture over Z_5 rotations and φ → φ*", 5),
        (2, {"symmetrize": False}, 1, "", 1),
        (2, {"rotations": 1}, 1, "", 1),
    ],
)
def test_the_mixture_its_name_and_harmonic_follow_the_parameters(
    channels, parameters, size, name, harmonic
):
    run = context(field_model(channels), **parameters)
    group = proposal_group(run)
    assert group.shape == (size, channels, channels)
    if size > 1:
        p = DEFAULTS | parameters
        torch.testing.assert_close(group, symmetry_group(channels, p["rotations"], p["conjugate"]))
    assert mixture_name(run) == name
    assert proposal_harmonic(run) == harmonic


def test_without_an_action_nothing_is_mixed_and_there_are_no_couplings():
    run = context(field_model(2, action=False), rotations=8)
    torch.testing.assert_close(proposal_group(run), torch.eye(2, dtype=torch.float64)[None])
    assert mixture_name(run) == "" and proposal_harmonic(run) == 1
    assert action_attrs(run.model) == {}


def test_action_attrs_are_the_actions_own_couplings():
    attrs = action_attrs(field_model(2))
    assert attrs == {"action": "phi4", "L": 4, "kappa": 0.3, "lamb": 1.0, "n_channels": 2}


def test_flow_samples_are_drawn_once_per_run_with_the_runs_seed():
    model, shared = field_model(2), {}
    first = run_flow_samples(context(model, shared), 16, batch_size=8)
    again = run_flow_samples(context(model, shared), 16, batch_size=8)
    assert all(a is b for a, b in zip(first, again, strict=True))  # shared, not redrawn
    own = flow_samples(
        model,
        16,
        batch_size=8,
        generator=torch.Generator().manual_seed(5),
        group=symmetry_group(2, 2, False),
    )
    for mine, theirs in zip(first, own, strict=True):
        torch.testing.assert_close(mine, theirs)
    x, log_q, action = first
    torch.testing.assert_close(log_q, mixture_log_prob(model, x, symmetry_group(2, 2, False)))
    torch.testing.assert_close(action, model.action(x))
    other = run_flow_samples(context(model, shared, rotations=8), 16, batch_size=8)
    assert not torch.equal(other[0], x)  # another mixture is another draw
