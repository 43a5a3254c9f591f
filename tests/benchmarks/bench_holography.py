"""holography on planted answers, over many seeds: recovery, verdicts and error calibration.

The identity flow of tests/holography_cases.py on a (2, 16, 16) field with MERA levels, fed --data
inputs (one chain, in their order) whose site covariance is planted, end to end through the
analysis. Cases:
- hyperbolic: Σ = I + a·exp(−b·g), the MI route's slope is 2b (to ~1%, while ρ is small);
  hyperbolic_chain: the same in one chain whose independent innovations have τ_int from 1 to 30;
- couplings: the precision Σ⁻¹ = I + a·exp(−b·g), the effective-action route's slope is 2b;
- flat: Σ = I + a·exp(−b·|(Δx, Δz)|), called flat;
- weak: the hyperbolic case with a four times weaker a: the right slope within errors, or
  "undecided" / "no residual information", never a confident wrong call;
- independent, i.i.d. and in one chain with τ_int drawn per site from 1 to 30: "no residual
  information" in at least 90% of the seeds.
Per case: the verdicts, the mean slope against the truth, the mean quoted error, the scatter of
the slopes over seeds (calibrated when ≈ the quoted error) and the pulls (slope − truth) / error.
The truth of a slope is 2b, and the slope the estimator converges to on the exact pair MI where
its law holds (limit_slope), which differs from 2b by the curvature of −ln(1 − ρ²) at the nearest
pairs; pulls are taken against the latter.
Run: python tests/benchmarks/run.py holography, or with options
python tests/benchmarks/bench_holography.py [--seeds N] [--cases a,b] [--samples n]
(about 20 s a run on a quiet core; the default 20 seeds × 7 cases take ~50 minutes).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import ncx2

sys.path.insert(0, str(Path(__file__).parents[1]))  # tests/, for holography_cases

import holography_cases as cases  # noqa: E402
from rginspect_plugins.holography import Holography  # noqa: E402
from rginspect_plugins.holography.compute import decay_fit  # noqa: E402

from rginspect.analysis import RunContext  # noqa: E402
from rginspect.data import DataBatch  # noqa: E402
from rginspect.information import PairLaw  # noqa: E402

B = 1.0  # planted decay rate of the correlation: the MI falls as exp(−2B·d)
CASES = {  # name: (geometry of the kernel, a, planted in the covariance or the precision, τ)
    "hyperbolic": ("hyperbolic", 0.43, "covariance", None),
    "hyperbolic_chain": ("hyperbolic", 0.43, "covariance", (1, 30)),
    "couplings": ("hyperbolic", 0.43, "precision", None),
    "flat": ("flat", 0.43, "covariance", None),
    "weak": ("hyperbolic", 0.1, "covariance", None),
    "independent": ("hyperbolic", 0.0, "covariance", None),
    "independent_chain": ("hyperbolic", 0.0, "covariance", (1, 30)),
}


def limit_slope(name: str, samples: int, copies: int = 40) -> float:
    """The slope the estimator converges to when its law holds: the fit over `copies` independent
    draws of every pair's statistic from its noncentral χ² law at the exact pair MI of the case
    (independent samples), which differs from 2b where −ln(1 − ρ²) is not yet ρ²."""
    geometry, a, _, _ = CASES[name]
    kernel = cases.planted_covariance(geometry, a, B)
    exact = cases.planted_mi(kernel)  # the MI route's covariance, or the scores' (couplings)
    i, j = np.triu_indices(len(kernel), 1)
    nu = np.full(len(i) * copies, samples - 1.0)
    law = PairLaw(nu, 4, float(ncx2.ppf(0.99, 4, 0)), 0.01, np.zeros(2), 1.0)
    mi = np.tile(exact[i, j], copies)
    rng = np.random.default_rng(12345)
    raw = ncx2.rvs(4, 2 * nu * mi, random_state=rng) / (2 * nu)
    distance = np.tile(cases.site_distances()[geometry][i, j], copies)
    return decay_fit(distance, raw, law).slope


def run_case(name: str, seed: int, samples: int) -> dict:
    geometry, a, planted, tau_range = CASES[name]
    kernel = cases.planted_covariance(geometry, a, B)
    covariance = kernel if planted == "covariance" else np.linalg.inv(kernel)
    rng = np.random.default_rng(seed)
    tau = None if tau_range is None else rng.uniform(*tau_range, kernel.shape[0])
    fields = cases.gaussian_fields(covariance, samples, rng, tau=tau)
    action = cases.GaussianAction(np.kron(np.eye(2), np.linalg.inv(covariance)))
    model = cases.identity_model(action if planted == "precision" else None)
    parameters = {
        "inputs": samples,
        "action_inputs": samples if planted == "precision" else 0,
        "null_ensembles": 16,
        "groups": 16,
        "jacobian_samples": 1,
    }
    data = DataBatch(images_or_fields=fields, source=f"planted {name}")
    context = RunContext(model, parameters, seed=seed, data=data, show_progress=False)
    result = Holography().run(context)
    route = "effective action" if planted == "precision" else "mutual information"
    reading = result.sel(route=route)
    truth_geometry = geometry if a > 0 else None
    index = 0 if truth_geometry in (None, "hyperbolic") else 1
    return {
        "verdict": str(reading.verdict.values),
        "slope": float(reading.slope[index]),
        "error": float(reading.slope_error[index]),
        "excess": float(reading.excess),
        "truth": truth_geometry,
    }


def summarise(name: str, rows: list[dict], samples: int) -> None:
    verdicts = [r["verdict"] for r in rows]
    counts = {v: verdicts.count(v) for v in sorted(set(verdicts))}
    truth = rows[0]["truth"]
    line = f"{name:18s} seeds {len(rows):3d}  verdicts {counts}"
    slopes = np.array([r["slope"] for r in rows])
    errors = np.array([r["error"] for r in rows])
    finite = np.isfinite(slopes)
    if truth is not None and finite.sum() >= 2:
        target = limit_slope(name, samples)
        pulls = (slopes[finite] - target) / errors[finite]
        wrong = [
            r for r in rows if r["verdict"] not in (truth, "undecided", "no residual information")
        ]
        line += (
            f"\n{'':18s} slope {slopes[finite].mean():.4f} (2b {2 * B:.2f}, limit {target:.4f}), "
            f"quoted error {errors[finite].mean():.4f}, scatter {slopes[finite].std(ddof=1):.4f}"
            f" (ratio {slopes[finite].std(ddof=1) / errors[finite].mean():.2f}), "
            f"pulls mean {pulls.mean():+.2f} sd {pulls.std(ddof=1):.2f} max |{np.abs(pulls).max():.2f}|"
            f", confident wrong calls {len(wrong)}"
        )
    excess = np.array([r["excess"] for r in rows])
    line += f"\n{'':18s} excess over chance (null spreads): mean {excess.mean():+.2f}, max {excess.max():+.2f}"
    print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--samples", type=int, default=4096)
    parser.add_argument("--cases", default=",".join(CASES))
    arguments = parser.parse_args()
    for name in arguments.cases.split(","):
        started = time.perf_counter()
        rows = [run_case(name, seed, arguments.samples) for seed in range(arguments.seeds)]
        summarise(name, rows, arguments.samples)
        print(f"{'':18s} {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
