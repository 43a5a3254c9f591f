"""Factorized latent priors. The scale is a buffer so checkpoints carry it and `temperature` multiplies it."""

from __future__ import annotations

import math

import torch
from torch import nn


class Prior(nn.Module):
    """i.i.d. density over all latents; `kind` names it in model cards and native checkpoints."""

    kind: str

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.register_buffer("scale", torch.tensor(float(scale)))

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """Log-density summed over everything but the batch dimension."""
        return self.log_density(z).reshape(z.shape[0], -1).sum(1)

    def log_density(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def sample(
        self,
        shape: tuple[int, ...],
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        raise NotImplementedError

    def quantile(self, p: torch.Tensor) -> torch.Tensor:
        """Inverse CDF of one latent, for traversals over prior quantiles."""
        raise NotImplementedError

    def std(self) -> float:
        """One latent's standard deviation (estimated from draws for priors without a closed form),
        the scale analyses compare encoded latents with."""
        return float(self._draws().std())

    def excess_kurtosis(self) -> float:
        """One latent's excess kurtosis: 0 Gaussian, 3 Laplace; estimated from draws otherwise."""
        draws = self._draws()
        centred = draws - draws.mean()
        return float((centred**4).mean() / (centred**2).mean() ** 2 - 3)

    def _draws(self) -> torch.Tensor:
        generator = torch.Generator().manual_seed(0)  # the same draws on every device
        return self.sample((MOMENT_DRAWS,), generator=generator).double()


MOMENT_DRAWS = 1 << 20  # prior draws behind a moment without a closed form: ~0.1% on the std


class GaussianPrior(Prior):
    kind = "gaussian"

    def std(self) -> float:
        return float(self.scale)

    def excess_kurtosis(self) -> float:
        return 0.0

    def log_density(self, z: torch.Tensor) -> torch.Tensor:
        return -0.5 * (z / self.scale) ** 2 - torch.log(self.scale) - 0.5 * math.log(2 * math.pi)

    def sample(self, shape, temperature=1.0, generator=None):
        noise = torch.randn(shape, generator=generator, device=_noise_device(generator, self.scale))
        return noise.to(self.scale) * self.scale * temperature

    def quantile(self, p):
        return self.scale * math.sqrt(2) * torch.special.erfinv(2 * p - 1)


class LaplacePrior(Prior):
    kind = "laplace"

    def std(self) -> float:
        return float(self.scale) * math.sqrt(2)

    def excess_kurtosis(self) -> float:
        return 3.0

    def log_density(self, z: torch.Tensor) -> torch.Tensor:
        return -torch.abs(z) / self.scale - torch.log(2 * self.scale)

    def sample(self, shape, temperature=1.0, generator=None):
        eps = torch.finfo(self.scale.dtype).eps
        u = torch.rand(shape, generator=generator, device=_noise_device(generator, self.scale))
        u = u.to(self.scale)
        u = u * (2 - eps) - (1 - eps)  # uniform on (−1+eps, 1), as upstream
        return -self.scale * temperature * u.sign() * torch.log1p(-u.abs())

    def quantile(self, p):
        centred = p - 0.5
        return -self.scale * centred.sign() * torch.log1p(-2 * centred.abs())


def _noise_device(generator: torch.Generator | None, scale: torch.Tensor) -> torch.device:
    """Draw where the generator lives, so a seeded CPU generator gives the same numbers on CUDA."""
    return generator.device if generator is not None else scale.device


PRIORS: dict[str, type[Prior]] = {"gaussian": GaussianPrior, "laplace": LaplacePrior}
