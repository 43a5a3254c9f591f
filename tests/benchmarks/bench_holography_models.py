"""What holography, mutual_info and summary read on trained φ⁴ models, aligned and as drawn.

Runs the analyses on each checkpoint (default: the bundled κ = 0.6 model) through the engine, as
`rginspect run CHECKPOINT --plugins summary,mutual_info,goldstone,holography` would, into
OUT/<checkpoint>/, and prints per model: the flow's pinning of the global phase, each route's
verdict with its slopes and jackknife errors, the pairs above the floor against chance, and the
same for the fields as drawn; mutual_info's mean level-0 pair MI and total correlations against
their floors; summary's latent std per level.
Run: python tests/benchmarks/bench_holography_models.py [CHECKPOINT ...] [--out DIR] [--seed S]
(results already in OUT are reused; delete them to rerun).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from rginspect.engine import RunSettings, folder_name, run_checkpoint
from rginspect.results import read_results

BUNDLED = Path(__file__).parents[2] / "rginspect" / "assets" / "phi4_L16.pt"
PLUGINS = "summary,mutual_info,goldstone,holography"


def value(value: float, error: float) -> str:
    return "—" if not np.isfinite(value) else f"{value:.3g} ± {error:.2g}"


def describe(path: Path) -> None:
    tree = read_results(path)
    holography = tree["holography"].to_dataset()
    mutual = tree["mutual_info"].to_dataset()
    summary = tree["summary"].to_dataset()
    print(f"  {holography.attrs['alignment']}")
    print(f"  {holography.attrs['chains']}; holography took {holography.attrs['elapsed_s']:.0f} s")
    for route in holography.route.values:
        reading = holography.sel(route=route)
        slopes = ", ".join(
            f"{g} {value(float(reading.slope.sel(geometry=g)), float(reading.slope_error.sel(geometry=g)))}"
            for g in holography.geometry.values
        )
        print(
            f"  {route:18s} {str(reading.verdict.values):24s} pairs above floor "
            f"{int(reading.pairs_above_floor)} (chance {float(reading.pairs_by_chance):.0f}, "
            f"excess {float(reading.excess):+.1f}); slopes {slopes}; ln L hyp − flat "
            f"{float(reading.likelihood_ratio):+.1f} ± {float(reading.likelihood_ratio_error):.1f};"
            f" law calibration {float(reading.law_calibration):.2f}"
        )
    slopes = ", ".join(
        f"{g} {value(float(holography.unaligned_slope.sel(geometry=g)), float(holography.unaligned_slope_error.sel(geometry=g)))}"
        for g in holography.geometry.values
    )
    print(
        f"  as drawn, MI       {str(holography.unaligned_verdict.values):24s} pairs above floor "
        f"{int(holography.unaligned_pairs_above_floor)} (excess {float(holography.unaligned_excess):+.1f}); "
        f"slopes {slopes}"
    )
    print(
        f"  mean pair MI {float(holography.mean_mi):.2g} nats aligned, "
        f"{float(holography.unaligned_mean_mi):.2g} as drawn"
    )
    print(
        "  mutual_info per level: mean pair MI aligned "
        + " / ".join(f"{v:.2g}" for v in mutual.mean_mi.values)
        + ", as drawn "
        + " / ".join(f"{v:.2g}" for v in mutual.unaligned_mean_mi.values)
    )
    print(
        "  total correlation (floor ± spread) aligned "
        + " / ".join(
            f"{v:.3g} ({f:.3g} ± {e:.2g})"
            for v, f, e in zip(
                mutual.total_correlation.values,
                mutual.total_correlation_floor.values,
                mutual.total_correlation_floor_error.values,
                strict=True,
            )
        )
        + ", as drawn "
        + " / ".join(f"{v:.3g}" for v in mutual.unaligned_total_correlation.values)
    )
    print(
        f"  mutual_info pairs above the 95% floor {int(mutual.pairs_above_floor)} "
        f"(chance {float(mutual.pairs_by_chance):.0f}, excess {float(mutual.excess):+.1f}); "
        f"kNN excess {float(mutual.knn_excess):+.4f} ± {float(mutual.knn_excess_error):.4f} nats"
    )
    print(
        "  summary std per level aligned "
        + " / ".join(f"{v:.3f}" for v in summary["std"].values)
        + ", as drawn "
        + " / ".join(f"{v:.3f}" for v in summary.std_unaligned.values)
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoints", nargs="*", default=[str(BUNDLED)])
    parser.add_argument("--out", type=Path, default=Path("reports") / "holography_models")
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    for checkpoint in arguments.checkpoints:
        out = arguments.out / folder_name(checkpoint)
        results = out / "results.nc"
        if not results.exists():
            settings = RunSettings(plugins=PLUGINS, seed=arguments.seed, progress=False)
            run_checkpoint(checkpoint, out, settings)
        print(f"{checkpoint} (run seed {arguments.seed}):")
        describe(results)


if __name__ == "__main__":
    main()
