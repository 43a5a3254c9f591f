"""Exact partition functions, the yardstick for a flow's variational free energy."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from rginspect.physics.actions import _check_real, _check_size, _ising_kernel_spectrum


def _log_2cosh(h: np.ndarray) -> np.ndarray:
    a = np.abs(h)
    return a + np.log1p(np.exp(-2 * a))


def _log_abs_2sinh(h: np.ndarray) -> np.ndarray:
    a = np.abs(h)
    with np.errstate(divide="ignore"):  # h = 0 (exactly at T_c) gives ln 0 = −inf, as it should
        return a + np.log1p(-np.exp(-2 * a))


def ising_log_z(L: int, T: float) -> float:
    """Exact ln Z of the 2D Ising model (J = 1, h = 0) on an L×L periodic lattice (Kaufman 1949).

    Z = ½ (2 sinh 2K)^{N/2} [Π_odd 2cosh(Lγ/2) + Π_odd 2sinh(Lγ/2) + Π_even 2cosh(Lγ/2)
    + Π_even 2sinh(Lγ/2)], K = 1/T, over γ_l for l = 0..2L−1. For l ≥ 1, cosh γ_l =
    cosh 2K coth 2K − cos(πl/L) with γ_l > 0; γ_0 = 2K + ln tanh K is signed: negative above T_c,
    which makes the last product negative there. Everything is summed in log space so that large
    L and low T do not overflow. For L = 2 the bonds are doubled, as in the transfer matrix.
    """
    L = _check_size(L)
    T = _check_real("T", T, positive=True)
    K = 1.0 / T
    sinh2k = math.sinh(2 * K)
    # cosh γ_l − 1 = (sinh 2K − 1)²/sinh 2K + 2 sin²(πl/2L), written so that γ_l stays accurate
    # when it is small (near T_c, or long wavelengths at large L).
    ell = np.arange(2 * L)
    delta = (sinh2k - 1) ** 2 / sinh2k + 2 * np.sin(np.pi * ell / (2 * L)) ** 2
    gamma = np.log1p(delta + np.sqrt(delta * (delta + 2)))
    gamma[0] = 2 * K + math.log(math.tanh(K))
    half = L * gamma / 2
    odd, even = half[1::2], half[0::2]
    log_terms = np.array(
        [
            _log_2cosh(odd).sum(),
            _log_abs_2sinh(odd).sum(),
            _log_2cosh(even).sum(),
            _log_abs_2sinh(even).sum(),
        ]
    )
    signs = np.array([1.0, 1.0, 1.0, np.sign(gamma[0])])
    top = log_terms.max()
    log_bracket = top + math.log(float(np.sum(signs * np.exp(log_terms - top))))
    return -math.log(2.0) + 0.5 * L * L * math.log(2 * sinh2k) + log_bracket


def ising_relaxation_log_z_offset(L: int, T: float) -> float:
    """ln Z_cont − ln Z_Ising for `IsingAction(L, T)`, where Z_cont = ∫ dx exp(−E(x)).

    Hubbard–Stratonovich: exp(½ sᵀKs) = (2π)^{−N/2} det(K)^{−1/2} ∫ dx exp(−½ xᵀK⁻¹x + sᵀx), and
    Σ_s exp(sᵀx) = 2^N Π cosh x_i, so Σ_s exp(½ sᵀKs) = 2^N (2π)^{−N/2} det(K)^{−1/2} Z_cont.
    With s_i² = 1, sᵀKs = sᵀ(A/T)s + N·offset, hence Σ_s exp(½ sᵀKs) = e^{N·offset/2} Z_Ising and
    ln Z_cont − ln Z_Ising = ½ ln det K + (N/2)(offset + ln 2π) − N ln 2.
    """
    L = _check_size(L)
    T = _check_real("T", T, positive=True)
    eig, offset = _ising_kernel_spectrum(L, T)
    n_sites = L * L
    log_det = float(np.log(eig).sum())
    return 0.5 * log_det + 0.5 * n_sites * (offset + math.log(2 * math.pi)) - n_sites * math.log(2)


ISING_CRITICAL_COUPLING = 0.5 * math.log(1 + math.sqrt(2))  # K_c = 1/T_c of the 2D Ising model
MAX_TRANSFER_MATRIX_L = 8  # 2^L row states: L = 8 takes a fraction of a second, L = 10 seconds


def ising_magnetization_distribution(L: int, K: float) -> np.ndarray:
    """P(M) of the 2D Ising model (J = 1, h = 0) on an L×L periodic lattice at coupling K = 1/T,
    for M = −L², −L² + 2, ..., L², by the row transfer matrix: Z(θ) = Tr T(θ)^L with a phase
    e^{iθM} per row, at the L² + 1 angles θ_k = πk/(L² + 1), whose discrete Fourier transform
    gives the weight of every M exactly (up to rounding)."""
    L = _check_size(L)
    if L > MAX_TRANSFER_MATRIX_L:
        raise ValueError(f"the transfer matrix has 2^L rows: L ≤ {MAX_TRANSFER_MATRIX_L}, got {L}")
    states = 1 - 2 * ((np.arange(2**L)[:, None] >> np.arange(L)) & 1)  # (2^L, L) spins
    row_energy = (states * np.roll(states, 1, axis=1)).sum(1)
    row_m = states.sum(1)
    coupling = K * (states @ states.T) + K / 2 * (row_energy[:, None] + row_energy[None, :])
    transfer = np.exp(coupling - coupling.max())
    n_sites = L * L
    theta = np.pi * np.arange(n_sites + 1) / (n_sites + 1)
    phase = np.exp(0.5j * theta[:, None] * row_m[None, :])  # (angles, 2^L): e^{iθM/2} per row
    matrices = phase[:, :, None] * transfer[None] * phase[:, None, :]
    z = np.trace(np.linalg.matrix_power(matrices, L), axis1=1, axis2=2)
    weights = np.fft.fft(z * np.exp(1j * theta * n_sites)).real / (n_sites + 1)
    weights = np.clip(weights, 0.0, None)
    return weights / weights.sum()


def ising_binder_cumulant(L: int, K: float) -> float:
    """Exact U_L = 1 − ⟨M⁴⟩/(3⟨M²⟩²) of the 2D Ising model on an L×L periodic lattice at K.
    At K_c it lies above the universal U* = 0.61069 and falls towards it as L grows (0.6172,
    0.6144, 0.6131 at L = 4, 6, 8)."""
    probability = ising_magnetization_distribution(L, K)
    m = np.arange(-L * L, L * L + 1, 2, dtype=np.float64)
    return float(1 - (probability @ m**4) / (3 * (probability @ m**2) ** 2))


@lru_cache
def ising_critical_binder(L: int) -> float:
    """U_L(K_c) on an L×L periodic lattice: the value a one-component field's Binder cumulant must
    exceed to be on the ordered side at this L. Exact up to MAX_TRANSFER_MATRIX_L; beyond, the
    value there, which U_L(K_c) only falls from (so a larger lattice at K_c stays below it)."""
    return ising_binder_cumulant(
        min(_check_size(L), MAX_TRANSFER_MATRIX_L), ISING_CRITICAL_COUPLING
    )
