"""Reference samplers: HMC for ground-truth configurations, independence Metropolis to turn flow
samples into exact samples of the target (and to measure how good the flow is from the acceptance).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from rginspect.physics.actions import Action

INITIAL_STEP = 0.1  # where step-size tuning starts
TARGET_ACCEPTANCE = 0.8  # tuned HMC's mean acceptance probability
BURN_IN = 0.1  # fraction of an independence-Metropolis chain dropped before it counts


@dataclass(frozen=True)
class HMCResult:
    """HMC output. Samples are stored step-major, chain-minor, so that
    `samples.reshape(-1, n_chains, *samples.shape[1:])` separates the chains (when n_chains divides
    n_samples); consecutive samples of one chain are correlated, so errors need whole chains or
    blocks longer than `autocorrelation_time` of the observable."""

    samples: torch.Tensor
    acceptance_rate: float
    energies: torch.Tensor
    n_chains: int
    step_size: float  # the leapfrog step used after burn-in (tuned there unless given)

    def by_chain(self, values: torch.Tensor | np.ndarray) -> np.ndarray:
        """Per-sample values (n_samples, ...) as (n_chains, steps, ...), dropping an incomplete
        last step."""
        values = values.cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
        steps = len(values) // self.n_chains
        kept = values[: steps * self.n_chains].reshape(steps, self.n_chains, *values.shape[1:])
        return np.swapaxes(kept, 0, 1)

    def autocorrelation_time(self, values: torch.Tensor | np.ndarray) -> float:
        """τ_int = n / ESS of a per-sample observable over the chains (arviz's ESS, which counts
        chains that sit at different values as correlated), so that its mean has n / τ_int
        effective samples."""
        from .montecarlo import integrated_autocorrelation_time

        chains = self.by_chain(values)
        if chains.shape[1] < 4:
            return math.nan
        return integrated_autocorrelation_time(chains)

    def effective_samples(self, values: torch.Tensor | np.ndarray) -> float:
        return len(values) / max(self.autocorrelation_time(values), 1.0)

    def global_autocorrelation_times(self) -> tuple[float, float]:
        """τ_int of |M|² and of the slowest component of M = Σ_x φ_x / L² (for an O(2) field,
        the global phase): the slowest modes of a chain of fields, which bound how many
        independent samples any global observable has."""
        magnetization = self.samples.double().mean((2, 3))
        return (
            self.autocorrelation_time(magnetization.pow(2).sum(1)),
            max(self.autocorrelation_time(component) for component in magnetization.T),
        )

    def chain_bootstrap(self, rng: np.random.Generator) -> np.ndarray:
        """Indices of `samples` for one bootstrap resample of whole chains: n_chains chains drawn
        with replacement, each with all its complete steps, so that correlation along a chain
        stays inside a resample and the errors are not too small."""
        steps = len(self.samples) // self.n_chains
        chains = rng.integers(0, self.n_chains, self.n_chains)
        return (np.arange(steps)[None, :] * self.n_chains + chains[:, None]).ravel()


@dataclass(frozen=True)
class MetropolisResult:
    """Independence-Metropolis output after burn-in: `accepted_indices[i]` is the proposal the
    chain holds at kept step i, so `samples == proposals[accepted_indices]`; `burn_in` steps were
    dropped before them. The acceptance rate counts every step."""

    samples: torch.Tensor
    acceptance_rate: float
    accepted_indices: torch.Tensor
    burn_in: int = 0

    @property
    def holds(self) -> np.ndarray:
        """(kept steps,) the label of the stretch of steps each kept step belongs to, a stretch
        being the steps the chain holds one proposal: the units its errors resample
        (rginspect.physics.montecarlo.Layout.chain)."""
        held = self.accepted_indices.cpu().numpy()
        return np.concatenate([[0], np.cumsum(held[1:] != held[:-1])])


def effective_sample_fraction(log_weights: torch.Tensor | np.ndarray) -> float:
    """Kish's ESS/N = (Σw)²/(N Σw²) of importance weights given as ln w: the share of N samples
    that carries an importance-sampled average (1 for a perfect proposal)."""
    from scipy.special import logsumexp

    log_w = np.asarray(log_weights, dtype=np.float64)
    return float(np.exp(2 * logsumexp(log_w) - logsumexp(2 * log_w)) / len(log_w))


# above this Pareto k̂ an importance-sampled average is unreliable (Vehtari et al. 2024, PSIS)
PARETO_K_UNRELIABLE = 0.7


def pareto_k(log_weights: torch.Tensor | np.ndarray) -> float:
    """arviz's PSIS Pareto k̂ of importance weights given as ln w: the shape of their upper tail.
    ESS/N is computed from the same weights, so a tail the samples barely reach leaves it
    looking fine; k̂ > PARETO_K_UNRELIABLE says the weighted average has no usable variance."""
    from arviz_stats.base import array_stats  # slow to import: only where weights are checked

    log_w = np.asarray(log_weights, dtype=np.float64)
    # arviz's psislw takes log-likelihoods, whose negatives are the log weights (PSIS-LOO)
    return float(array_stats.psislw(-(log_w - log_w.max()))[1])


def _positive_int(name: str, value: int, *, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if allow_zero else 1):
        bound = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name} must be a {bound} integer, got {value!r}")
    return value


def hmc(
    action: Action,
    n_samples: int,
    *,
    n_chains: int = 16,
    step_size: float | None = None,
    n_leapfrog: int = 10,
    n_burnin: int = 100,
    thin: int = 1,
    generator: torch.Generator | None = None,
    x0: torch.Tensor | None = None,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> HMCResult:
    """Hybrid Monte Carlo for exp(−S), vectorised over `n_chains` independent chains.

    Each step draws Gaussian momenta, runs `n_leapfrog` leapfrog steps of size `step_size` and
    accepts per chain with min(1, exp(−ΔH)); a non-finite ΔH counts as a rejection. The first
    `n_burnin` steps are discarded, then every `thin`-th state of every chain is kept until
    `n_samples` are collected. `step_size=None` tunes the step during burn-in (stochastic
    approximation on log step, from INITIAL_STEP) so that the mean acceptance probability is
    TARGET_ACCEPTANCE, and keeps it fixed afterwards, so the kept chains are exact HMC. Chains
    start at `x0` (n_chains, C, L, L) or at standard normal noise, and run on `device` (default:
    x0's, else the generator's). Every random number is drawn on the generator's device and moved
    to the chains', so a CPU generator gives the same chains on every device to rounding.
    """
    _positive_int("n_samples", n_samples)
    _positive_int("n_chains", n_chains)
    _positive_int("n_leapfrog", n_leapfrog)
    _positive_int("n_burnin", n_burnin, allow_zero=True)
    _positive_int("thin", thin)
    tune = step_size is None
    step_size = INITIAL_STEP if tune else step_size
    if not (math.isfinite(step_size) and step_size > 0):
        raise ValueError(f"step_size must be a positive number, got {step_size!r}")
    shape = (n_chains, action.n_channels, action.L, action.L)
    if x0 is not None and tuple(x0.shape) != shape:
        raise ValueError(f"x0 has shape {tuple(x0.shape)}, expected {shape}")
    draws_on = generator.device if generator is not None else torch.device("cpu")
    if device is None:
        device = x0.device if x0 is not None else draws_on

    def draw(sample: Callable[..., torch.Tensor], size: tuple[int, ...]) -> torch.Tensor:
        return sample(size, generator=generator, dtype=dtype, device=draws_on)

    x = draw(torch.randn, shape) if x0 is None else x0.detach()
    x = x.to(device=device, dtype=dtype)

    n_steps = n_burnin + math.ceil(n_samples / n_chains) * thin
    kept_x, kept_s = [], []
    n_accepted = 0
    s, grad = action.action_and_grad(x)
    with torch.no_grad():
        for step in tqdm(range(n_steps), desc="HMC", disable=not progress, leave=False):
            p = draw(torch.randn, shape).to(device)
            h_old = s + 0.5 * (p * p).sum((1, 2, 3))
            x_new, p_new = x, p - 0.5 * step_size * grad
            for i in range(n_leapfrog):
                x_new = x_new + step_size * p_new
                s_new, grad_new = action.action_and_grad(x_new)
                p_new = p_new - (step_size if i < n_leapfrog - 1 else 0.5 * step_size) * grad_new
            h_new = s_new + 0.5 * (p_new * p_new).sum((1, 2, 3))
            log_u = draw(torch.rand, (n_chains,)).log().to(device)
            accept = log_u < h_old - h_new  # False for NaN
            if tune and step < n_burnin:
                probability = torch.nan_to_num((h_old - h_new).clamp(max=0).exp(), nan=0.0)
                gain = 1.0 / math.sqrt(1 + step / 10)
                step_size *= math.exp(gain * (float(probability.mean()) - TARGET_ACCEPTANCE))
            x = torch.where(accept[:, None, None, None], x_new, x)
            s = torch.where(accept, s_new, s)
            grad = torch.where(accept[:, None, None, None], grad_new, grad)
            if step >= n_burnin:
                n_accepted += int(accept.sum())
                if (step - n_burnin + 1) % thin == 0:
                    kept_x.append(x)
                    kept_s.append(s)
    n_proposed = (n_steps - n_burnin) * n_chains
    return HMCResult(
        samples=torch.cat(kept_x)[:n_samples],
        acceptance_rate=n_accepted / n_proposed,
        energies=torch.cat(kept_s)[:n_samples],
        n_chains=n_chains,
        step_size=step_size,
    )


def independence_metropolis(
    proposals: torch.Tensor,
    log_q: torch.Tensor,
    log_p_unnormalized: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    burn_in: float = BURN_IN,
) -> MetropolisResult:
    """Markov chain over independent proposals x_i ~ q with target p ∝ exp(log_p_unnormalized).

    The chain starts at proposal 0 and moves to proposal i with probability
    min(1, exp(w_i − w_current)), w = log p − log q; normalisation constants cancel. The result is
    a correct chain for p however poor q is; the acceptance rate measures how close q is to p.
    Proposal 0 is typical of q, not of p: the first `burn_in` fraction of the steps is dropped
    (at log-weight spread 2, a tenth takes the start's bias from −0.12 to −0.05 of the
    estimate's scatter). Deterministic given `generator`.
    """
    n = proposals.shape[0]
    if n < 2:
        raise ValueError("independence Metropolis needs at least two proposals")
    if not 0 <= burn_in < 1:
        raise ValueError(f"burn_in is a fraction of the steps in [0, 1), got {burn_in!r}")
    if tuple(log_q.shape) != (n,) or tuple(log_p_unnormalized.shape) != (n,):
        raise ValueError(
            f"log_q {tuple(log_q.shape)} and log_p_unnormalized "
            f"{tuple(log_p_unnormalized.shape)} must both have shape ({n},)"
        )
    log_w = (log_p_unnormalized.detach().double() - log_q.detach().double()).cpu().numpy()
    device = generator.device if generator is not None else torch.device("cpu")
    log_u = torch.rand(n - 1, generator=generator, dtype=torch.float64, device=device).log()
    log_u = log_u.cpu().numpy()

    held = np.zeros(n, dtype=np.int64)
    current = 0
    n_accepted = 0
    for i in range(1, n):
        if log_u[i - 1] < log_w[i] - log_w[current]:  # False for NaN: never move to a bad state
            current = i
            n_accepted += 1
        held[i] = current
    dropped = min(int(burn_in * n), n - 2)
    indices = torch.from_numpy(held[dropped:]).to(proposals.device)
    return MetropolisResult(
        samples=proposals[indices],
        acceptance_rate=n_accepted / (n - 1),
        accepted_indices=indices,
        burn_in=dropped,
    )
