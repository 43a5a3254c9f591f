"""The global-symmetry helpers against exact facts: the action's invariance, Rayleigh's law of the
resultant of uniform phases, the von Mises resultant, the binomial law of signs."""

import math

import numpy as np
import pytest
import torch
from scipy.special import i0, i1

from rginspect.physics import Phi4Action
from rginspect.physics.symmetry import (
    align,
    coverage_p_value,
    global_direction,
    mean_direction,
    mean_resultant_length,
    pins_symmetry,
)


def fields_with_phases(phases: np.ndarray, L: int = 1) -> torch.Tensor:
    """(n, 2, L, L) constant fields of unit length at the given phases."""
    phases = torch.as_tensor(phases, dtype=torch.float64)
    return torch.stack([phases.cos(), phases.sin()], 1)[:, :, None, None].expand(-1, -1, L, L)


def test_align_turns_every_field_to_the_direction_and_keeps_the_action():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(64, 2, 6, 6, generator=generator, dtype=torch.float64) + 0.3
    aligned = align(x, 1.2)
    assert torch.allclose(global_direction(aligned), torch.full((64,), 1.2, dtype=torch.float64))
    action = Phi4Action(6, 0.3, 1.0)
    assert torch.allclose(action(aligned), action(x), rtol=1e-12)
    assert mean_resultant_length(aligned) == pytest.approx(1.0)


def test_align_flips_one_component_fields_to_the_sign():
    x = torch.randn(50, 1, 4, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    aligned = align(x, -1.0)
    assert (aligned.mean((1, 2, 3)) < 0).all()
    assert torch.equal(aligned.abs(), x.abs())
    assert mean_direction(aligned) == -1.0


def test_von_mises_resultant_length_and_direction():
    kappa, mu = 2.0, -0.7
    phases = np.random.default_rng(2).vonmises(mu, kappa, 20000)
    x = fields_with_phases(phases)
    assert mean_resultant_length(x) == pytest.approx(i1(kappa) / i0(kappa), abs=0.01)
    assert mean_direction(x) == pytest.approx(mu, abs=0.02)


@pytest.mark.parametrize("n_channels", [1, 2])
def test_coverage_p_value_is_calibrated_on_ensembles_that_cover_the_group(n_channels):
    """n fields that cover the group evenly: P(p < α) ≈ α (Rayleigh / binomial law)."""
    rng = np.random.default_rng(3)
    n, trials = 200, 2000
    p_values = []
    for _ in range(trials):
        if n_channels == 2:
            x = fields_with_phases(rng.uniform(-math.pi, math.pi, n))
        else:
            x = torch.from_numpy(rng.choice([-1.0, 1.0], n)).reshape(n, 1, 1, 1)
        p_values.append(coverage_p_value(mean_resultant_length(x), n, n_channels))
    p_values = np.array(p_values)
    for alpha in (0.05, 0.2):  # binomial error of the rate over 2000 trials: ≤ 0.009
        assert np.mean(p_values < alpha) == pytest.approx(alpha, abs=0.03)


def test_a_pinned_ensemble_is_called_pinned_and_an_even_one_is_not():
    rng = np.random.default_rng(4)
    pinned = fields_with_phases(rng.vonmises(0.5, 4.0, 500))
    even = fields_with_phases(rng.uniform(-math.pi, math.pi, 500))
    assert pins_symmetry(mean_resultant_length(pinned), 500, 2)
    assert not pins_symmetry(mean_resultant_length(even), 500, 2)
