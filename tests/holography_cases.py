"""Planted cases for holography and mutual_info, shared by the tests and the benchmark.

An identity flow in the `module` format (latents = fields) on a (2, 16, 16) field with the MERA
levels of the built-in architecture, so the latents are exactly the fields fed to it. The fields
are Gaussian with site covariance Σ = I + a·exp(−b·d) per component (d a bulk distance the
analysis itself uses), so the pair MI of latents is known: I = −ln(1 − ρ²) with
ρ = a·exp(−b·d) / (1 + a), which falls as exp(−2b·d) while ρ is small. With the action
S = ½ xᵀ Σ⁻¹ x attached, the effective action's scores are Σ⁻¹ x exactly.
"""

from __future__ import annotations

import numpy as np
import torch
from rginspect_plugins.holography.compute import bulk_distances
from torch import nn

import rginspect
from rginspect.model import RGFlowModel
from rginspect.nn.architectures import rgflow_config
from rginspect.physics.actions import Action

CHANNELS, SIZE = 2, 16


class IdentityFlow(nn.Module):
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, torch.zeros(len(x), dtype=x.dtype)

    def decode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return z, torch.zeros(len(z), dtype=z.dtype)


def mera_levels(channels: int = CHANNELS, size: int = SIZE) -> np.ndarray:
    config = rgflow_config(channels=channels, L=size, kernel=2, prior="gaussian", domain="field")
    return RGFlowModel.from_config(config).latent_level


def identity_flow(channels: int = CHANNELS, size: int = SIZE) -> dict:
    """The module-format factory: `rginspect.load("holography_cases:identity_flow")`."""
    return {"flow": IdentityFlow(), "latent_level": mera_levels(channels, size)}


class GaussianAction(Action):
    """S(x) = ½ xᵀ P x over the flattened (C, L, L) field."""

    name = "gaussian"

    def __init__(self, precision: np.ndarray, channels: int = CHANNELS, size: int = SIZE) -> None:
        super().__init__()
        self.n_channels, self.L = channels, size
        self.register_buffer("precision", torch.as_tensor(precision, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(len(x), -1).to(self.precision)
        return (0.5 * ((flat @ self.precision) * flat).sum(1)).to(x.dtype)

    def action_and_grad(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """S and ∂S/∂x = P x in closed form (what HMC evaluates at every leapfrog step)."""
        flat = x.reshape(len(x), -1).to(self.precision)
        force = flat @ self.precision
        return (0.5 * (force * flat).sum(1)).to(x.dtype), force.reshape(x.shape).to(x.dtype)

    def config(self) -> dict:
        return {"name": self.name, "L": self.L}


def identity_model(action: Action | None = None, size: int = SIZE) -> RGFlowModel:
    model = rginspect.load("holography_cases:identity_flow", size=size)
    model.action = action
    return model


def site_distances(size: int = SIZE) -> dict[str, np.ndarray]:
    """(sites, sites) distances between the identity flow's bulk points (its receptive fields are
    its own sites), as the analysis computes them."""
    rows, cols = np.divmod(np.arange(size * size), size)
    depth = 2.0 ** mera_levels(1, size)[0].ravel()
    geodesic, flat = bulk_distances(rows, cols, depth, size)
    return {"hyperbolic": geodesic, "flat": flat}


def planted_covariance(geometry: str, a: float, b: float, size: int = SIZE) -> np.ndarray:
    """(sites, sites) Σ = I + a·exp(−b·d) of one component."""
    kernel = np.exp(-b * site_distances(size)[geometry])
    return np.eye(size * size) + a * (kernel - np.eye(size * size))


def planted_mi(covariance: np.ndarray, channels: int = CHANNELS) -> np.ndarray:
    """(sites, sites) exact pair MI of latents whose components are independent copies with
    site covariance `covariance`: −(C/2) ln(1 − ρ²)."""
    scale = np.sqrt(np.diag(covariance))
    rho = covariance / np.outer(scale, scale)
    with np.errstate(divide="ignore"):
        return -0.5 * channels * np.log1p(-(rho**2))


def gaussian_fields(
    covariance: np.ndarray,
    n: int,
    rng: np.random.Generator,
    tau: np.ndarray | None = None,
    channels: int = CHANNELS,
) -> np.ndarray:
    """(n, C, L, L) float32 fields with site covariance `covariance` per component, independent
    draws, or one AR(1) chain in their order with integrated autocorrelation time tau[site]
    (of the independent innovations before they are mixed by Σ's square root)."""
    sites = len(covariance)
    size = int(round(np.sqrt(sites)))
    noise = rng.standard_normal((n, channels, sites))
    if tau is not None:
        r = (np.asarray(tau, dtype=float) - 1) / (np.asarray(tau, dtype=float) + 1)
        for t in range(1, n):
            noise[t] = r * noise[t - 1] + np.sqrt(1 - r**2) * noise[t]
    fields = noise @ np.linalg.cholesky(covariance).T
    return fields.reshape(n, channels, size, size).astype(np.float32)


class ShiftFlow(nn.Module):
    """z = x − μ with μ a constant field of length `amplitude` at phase `phase`: its samples
    μ + N(0, 1) all sit near that phase, a flow that pins the global symmetry."""

    def __init__(self, amplitude: float, phase: float) -> None:
        super().__init__()
        shift = amplitude * torch.tensor([np.cos(phase), np.sin(phase)])
        self.register_buffer("shift", shift[:, None, None])

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x - self.shift.to(x), torch.zeros(len(x), dtype=x.dtype)

    def decode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return z + self.shift.to(z), torch.zeros(len(z), dtype=z.dtype)


def shift_flow(size: int = SIZE, amplitude: float = 2.0, phase: float = 0.7) -> dict:
    """The module-format factory: `rginspect.load("holography_cases:shift_flow")`."""
    return {"flow": ShiftFlow(amplitude, phase), "latent_level": mera_levels(CHANNELS, size)}


def rotated_fields(
    n: int, rng: np.random.Generator, size: int = SIZE, amplitude: float = 2.0
) -> np.ndarray:
    """(n, 2, L, L) fields μ + ε (ε independent unit noise per site) turned by a uniform random
    global phase each: the shift flow's own law, with a planted global phase."""
    shift = np.array([amplitude, 0.0])[None, :, None, None]
    fields = shift + rng.standard_normal((n, 2, size, size))
    theta = rng.uniform(-np.pi, np.pi, n)[:, None, None]
    turned = np.stack(
        [
            np.cos(theta) * fields[:, 0] - np.sin(theta) * fields[:, 1],
            np.sin(theta) * fields[:, 0] + np.cos(theta) * fields[:, 1],
        ],
        1,
    )
    return turned.astype(np.float32)


class TanhFlow(nn.Module):
    """x = G(ζ) = ζ + c·tanh(ζ) entry by entry (c > −1): a flow whose log-det,
    Σ ln(1 + c·sech²ζ), is strongly curved; encoded by Newton's method."""

    def __init__(self, c: float = 2.0) -> None:
        super().__init__()
        self.c = c

    def decode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        slope = 1 + self.c / torch.cosh(z) ** 2
        return z + self.c * torch.tanh(z), torch.log(slope).flatten(1).sum(1)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = x / (1 + self.c)
        for _ in range(50):
            z = z - (z + self.c * torch.tanh(z) - x) / (1 + self.c / torch.cosh(z) ** 2)
        return z, -self.decode(z)[1]


def tanh_flow(size: int = 4, c: float = 2.0) -> dict:
    """The module-format factory: `rginspect.load("holography_cases:tanh_flow")`."""
    return {"flow": TanhFlow(c), "latent_level": mera_levels(CHANNELS, size)}
