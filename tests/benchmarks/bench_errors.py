"""Monte Carlo errors against known answers: AR(1) chains and independence Metropolis.

AR(1): a field equal to a_t at every site, a_t of unit variance and coefficient ρ, so C(r) = a_t²
with the exact variance of its mean (2/n)[1 + 2 Σ_t (1 − t/n) ρ^{2t}]; 200 chains of 20000 steps
per ρ through estimate_correlation with blocks of τ_int raised to arviz's MCSE (as data in an
unknown order get them). Printed: the rms quoted error and the scatter of the estimates over the
exact error.

Independence Metropolis: ln w = σ x with x ~ N(0, 1) under q: the target is N(σ, 1), the mean of x is σ, and the chain's
acceptance is erfc(σ/2) (σ = 0.95 / 2.04 / 2.77 for acceptance 0.5 / 0.15 / 0.05). Every
replicate is an independent chain of N proposals through rginspect.physics's
independence_metropolis (a tenth dropped as burn-in) and its error through
rginspect.physics.montecarlo (the holds as units, raised to arviz's Monte Carlo error), as the
correlation analysis quotes it. Printed: the scatter of the replicates' means over the rms of
their quoted errors (1 when calibrated; its bootstrap standard error beside it), the bias of the
means in units of their scatter, and the median effective sample size. A chain that never moves
after burn-in has one unit and quotes no error (NaN, not reliable); such chains are counted and
left out of the ratio.
Run: python tests/benchmarks/run.py errors   (or this file with [REPLICATES] [N] [--no-ar1])
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np
import torch
from scipy.special import erfcinv

from rginspect.physics import independence_metropolis
from rginspect.physics.correlation import estimate_correlation
from rginspect.physics.montecarlo import Layout, integrated_autocorrelation_time, resample


def ar1_table(chains: int = 200, n: int = 20_000) -> None:
    from scipy.signal import lfilter

    print(f"AR(1): {chains} chains of {n} steps per ρ")
    print(f"{'ρ':>5} {'rms error / exact':>18} {'scatter / exact':>16}")
    for rho in (0.5, 0.8, 0.9, 0.95):
        rng = np.random.default_rng(int(100 * rho))
        lags = np.arange(1, n)
        exact = math.sqrt(2 / n * (1 + 2 * np.sum((1 - lags / n) * rho ** (2 * lags))))
        quoted, values = [], []
        for _ in range(chains):
            noise = rng.normal(size=n) * math.sqrt(1 - rho**2)
            noise[0] = rng.normal()
            series = lfilter([1.0], [1.0, -rho], noise)
            fields = torch.from_numpy(series[:, None, None, None].repeat(2, 2).repeat(2, 3))
            layout = Layout.blocks(n, math.ceil(integrated_autocorrelation_time(series**2)))
            estimate = estimate_correlation(fields, layout=layout, n_resamples=2, rng=rng)
            quoted.append(estimate.error[1])
            values.append(estimate.value[1])
        rms = math.sqrt(np.mean(np.square(quoted)))
        print(f"{rho:>5} {rms / exact:>18.3f} {np.std(values, ddof=1) / exact:>16.3f}", flush=True)
    print()


def replicates(acceptance: float, count: int, n: int) -> np.ndarray:
    """(count, 3): each chain's mean of x, quoted error and effective samples."""
    sigma, rng = 2 * erfcinv(acceptance), np.random.default_rng(int(1000 * acceptance))
    rows = []
    for replicate in range(count):
        x = torch.from_numpy(rng.normal(size=n))
        generator = torch.Generator().manual_seed(10_000 + replicate)
        chain = independence_metropolis(x, torch.zeros_like(x), sigma * x, generator=generator)
        resampled = resample(chain.samples.numpy()[:, None], Layout.chain(chain.holds), 1, rng)
        rows.append(
            (
                resampled.estimates[0, 0],
                math.sqrt(resampled.covariance[0, 0]),
                resampled.effective_samples,
            )
        )
    return np.array(rows)


def main(count: int, n: int) -> None:
    if "--no-ar1" not in sys.argv:
        ar1_table()
    print(f"Independence Metropolis: {count} replicate chains of {n} proposals each")
    print(f"{'acceptance':>10} {'σ':>5} {'ratio':>13} {'bias/scatter':>13} {'median ESS':>11}")
    for acceptance in (0.5, 0.15, 0.05):
        started = time.perf_counter()
        rows = replicates(acceptance, count, n)
        stuck = int(np.isnan(rows[:, 1]).sum())  # chains that never moved after burn-in
        rows = rows[np.isfinite(rows[:, 1])]
        means, errors = rows[:, 0], rows[:, 1]
        count = len(rows)
        ratio = means.std(ddof=1) / math.sqrt(np.mean(errors**2))
        rng = np.random.default_rng(0)
        draws = [rng.integers(0, count, count) for _ in range(500)]
        spread = np.std([means[i].std(ddof=1) / math.sqrt(np.mean(errors[i] ** 2)) for i in draws])
        sigma = 2 * erfcinv(acceptance)
        print(
            f"{acceptance:>10} {sigma:>5.2f} {ratio:>7.2f} ± {spread:.2f} "
            f"{(means.mean() - sigma) / means.std(ddof=1):>+13.2f} {np.median(rows[:, 2]):>11.0f}"
            f"   ({stuck} chains without an error left out; {time.perf_counter() - started:.0f} s)"
        )


if __name__ == "__main__":
    numbers = [int(a) for a in sys.argv[1:] if a.isdigit()]
    main(numbers[0] if numbers else 1000, numbers[1] if len(numbers) > 1 else 4096)
