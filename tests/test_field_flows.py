"""The field-flow building blocks (radial site map, component-splitting couplings, splines) and the
trainer, against exact results: dense autograd Jacobians, a 1-D quadrature, the action's own HMC."""

import math

import pytest
import torch
from scipy.integrate import quad

from rginspect.model import RGFlowModel
from rginspect.nn.architectures import rgflow_config
from rginspect.nn.sitemaps import RadialSiteMap
from rginspect.nn.splines import rational_quadratic
from rginspect.physics import build_action
from rginspect.train import train_field


def _random_spline(n_bins: int, generator: torch.Generator) -> torch.Tensor:
    return torch.randn(3 * n_bins - 1, generator=generator, dtype=torch.float64)


def test_spline_is_the_identity_at_initialisation_and_inverts_with_exact_log_slopes():
    generator = torch.Generator().manual_seed(0)
    x = torch.linspace(-6, 6, 241, dtype=torch.float64)
    layer = RadialSiteMap(1, n_bins=8).double()
    y, log_slope = rational_quadratic(x, layer.spline, bound=4.0)
    assert torch.allclose(y, x, atol=1e-9) and torch.allclose(log_slope, torch.zeros_like(x))

    parameters = torch.randn(241, 23, generator=generator, dtype=torch.float64)
    x = x.clone().requires_grad_(True)
    y, log_slope = rational_quadratic(x, parameters, bound=4.0)
    (slope,) = torch.autograd.grad(y.sum(), x)
    assert torch.all(slope > 0)
    assert torch.allclose(log_slope, slope.log(), atol=1e-10)
    back, log_back = rational_quadratic(y.detach(), parameters, bound=4.0, inverse=True)
    assert torch.allclose(back, x.detach(), atol=1e-10)
    assert torch.allclose(log_back, -log_slope, atol=1e-10)


@pytest.mark.parametrize("channels", [1, 2, 3])
def test_radial_map_log_det_equals_the_dense_jacobian_and_commutes_with_rotations(channels):
    generator = torch.Generator().manual_seed(channels)
    layer = RadialSiteMap(channels, n_bins=8).double()
    with torch.no_grad():
        layer.spline.copy_(_random_spline(8, generator))
    rows = torch.randn(5, channels * 4, generator=generator, dtype=torch.float64)
    moved, logdet = layer.decode(rows)
    for row, expected in zip(rows, logdet, strict=True):
        jacobian = torch.autograd.functional.jacobian(lambda r: layer.decode(r[None])[0][0], row)
        assert torch.allclose(torch.linalg.slogdet(jacobian)[1], expected, atol=1e-9)
    back, logdet_back = layer.encode(moved)
    assert torch.allclose(back, rows, atol=1e-10)
    assert torch.allclose(logdet_back, -logdet, atol=1e-10)
    # one orthogonal rotation of every site's components: the map commutes with it
    rotation = torch.linalg.qr(torch.randn(channels, channels, generator=generator).double())[0]

    def rotate(r):
        return torch.einsum("ij,njs->nis", rotation, r.reshape(5, channels, 4)).reshape(5, -1)

    assert torch.allclose(layer.decode(rotate(rows))[0], rotate(moved), atol=1e-10)


def test_component_masks_split_each_site_and_keep_the_flow_exact():
    config = rgflow_config(
        2, 4, kernel=2, nlayers=2, nhidden=8, prior="gaussian", domain="field",
        coupling_masks="checkerboard+components", radial_bins=8,
    )  # fmt: skip
    torch.manual_seed(0)
    model = RGFlowModel.from_config(config).double()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    masks = model.flow.blocks[1].masks  # (steps, C·K²), channel-major
    assert masks[2].tolist() == [1.0] * 4 + [0.0] * 4 and masks[3].tolist() == [0.0] * 4 + [1.0] * 4
    z = torch.randn(2, 2, 4, 4, dtype=torch.float64)
    x, logdet = model.decode(z)
    for sample, expected in zip(z, logdet, strict=True):
        jacobian = torch.autograd.functional.jacobian(lambda v: model.decode(v[None])[0][0], sample)
        assert torch.allclose(
            torch.linalg.slogdet(jacobian.reshape(32, 32))[1], expected, atol=1e-8
        )
    back, _ = model.encode(x)
    assert torch.allclose(back, z, atol=1e-8)


def _single_site_free_energy(lamb: float) -> float:
    """−ln ∫ d²φ exp(−|φ|² − λ(|φ|² − 1)²) by 1-D quadrature over the radius."""
    integral, _ = quad(lambda r: 2 * math.pi * r * math.exp(-(r**2) - lamb * (r**2 - 1) ** 2), 0, 8)
    return -math.log(integral)


def test_radial_map_learns_the_decoupled_single_site_distribution_exactly():
    """κ = 0: the lattice is independent rings; only the radial map can shape them, and the flow's
    free energy per site must reach the 1-D quadrature's (F_q ≥ F, equality iff q = p)."""
    action = build_action({"name": "phi4", "L": 4, "kappa": 0.0, "lamb": 1.0, "n_channels": 2})
    config = rgflow_config(
        2, 4, kernel=2, nlayers=1, nhidden=8, prior="gaussian", domain="field", radial_bins=16
    )
    torch.manual_seed(0)
    model = RGFlowModel.from_config(config, action=action)
    train_field(model, steps=400, batch_size=256, lr=1e-2, progress=False)
    exact = _single_site_free_energy(1.0)
    with torch.no_grad():
        x, log_q = model.sample(
            20000, generator=torch.Generator().manual_seed(1), return_log_prob=True
        )
        per_site = ((log_q + action(x)) / 16).double()
    gap = per_site.mean().item() - exact
    assert gap > -4 * per_site.std().item() / math.sqrt(20000)
    assert gap < 2e-3, f"F_q − F = {gap:.4f} per site"
    weights = torch.softmax(-per_site * 16, 0)
    assert 1 / (weights**2).sum().item() / 20000 > 0.9  # importance weights nearly uniform
