"""Lattice actions S(x) on periodic L×L lattices, the targets a flow is trained against.

Every action is O(N) or O(N log N) in the number of sites: lattice shifts (torch.roll) replace the
dense (nN)×(nN) matrices of the reference code, so the same code runs at L = 64 on a GPU.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch

from rginspect.errors import DataSpecError, RGInspectError


def _ising_kernel_spectrum(L: int, T: float) -> tuple[np.ndarray, float]:
    """Eigenvalues of K = A/T + offset·I on the (k, l) Fourier grid, and the offset.

    A is circulant on the torus, so its eigenvectors are plane waves with eigenvalues
    2cos(2πk/L) + 2cos(2πl/L); the grid order matches torch.fft.fft2.
    """
    q = 2.0 * np.cos(2.0 * np.pi * np.arange(L) / L)
    a_over_t = (q[:, None] + q[None, :]) / T
    offset = 0.1 - float(a_over_t.min())
    return a_over_t + offset, offset


def _check_size(L: Any) -> int:
    if isinstance(L, bool) or not isinstance(L, (int, np.integer)) or L < 2:
        raise RGInspectError(f"lattice size L must be an integer >= 2, got {L!r}")
    return int(L)


def _check_real(name: str, value: Any, *, positive: bool = False) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise RGInspectError(f"action parameter {name} must be a number, got {value!r}") from None
    if not math.isfinite(value) or (positive and value <= 0):
        kind = "a positive finite" if positive else "a finite"
        raise RGInspectError(f"action parameter {name} must be {kind} number, got {value!r}")
    return value


class Action(torch.nn.Module):
    """Base class: maps a batch of fields (B, C, L, L) to the action S, shape (B,).

    Subclasses set `name`, `n_channels` and `L`, and report their parameters in `config()` so an
    action can be stored next to a trained model and rebuilt with `build_action`.
    """

    name: ClassVar[str]
    fixed_channels: ClassVar[int | None] = None
    n_channels: int
    L: int

    def config(self) -> dict[str, Any]:
        """JSON-able description; `build_action(action.config())` rebuilds the action."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config().items() if k != "name")

    def action_and_grad(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """S(x) and ∂S/∂x, detached: what HMC evaluates at every leapfrog step. By autograd;
        actions with a closed-form gradient override it (it halves HMC's time)."""
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            s = self(x)
            (grad,) = torch.autograd.grad(s.sum(), x)
        return s.detach(), grad

    def _check_field(self, x: torch.Tensor) -> None:
        expected = (self.n_channels, self.L, self.L)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise DataSpecError(
                f"field of shape {tuple(x.shape)} does not fit the {self.name} action: "
                f"expected (batch, {', '.join(map(str, expected))})"
            )


class Phi4Action(Action):
    """O(n) φ⁴ theory in hopping form, the NeuralRG φ⁴ target.

    S = Σ_x [ |φ_x|² + λ(|φ_x|² − 1)² − 2κ Σ_μ φ_x·φ_{x+μ} ], periodic in both directions;
    for n = 2 the dot product is Re(φ_x* φ_{x+μ}) of the complex field φ = φ₁ + iφ₂.
    """

    name = "phi4"

    def __init__(self, L: int, kappa: float, lamb: float, n_channels: int = 2) -> None:
        super().__init__()
        self.L = _check_size(L)
        self.kappa = _check_real("kappa", kappa)
        self.lamb = _check_real("lamb", lamb)
        is_int = isinstance(n_channels, (int, np.integer)) and not isinstance(n_channels, bool)
        if not is_int or n_channels < 1:
            raise RGInspectError(f"n_channels must be a positive integer, got {n_channels!r}")
        self.n_channels = int(n_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_field(x)
        sq = (x * x).sum(1)
        hop = sum((x * torch.roll(x, -1, dims=d)).sum(1) for d in (2, 3))
        return (sq + self.lamb * (sq - 1) ** 2 - 2 * self.kappa * hop).sum((1, 2))

    def action_and_grad(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """∂S/∂φ_x = 2φ_x (1 + 2λ(|φ_x|² − 1)) − 2κ Σ_μ (φ_{x+μ} + φ_{x−μ})."""
        x = x.detach()
        neighbours = sum(torch.roll(x, shift, dims=d) for d in (2, 3) for shift in (-1, 1))
        sq = (x * x).sum(1, keepdim=True)
        grad = 2 * x * (1 + 2 * self.lamb * (sq - 1)) - 2 * self.kappa * neighbours
        return self(x), grad

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "L": self.L,
            "kappa": self.kappa,
            "lamb": self.lamb,
            "n_channels": self.n_channels,
        }


class IsingAction(Action):
    """NeuralRG's continuous relaxation of the periodic 2D Ising model (J = 1, no field).

    E(x) = ½ xᵀK⁻¹x − Σ_i ln cosh x_i with K = A/T + offset·I and offset = 0.1 − λ_min(A/T), which
    makes K positive definite so the Hubbard–Stratonovich transform exists. K is circulant on the
    torus, so K⁻¹x is a division in Fourier space: O(N log N) and exact in float64.
    For L = 2 each neighbour pair is linked twice (both ways round the torus), as in the transfer
    matrix and in `ising_log_z`.
    """

    name = "ising"
    fixed_channels = 1
    n_channels = 1

    def __init__(self, L: int, T: float) -> None:
        super().__init__()
        self.L = _check_size(L)
        self.T = _check_real("T", T, positive=True)
        self._kernel_eigenvalues, self.offset = _ising_kernel_spectrum(self.L, self.T)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_field(x)
        s = x[:, 0]
        eig = torch.as_tensor(self._kernel_eigenvalues, dtype=s.dtype, device=s.device)
        kinv_s = torch.fft.ifft2(torch.fft.fft2(s) / eig).real
        a = s.abs()
        # ln cosh a = a + ln(1 + e^{-2a}) − ln 2 never overflows, unlike cosh itself.
        log_cosh = a + torch.nn.functional.softplus(-2 * a) - math.log(2.0)
        return (0.5 * s * kinv_s - log_cosh).sum((1, 2))

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "L": self.L, "T": self.T, "n_channels": 1}


class XYAction(Action):
    """The 2D XY model carried by a real 2-component field φ_x ∈ R², so flows on R^N can learn it.

    S = −β Σ_{x,μ} cos(θ_x − θ_{x+μ}) + radial_lamb Σ_x (|φ_x|² − 1)², θ = atan2(φ₂, φ₁).
    In polar coordinates d²φ_x = r_x dr_x dθ_x and the radial weight r_x exp(−λ(r_x² − 1)²) is a
    separate factor for each site that does not involve any angle, so integrating the radii out
    leaves a constant: the marginal law of the angles is exactly the XY Boltzmann weight
    exp(β Σ cos(θ_x − θ_{x+μ})), for any radial_lamb > 0 (which only keeps the radii normalisable).
    """

    name = "xy"
    fixed_channels = 2
    n_channels = 2
    _eps = 1e-10  # keeps φ/|φ| and its gradient finite at φ = 0, a set of measure zero

    def __init__(self, L: int, beta: float, radial_lamb: float = 1.0) -> None:
        super().__init__()
        self.L = _check_size(L)
        self.beta = _check_real("beta", beta)
        self.radial_lamb = _check_real("radial_lamb", radial_lamb, positive=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_field(x)
        sq = (x * x).sum(1)
        unit = x / torch.sqrt(sq + self._eps**2).unsqueeze(1)
        cos_diff = sum((unit * torch.roll(unit, -1, dims=d)).sum(1) for d in (2, 3))
        return (-self.beta * cos_diff + self.radial_lamb * (sq - 1) ** 2).sum((1, 2))

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "L": self.L,
            "beta": self.beta,
            "radial_lamb": self.radial_lamb,
            "n_channels": 2,
        }


ACTIONS: dict[str, type[Action]] = {cls.name: cls for cls in (Phi4Action, IsingAction, XYAction)}


def build_action(config: dict[str, Any]) -> Action:
    """Rebuild an action from `Action.config()`, e.g. as stored next to a trained model."""
    params = dict(config)
    name = params.pop("name", None)
    cls = ACTIONS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise RGInspectError(f"unknown action {name!r}; known actions: {', '.join(ACTIONS)}")
    if cls.fixed_channels is not None:
        n_channels = params.pop("n_channels", cls.fixed_channels)
        if n_channels != cls.fixed_channels:
            raise RGInspectError(
                f"the {name} action has {cls.fixed_channels} channel(s), config says {n_channels!r}"
            )
    try:
        return cls(**params)
    except TypeError as exc:
        raise RGInspectError(f"bad parameters for the {name} action: {exc}") from None
