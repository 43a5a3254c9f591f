"""Physics layer: actions against dense references, exact Ising results, samplers."""

import itertools
import json
import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import truncnorm

from rginspect.errors import DataSpecError, RGInspectError
from rginspect.physics import (
    ACTIONS,
    Action,
    IsingAction,
    Phi4Action,
    XYAction,
    build_action,
    hmc,
    independence_metropolis,
    ising_log_z,
    ising_relaxation_log_z_offset,
)

# ---------------------------------------------------------------- dense references (tests only)


def neighbours(L: int, r: int, c: int) -> list[tuple[int, int]]:
    return [((r + 1) % L, c), ((r - 1) % L, c), (r, (c + 1) % L), (r, (c - 1) % L)]


def dense_adjacency(L: int) -> np.ndarray:
    """Periodic nearest-neighbour adjacency, site index r·L + c; L = 2 gets doubled bonds."""
    A = np.zeros((L * L, L * L))
    for r, c in itertools.product(range(L), repeat=2):
        for rr, cc in neighbours(L, r, c):
            A[r * L + c, rr * L + cc] += 1
    return A


def dense_phi4(x: np.ndarray, kappa: float, lamb: float) -> np.ndarray:
    """S = φᵀMφ + λ Σ(|φ|²−1)² with the reference's (nN)×(nN) hopping matrix M = 1 − κ·A⊕…⊕A."""
    B, n, L, _ = x.shape
    M = np.kron(np.eye(n), np.eye(L * L) - kappa * dense_adjacency(L))
    flat = x.reshape(B, -1)
    sq = (x**2).sum(1).reshape(B, -1)
    return np.einsum("bi,ij,bj->b", flat, M, flat) + lamb * ((sq - 1) ** 2).sum(1)


def dense_ising_kernel(L: int, T: float) -> tuple[np.ndarray, float]:
    A = dense_adjacency(L) / T
    offset = 0.1 - np.linalg.eigvalsh(A).min()
    return A + offset * np.eye(L * L), offset


def dense_ising(x: np.ndarray, T: float) -> np.ndarray:
    B, _, L, _ = x.shape
    K, _ = dense_ising_kernel(L, T)
    flat = x.reshape(B, -1)
    return 0.5 * np.einsum("bi,ij,bj->b", flat, np.linalg.inv(K), flat) - np.log(np.cosh(flat)).sum(
        1
    )


def loop_xy(x: np.ndarray, beta: float, radial_lamb: float) -> np.ndarray:
    B, _, L, _ = x.shape
    theta = np.arctan2(x[:, 1], x[:, 0])
    out = radial_lamb * (((x**2).sum(1) - 1) ** 2).sum((1, 2))
    for r, c in itertools.product(range(L), repeat=2):
        for rr, cc in [((r + 1) % L, c), (r, (c + 1) % L)]:
            out -= beta * np.cos(theta[:, r, c] - theta[:, rr, cc])
    return out


def spin_configurations(L: int) -> np.ndarray:
    N = L * L
    bits = (np.arange(2**N)[:, None] >> np.arange(N)) & 1
    return (2.0 * bits - 1).reshape(-1, L, L)


def brute_force_ising_log_z(L: int, T: float) -> float:
    s = spin_configurations(L)
    bonds = sum((s * np.roll(s, -1, axis=d)).sum((1, 2)) for d in (1, 2))
    return float(logsumexp(bonds / T))


# ---------------------------------------------------------------- actions


@pytest.mark.parametrize("L", [4, 6])
@pytest.mark.parametrize("n_channels", [1, 2, 3])
def test_phi4_matches_dense_matrix_form(L, n_channels):
    rng = np.random.default_rng(L * 10 + n_channels)
    x = rng.normal(size=(5, n_channels, L, L))
    action = Phi4Action(L, kappa=0.3, lamb=1.7, n_channels=n_channels)
    got = action(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, dense_phi4(x, 0.3, 1.7), rtol=1e-12)


@pytest.mark.parametrize("L", [4, 6])
@pytest.mark.parametrize("T", [1.5, 2.269, 3.5])
def test_ising_fft_matches_dense_inverse(L, T):
    rng = np.random.default_rng(L)
    x = 3 * rng.normal(size=(5, 1, L, L))
    action = IsingAction(L, T)
    np.testing.assert_allclose(action(torch.from_numpy(x)).numpy(), dense_ising(x, T), rtol=1e-12)
    assert action.offset == pytest.approx(dense_ising_kernel(L, T)[1], abs=1e-13)


def test_ising_log_cosh_is_stable_for_large_fields():
    action = IsingAction(4, 2.0)
    x = torch.full((1, 1, 4, 4), 1e4)
    for dtype in (torch.float32, torch.float64):
        e = action(x.to(dtype))
        assert torch.isfinite(e).all()
    e64 = action(x.double())
    expected = 0.5 * 1e8 * 16 / (4 / 2.0 + action.offset) - 16 * (1e4 - math.log(2))
    assert e64.item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("L", [4, 6])
def test_xy_matches_angle_formula(L):
    rng = np.random.default_rng(L)
    x = rng.normal(size=(5, 2, L, L))
    got = XYAction(L, beta=1.1, radial_lamb=0.7)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, loop_xy(x, 1.1, 0.7), rtol=1e-12)


def test_xy_depends_on_radii_only_through_per_site_terms():
    """Global rotations leave S unchanged; rescaling radii to 1 removes only the radial term."""
    torch.manual_seed(0)
    x = torch.randn(3, 2, 4, 4, dtype=torch.float64)
    action = XYAction(4, beta=0.8, radial_lamb=2.0)
    a = 0.9
    rot = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], dtype=x.dtype)
    torch.testing.assert_close(action(torch.einsum("ij,bjxy->bixy", rot, x)), action(x))
    unit = x / x.norm(dim=1, keepdim=True)
    radial = 2.0 * (((x**2).sum(1) - 1) ** 2).sum((1, 2))
    torch.testing.assert_close(action(x) - radial, action(unit), rtol=1e-12, atol=1e-12)


def test_xy_is_finite_with_gradient_at_zero_field():
    x = torch.zeros(1, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    s = XYAction(4, beta=1.0)(x)
    (g,) = torch.autograd.grad(s.sum(), x)
    assert s.item() == pytest.approx(16.0)
    assert torch.isfinite(g).all()


@pytest.mark.parametrize(
    "action",
    [
        Phi4Action(4, 0.2, 1.0),
        Phi4Action(4, 0.2, 1.0, n_channels=1),
        IsingAction(4, 2.3),
        XYAction(4, 1.0, 0.5),
    ],
    ids=lambda a: a.name,
)
def test_config_round_trip_and_dtype(action):
    cfg = json.loads(json.dumps(action.config()))
    rebuilt = build_action(cfg)
    assert type(rebuilt) is type(action) and rebuilt.config() == cfg
    assert ACTIONS[cfg["name"]] is type(action) and isinstance(rebuilt, Action)
    x = torch.randn(3, action.n_channels, 4, 4)
    out = rebuilt(x)
    assert out.shape == (3,) and out.dtype == torch.float32
    torch.testing.assert_close(out.double(), action(x.double()), rtol=1e-5, atol=1e-4)


def test_build_action_rejects_bad_configs():
    with pytest.raises(RGInspectError, match="phi4, ising, xy"):
        build_action({"name": "potts", "L": 4})
    with pytest.raises(RGInspectError, match="channel"):
        build_action({"name": "ising", "L": 4, "T": 2.0, "n_channels": 2})
    with pytest.raises(RGInspectError, match="bad parameters"):
        build_action({"name": "phi4", "L": 4, "kappa": 0.1})
    with pytest.raises(RGInspectError, match="positive"):
        build_action({"name": "ising", "L": 4, "T": -1.0})
    with pytest.raises(RGInspectError, match="L must be"):
        Phi4Action(1, 0.1, 1.0)


def test_wrong_field_shape_is_a_data_spec_error():
    with pytest.raises(DataSpecError, match=r"expected \(batch, 2, 4, 4\)"):
        Phi4Action(4, 0.1, 1.0)(torch.zeros(2, 1, 4, 4))


# ---------------------------------------------------------------- exact results


@pytest.mark.parametrize("L", [2, 3, 4])
@pytest.mark.parametrize("T", [1.5, 2.269, 2 / math.log(1 + math.sqrt(2)), 3.5])
def test_kaufman_matches_enumeration(L, T):
    assert ising_log_z(L, T) == pytest.approx(brute_force_ising_log_z(L, T), abs=1e-10)


def test_kaufman_limits_at_large_lattice():
    """Ground state dominates at low T (ln Z → 2N/T + ln 2); N ln 2 + bonds at high T."""
    L = 32
    N = L * L
    assert ising_log_z(L, 0.2) == pytest.approx(2 * N / 0.2 + math.log(2), abs=1e-9)
    assert ising_log_z(L, 1e4) == pytest.approx(N * math.log(2) + 2 * N * math.log(math.cosh(1e-4)))


def test_kaufman_matches_published_table_below_tc():
    """NeuralRG's etc/exactz.md at L = 16. Its script takes γ_0 unsigned, which is only right for
    T ≤ T_c (above T_c its table is ~ln 2 too high), so only those rows are compared."""
    for T, log_z in [(1.0, 512.7823078079418), (2.0, 263.29621043402125)]:
        assert ising_log_z(16, T) == pytest.approx(log_z, abs=1e-9)


def test_relaxation_offset_by_enumeration():
    """ln Z_cont = ln Σ_s exp(½ sᵀKs) + ½ ln det(2πK) − N ln 2, with a dense K, at L = 4."""
    L, N = 4, 16
    s = spin_configurations(L).reshape(-1, N)
    for T in (1.5, 2.269, 3.5):
        K, _ = dense_ising_kernel(L, T)
        quad = 0.5 * np.einsum("bi,ij,bj->b", s, K, s)
        log_z_cont = logsumexp(quad) + 0.5 * np.linalg.slogdet(2 * np.pi * K)[1] - N * math.log(2)
        expected = ising_log_z(L, T) + ising_relaxation_log_z_offset(L, T)
        assert log_z_cont == pytest.approx(expected, abs=1e-10)


@pytest.mark.parametrize("T", [1.5, 3.5])
def test_relaxation_offset_by_direct_integration(T):
    """∫ dx exp(−E(x)) over R⁴ (L = 2) on a grid in K's eigenbasis: no Hubbard–Stratonovich used."""
    L = 2
    K, _ = dense_ising_kernel(L, T)
    kappa, Q = np.linalg.eigh(K)
    axes, log_weights = [], []
    for k in kappa:
        half_width = 2 * k + 10 * math.sqrt(k)  # mixture means |K s| ≤ 2κ, plus 10 widths
        h = math.sqrt(k) / 1.2  # trapezoid error ~ exp(−2π²k/h²)
        n = 2 * math.ceil(half_width / h) + 1
        axes.append(np.linspace(-half_width, half_width, n))
        log_weights.append(math.log(2 * half_width / (n - 1)))
    u = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 4)
    energy = IsingAction(L, T)(torch.from_numpy(u @ Q.T).reshape(-1, 1, L, L)).numpy()
    log_z_cont = logsumexp(-energy) + sum(log_weights)
    expected = ising_log_z(L, T) + ising_relaxation_log_z_offset(L, T)
    assert log_z_cont == pytest.approx(expected, abs=1e-10)


# ---------------------------------------------------------------- samplers


class Quadratic(Action):
    name = "quadratic"
    n_channels = 1

    def __init__(self, L: int, sigma: float) -> None:
        super().__init__()
        self.L, self.sigma = L, sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (x**2).sum((1, 2, 3)) / self.sigma**2


def mean_and_error(groups: torch.Tensor) -> tuple[float, float]:
    """Mean and standard error from the means of nearly independent groups (rows): separate
    chains, or long consecutive batches of one chain, so autocorrelation does not bias the error."""
    means = groups.mean(1)
    return means.mean().item(), means.std().item() / math.sqrt(len(means))


def per_chain(values: torch.Tensor, n_chains: int) -> torch.Tensor:
    return values.reshape(-1, n_chains).T


def test_hmc_reproduces_gaussian_variance():
    sigma = 1.5
    g = torch.Generator().manual_seed(1)
    res = hmc(
        Quadratic(4, sigma),
        3200,
        n_chains=32,
        step_size=0.4,
        n_leapfrog=7,
        n_burnin=50,
        generator=g,
    )
    assert res.samples.shape == (3200, 1, 4, 4) and res.energies.shape == (3200,)
    assert 0.5 < res.acceptance_rate < 1.0
    var, err = mean_and_error(per_chain((res.samples**2).mean((1, 2, 3)), res.n_chains))
    assert abs(var - sigma**2) < 4 * err
    torch.testing.assert_close(res.energies, Quadratic(4, sigma)(res.samples))


def test_hmc_progress_bar_goes_to_stderr(capsys):
    hmc(Quadratic(4, 1.0), 4, n_chains=2, n_burnin=1, progress=True)
    captured = capsys.readouterr()
    assert "HMC" in captured.err and captured.out == ""


def test_hmc_is_reproducible_with_generator():
    def run():
        g = torch.Generator().manual_seed(7)
        return hmc(Phi4Action(4, 0.2, 1.0), 40, n_chains=4, n_burnin=5, thin=2, generator=g)

    a, b = run(), run()
    torch.testing.assert_close(a.samples, b.samples, rtol=1e-6, atol=1e-7)
    assert a.acceptance_rate == b.acceptance_rate


def test_hmc_and_independence_metropolis_agree_on_phi4():
    """⟨|φ|²⟩ at L = 4, κ = 0.2, λ = 1 from HMC and from an independence-Metropolis chain whose
    proposals are the exact κ = 0 single-site measure (radial u = |φ|² is a truncated Gaussian)."""
    L, kappa, lamb = 4, 0.2, 1.0
    action = Phi4Action(L, kappa, lamb)

    g = torch.Generator().manual_seed(3)
    res = hmc(action, 3200, n_chains=32, step_size=0.15, n_leapfrog=8, n_burnin=60, generator=g)
    assert res.acceptance_rate > 0.8
    hmc_mean, hmc_err = mean_and_error(per_chain((res.samples**2).sum(1).mean((1, 2)), 32))

    n = 40000
    rng = np.random.default_rng(4)
    mu, sd = (2 * lamb - 1) / (2 * lamb), math.sqrt(1 / (2 * lamb))
    u = truncnorm.rvs(-mu / sd, np.inf, loc=mu, scale=sd, size=(n, L, L), random_state=rng)
    angle = rng.uniform(0, 2 * np.pi, size=(n, L, L))
    phi = torch.from_numpy(np.sqrt(u)[:, None] * np.stack([np.cos(angle), np.sin(angle)], 1))
    log_q = -torch.from_numpy((u + lamb * (u - 1) ** 2).sum((1, 2)))
    im = independence_metropolis(
        phi, log_q, -action(phi), generator=torch.Generator().manual_seed(5)
    )
    assert 0.1 < im.acceptance_rate < 1.0
    im_mean, im_err = mean_and_error((im.samples**2).sum(1).mean((1, 2)).reshape(50, -1))

    assert abs(hmc_mean - im_mean) < 4 * math.hypot(hmc_err, im_err)


def test_independence_metropolis_corrects_a_wide_proposal():
    g = torch.Generator().manual_seed(0)
    x = 2 * torch.randn(20000, generator=g, dtype=torch.float64)
    log_q = -0.5 * (x / 2) ** 2
    res = independence_metropolis(x, log_q, -0.5 * x**2, generator=g)
    assert 0 < res.acceptance_rate < 1
    assert torch.equal(res.samples, x[res.accepted_indices])
    var, err = mean_and_error((res.samples**2).reshape(50, -1))
    assert abs(var - 1) < 4 * err


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0])
def test_independence_metropolis_acceptance_of_log_normal_weights_is_erfc(sigma):
    # ln w normal under q with variance σ²: the stationary acceptance is exactly erfc(σ/2), the
    # relation the field-training benchmark uses to read acceptance off the lattice's KL (σ²/2)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(100000, generator=g, dtype=torch.float64)
    res = independence_metropolis(x, torch.zeros_like(x), sigma * x, generator=g)
    assert abs(res.acceptance_rate - math.erfc(sigma / 2)) < 0.01


def test_independence_metropolis_accepts_everything_when_q_is_p():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 1, 4, 4, generator=g)
    log_p = -0.5 * (x**2).sum((1, 2, 3))
    res = independence_metropolis(x, log_p, log_p, generator=g)
    assert res.acceptance_rate == 1.0
    assert res.burn_in == 50  # the first tenth of the steps is dropped
    assert torch.equal(res.accepted_indices, torch.arange(50, 500))
    np.testing.assert_array_equal(res.holds, np.arange(450))


def test_independence_metropolis_is_deterministic_and_starts_at_zero():
    x = torch.linspace(-3, 3, 101)
    log_q, log_p = torch.zeros(101), -(x**2)

    def run(burn_in):
        generator = torch.Generator().manual_seed(9)
        return independence_metropolis(x, log_q, log_p, generator=generator, burn_in=burn_in)

    a, b = run(0.0), run(0.0)
    assert torch.equal(a.accepted_indices, b.accepted_indices)
    assert a.accepted_indices[0] == 0
    assert torch.all(a.accepted_indices[1:] >= a.accepted_indices[:-1])
    assert torch.equal(run(0.2).accepted_indices, a.accepted_indices[20:])
    with pytest.raises(ValueError, match="burn_in"):
        run(1.0)


@pytest.mark.parametrize("acceptance", [0.5, 0.15, 0.05])
def test_independence_metropolis_errors_match_the_scatter_of_replicate_chains(acceptance):
    """ln w = σ x with x ~ N(0, 1) under q: the target is N(σ, 1) and the acceptance erfc(σ/2).
    Over 200 replicate chains of 4096 proposals, the rms of the error each chain quotes for its
    mean of x (its holds as units, raised to arviz's Monte Carlo error) is within 15% of the
    scatter of the means at acceptance 0.5 and 0.15 (2τ blocks of a windowed τ_int quoted 0.73 /
    0.43 / 0.37 of it). At 5% the scatter is set by holds at weights too rare for one chain of
    4096 to show (it falls as n^−0.15, not n^−½): the quoted error is 1.1–1.5× too small over
    sets of replicates, and the chain, worth fewer than 100 samples (as at 15%), is flagged
    not reliable (docs/validation/error-bars.md)."""
    from scipy.special import erfcinv

    from rginspect.physics.correlation import MIN_EFFECTIVE_SAMPLES
    from rginspect.physics.montecarlo import Layout, resample

    sigma, rng = 2 * erfcinv(acceptance), np.random.default_rng(int(100 * acceptance))
    means, errors, effective = [], [], []
    for replicate in range(200):
        x = torch.from_numpy(rng.normal(size=4096))
        generator = torch.Generator().manual_seed(replicate)
        chain = independence_metropolis(x, torch.zeros_like(x), sigma * x, generator=generator)
        resampled = resample(chain.samples.numpy()[:, None], Layout.chain(chain.holds), 1, rng)
        means.append(resampled.estimates[0, 0])
        errors.append(math.sqrt(resampled.covariance[0, 0]))
        effective.append(resampled.effective_samples)
    ratio = np.std(means, ddof=1) / np.sqrt(np.mean(np.square(errors)))
    if acceptance > 0.1:
        assert ratio == pytest.approx(1, abs=0.15)
    else:  # holds too rare for any one chain to show: too narrow, and flagged (see docstring)
        assert ratio < 2 and np.median(effective) < MIN_EFFECTIVE_SAMPLES
    assert (np.median(effective) >= MIN_EFFECTIVE_SAMPLES) == (acceptance > 0.2)


def test_exact_binder_cumulant_at_the_critical_point():
    """U_L(K_c) by the transfer matrix: equal to the enumeration of all 2^16 configurations at
    L = 4, and 0.6172 / 0.6144 / 0.6130 at L = 4 / 6 / 8, above U* = 0.61069 and falling to it."""
    from rginspect.physics.exact import (
        ISING_CRITICAL_COUPLING,
        ising_binder_cumulant,
        ising_critical_binder,
    )

    K, L = ISING_CRITICAL_COUPLING, 4
    spins = 1 - 2 * ((np.arange(2**16)[:, None] >> np.arange(16)) & 1).reshape(-1, L, L)
    energy = sum((spins * np.roll(spins, 1, axis)).sum((1, 2)) for axis in (1, 2))
    weight = np.exp(K * energy)
    m = spins.sum((1, 2)).astype(np.float64)
    m2, m4 = (weight @ m**2) / weight.sum(), (weight @ m**4) / weight.sum()
    assert ising_binder_cumulant(4, K) == pytest.approx(1 - m4 / (3 * m2**2), abs=1e-12)
    assert ising_binder_cumulant(3, 0.3) == pytest.approx(enumerated_binder(3, 0.3), abs=1e-12)
    values = [ising_critical_binder(size) for size in (4, 6, 8)]
    np.testing.assert_allclose(values, [0.6172, 0.6144, 0.6130], atol=1e-4)
    assert values[0] > values[1] > values[2] > 0.61069
    assert ising_critical_binder(16) == values[2]


def enumerated_binder(L: int, K: float) -> float:
    spins = 1 - 2 * ((np.arange(2 ** (L * L))[:, None] >> np.arange(L * L)) & 1)
    spins = spins.reshape(-1, L, L)
    energy = sum((spins * np.roll(spins, 1, axis)).sum((1, 2)) for axis in (1, 2))
    weight = np.exp(K * energy)
    m = spins.sum((1, 2)).astype(np.float64)
    return 1 - (weight @ m**4) * weight.sum() / (3 * (weight @ m**2) ** 2)


def test_pareto_k_of_log_normal_weights_grows_with_their_spread():
    """PSIS k̂ of ln w = σ x, x ~ N(0, 1), 4096 samples: small for a narrow spread, above the
    0.7 that marks a reweighted average unreliable for a wide one."""
    from rginspect.physics import PARETO_K_UNRELIABLE, pareto_k

    x = np.random.default_rng(0).normal(size=4096)
    assert pareto_k(0.5 * x) < 0.2
    assert pareto_k(4.0 * x) > PARETO_K_UNRELIABLE
    assert pareto_k(1.0 * x) < pareto_k(2.0 * x) < pareto_k(3.0 * x)


@pytest.mark.parametrize("n_channels", [1, 2, 3])
def test_phi4_closed_form_gradient_matches_autograd(n_channels):
    action = Phi4Action(6, kappa=0.37, lamb=1.3, n_channels=n_channels)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(5, n_channels, 6, 6, dtype=torch.float64, generator=generator)
    s, grad = action.action_and_grad(x)
    s_autograd, grad_autograd = Action.action_and_grad(action, x)
    torch.testing.assert_close(s, s_autograd, rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(grad, grad_autograd, rtol=1e-12, atol=1e-10)


def free_field_correlator(L: int, kappa: float) -> np.ndarray:
    """Exact C(r) = Σ_c ⟨φ_c(0) φ_c(r)⟩, r = 0..L/2 along an axis, of the two-component φ⁴ action
    at λ = 0: S = Σ_c φ_cᵀ(1 − κA)φ_c is Gaussian with per-component covariance ½ (1 − κA)⁻¹,
    diagonal in momentum space with eigenvalues 1 − 2κ(cos k₁ + cos k₂)."""
    k = 2 * np.pi * np.arange(L) / L
    propagator = 1 / (1 - 2 * kappa * (np.cos(k)[:, None] + np.cos(k)[None, :]))
    return np.fft.ifft2(propagator).real[: L // 2 + 1, 0]


def test_tuned_hmc_reproduces_the_exact_free_field_correlator_at_L16():
    """The Gaussian free field (λ = 0, κ = 0.22, ξ ≈ 1.6) at L = 16: tuned HMC's acceptance sits
    near its target, and C(r) agrees with the exact propagator at every distance within 4σ of
    errors from resampling whole chains, with χ²/dof (diagonal, so conservative) below 3."""
    from rginspect.physics.correlation import estimate_correlation, two_point_function
    from rginspect.physics.montecarlo import Layout
    from rginspect.physics.samplers import TARGET_ACCEPTANCE

    L, kappa, n_chains = 16, 0.22, 32
    action = Phi4Action(L, kappa, 0.0)
    result = hmc(
        action, 4096, n_chains=n_chains, n_burnin=150, generator=torch.Generator().manual_seed(2)
    )
    assert abs(result.acceptance_rate - TARGET_ACCEPTANCE) < 0.1
    per_sample = two_point_function(result.samples)[:, 1]
    tau = result.autocorrelation_time(per_sample)
    assert 1 <= tau < 20 and result.effective_samples(per_sample) > 200
    chains = torch.from_numpy(result.by_chain(result.samples)).reshape(-1, 2, L, L)
    layout = Layout.chains(len(chains), n_chains)
    estimate = estimate_correlation(chains, layout=layout, rng=np.random.default_rng(0))
    exact = free_field_correlator(L, kappa)
    pulls = (estimate.value - exact) / estimate.error
    assert np.all(np.abs(pulls) < 4)
    assert np.mean(pulls**2) < 3


def test_hmc_autocorrelation_time_of_a_slow_chain_is_long():
    """Chains that sit at different values see τ_int near their length (the global-mode case);
    independent draws see τ_int ≈ 1."""
    from rginspect.physics.samplers import HMCResult

    rng = np.random.default_rng(0)
    n_chains, steps = 8, 200
    stuck = np.repeat(rng.normal(size=(1, n_chains)), steps, axis=0).reshape(-1)  # step-major
    noise = rng.normal(size=steps * n_chains)
    result = HMCResult(torch.zeros(steps * n_chains), 1.0, torch.zeros(1), n_chains, 0.1)
    assert result.autocorrelation_time(noise) == pytest.approx(1, abs=0.3)
    assert result.autocorrelation_time(stuck + 0.01 * noise) > steps / 2


def test_whole_chain_bootstrap_sees_chains_stuck_at_different_values():
    """Fields whose magnetisation sits at one value per chain: the global modes' τ_int is near the
    chains' length, and the whole-chain bootstrap error of the mean magnetisation equals the
    exact one, σ_chains/√n_chains, which resampling single samples underestimates √steps times."""
    from rginspect.physics.samplers import HMCResult

    rng = np.random.default_rng(1)
    n_chains, steps = 32, 100
    level = rng.normal(size=(1, n_chains, 2, 1, 1))  # one value per chain and component
    fields = level + 0.05 * rng.normal(size=(steps, n_chains, 2, 4, 4))  # step-major
    samples = torch.from_numpy(fields.reshape(-1, 2, 4, 4))
    result = HMCResult(samples, 1.0, torch.zeros(len(samples)), n_chains, 0.1)
    tau_m2, tau_components = result.global_autocorrelation_times()
    assert tau_m2 > steps / 2 and tau_components > steps / 2
    m = samples.mean((2, 3))[:, 0].numpy()
    whole = [m[result.chain_bootstrap(rng)].mean() for _ in range(2000)]
    single = [m[rng.integers(0, len(m), len(m))].mean() for _ in range(2000)]
    exact = level[0, :, 0, 0, 0].std(ddof=1) / math.sqrt(n_chains)
    assert np.std(whole) == pytest.approx(exact, rel=0.1)
    assert np.std(single) < 0.3 * exact
    indices = result.chain_bootstrap(rng)
    assert len(indices) == len(samples)
    per_chain = np.bincount(indices % n_chains, minlength=n_chains)
    assert np.all(per_chain % steps == 0)  # a chain drawn k times brings all its steps k times
    np.testing.assert_array_equal(np.bincount(indices // n_chains, minlength=steps), n_chains)
