"""`rginspect train field`: the old default against the new, as samplers of complex φ⁴ (λ = 1).

For every (L, κ) a model is trained with the defaults of each generation, then 4096 of its samples
give the independence-Metropolis acceptance, Kish's ESS/N and KL(q‖p) per site (ln Z
importance-sampled; rginspect.train.sampler_quality), of the flow itself and of its mixture over
Z_8 rotations and φ → φ* ("sym"). The acceptance along training (1024 samples every fifth of the
steps; the first fifth of an L = 16 run is on L = 8) follows each row. "erfc" is the acceptance
that log-normal weights of the same KL would give: if ln w is normal under q with variance σ², the
KL is σ²/2 and the acceptance erfc(σ/2), so it is the whole lattice's KL, L² times the KL per site,
that sets the acceptance. Issue 14's targets, each model trained in at most 10 minutes on 2 cores:
L = 8 acceptance ≥ 0.5 and ESS/N ≥ 0.3; L = 16 ≥ 0.25 and ≥ 0.1.
Run: python tests/benchmarks/bench_field_training.py [L,...] [KEEP_DIR]   (default: 8,16; the
curve against L: 4,8,16,32)
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from rginspect.train import train_field_checkpoint
from rginspect.training_settings import FIELD_TRAINING, TrainingSettings

KAPPAS = (0.6, 0.35)
# the defaults before issue 14: affine couplings on the checkerboard alone, batch 64 at every L,
# learning rate 1e-3, 2000 steps, the action's weight annealed over half of them
OLD = {
    "settings": TrainingSettings(steps=2000, batch_size=64, lr=1e-3),
    "options": {"coupling_masks": "checkerboard", "radial_bins": 0, "spline_bins": 0},
    "batch_at_L": True,
}
NEW = {"settings": FIELD_TRAINING, "options": {}, "batch_at_L": False}


def trained(L: int, kappa: float, name: str, folder: Path) -> tuple[dict, float]:
    defaults = OLD if name == "old" else NEW
    settings = replace(defaults["settings"], progress=False)
    options = dict(defaults["options"])
    if defaults["batch_at_L"]:  # the old trainer drew batch_size samples whatever L
        settings = replace(settings, batch_size=round(settings.batch_size * (L / 8) ** 2))
        options["grow_fraction"] = 0.0
    started = time.perf_counter()
    model = train_field_checkpoint(
        folder / f"phi4_L{L}_k{kappa}_{name}.pt",
        settings,
        action={"name": "phi4", "L": L, "kappa": kappa, "lamb": 1.0},
        quality_every=settings.steps // 5,
        **options,
    )
    return model.provenance["training"], time.perf_counter() - started


def row(L: int, kappa: float, name: str, training: dict, wall: float) -> str:
    plain, mixed = training["sampler_quality"], training["symmetrized_sampler_quality"]
    curve = training["sampler_quality_curve"]
    along = " ".join(
        f"{s}:{a:.2f}" for s, a in zip(curve["step"], curve["acceptance"], strict=True)
    )
    lognormal = math.erfc(math.sqrt(L * L * max(plain["kl_per_site"], 0.0) / 2))
    return (
        f"{L:>3} {kappa:>5} {name:>4} {plain['acceptance']:>6.3f} {lognormal:>6.3f} "
        f"{plain['ess_fraction']:>6.3f} {plain['kl_per_site']:>8.4f} {mixed['acceptance']:>7.3f} "
        f"{mixed['ess_fraction']:>7.3f} {wall:>6.0f}\n{'':16}acceptance along training: {along}"
    )


if __name__ == "__main__":
    sizes = [int(L) for L in sys.argv[1].split(",")] if len(sys.argv) > 1 else [8, 16]
    keep = Path(sys.argv[2]) if len(sys.argv) > 2 else None
    print(f"{'L':>3} {'kappa':>5} {'':>4} {'acc':>6} {'erfc':>6} {'ESS/N':>6} {'KL/site':>8} "
          f"{'sym acc':>7} {'sym ESS':>7} {'wall s':>6}")  # fmt: skip
    with tempfile.TemporaryDirectory() as scratch:
        folder = keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        for L in sizes:
            for kappa in KAPPAS:
                for name in ("new", "old"):
                    print(row(L, kappa, name, *trained(L, kappa, name, folder)), flush=True)
