"""How many latents inpainting has to move: the causal cone of a hole vs all 3·L² latents.

Part 1 counts cone latents per RG level on untrained RG-Flow models of edge L = 16, 32, 64 (the cone
is structural, so weights do not matter) for one pixel and for a 4×4 hole, and fits the growth:
the cone should grow like log L, all latents like L². Part 2 times the cone and all-latent fills on
the bundled 32×32 MSDS1 model and reports their masked RMSE against the grey start.

    OMP_NUM_THREADS=1 python tests/benchmarks/bench_inpaint_cones.py
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from rginspect_plugins.inpaint.compute import cone_latents, inpaint_latents, parse_mask, rmse

import rginspect
from rginspect.data import generate_msds
from rginspect.model import RGFlowModel
from rginspect.nn.architectures import rgflow_config

SIZES = (16, 32, 64)
BUNDLED = Path(rginspect.__file__).parent / "assets" / "msds1_rgflow.pt"
IMAGES, STEPS, REPEATS = 4, 200, 2


def count_cones() -> None:
    print("Latents in the causal cone, per RG level (0 = finest); 3 channels, kernel 4")
    header = f"{'L':>3} {'hole':>9} {'per level':<34} {'cone':>6} {'all 3L²':>8} {'all/cone':>8}"
    print(header)
    totals: dict[str, list[int]] = {"pixel": [], "4×4 hole": []}
    for L in SIZES:
        model = RGFlowModel.from_config(rgflow_config(channels=3, L=L, kernel=4, nhidden=8))
        centre = L // 2 - 1  # straddles block boundaries at every level
        pixel = np.zeros((L, L), dtype=bool)
        pixel[centre + 1, centre + 1] = True
        for name, mask in [
            ("pixel", pixel),
            ("4×4 hole", parse_mask(f"square:4@{centre},{centre}", L)),
        ]:
            cone = cone_latents(model, mask)
            per_level = np.bincount(model.latent_level[cone], minlength=model.n_levels)
            total = int(cone.sum())
            totals[name].append(total)
            levels = " ".join(str(n) for n in per_level)
            print(
                f"{L:>3} {name:>9} {levels:<34} {total:>6} {model.n_latents:>8} "
                f"{model.n_latents / total:>8.1f}"
            )
        # every pixel position, not just the one above
        sizes = model.cone_matrix().getnnz(axis=0)
        print(
            f"{L:>3} {'any pixel':>9} cone size min {sizes.min()}, mean {sizes.mean():.0f}, "
            f"max {sizes.max()}"
        )
    log_l = np.log2(SIZES)
    print("\nGrowth with L (least-squares fits over L = 16, 32, 64):")
    for name, total in totals.items():
        slope, intercept = np.polyfit(log_l, total, 1)
        worst = np.abs(np.polyval([slope, intercept], log_l) - total).max()
        steps = ", ".join(f"{step:+d}" for step in np.diff(total))
        print(
            f"  {name:>9} cone ≈ {intercept:.0f} + {slope:.0f}·log2 L (max residual {worst:.0f}); "
            f"change per doubling of L: {steps}"
        )
    print("  all latents = 3·L²: ×4 per doubling of L")


def time_fills() -> None:
    model = rginspect.load(BUNDLED)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    mask = parse_mask("square", model.data_shape[1])
    missing = torch.as_tensor(np.broadcast_to(mask, model.data_shape).copy())
    truth = torch.as_tensor(generate_msds("msds1", IMAGES, seed=0).images)
    with torch.no_grad():
        x_truth, _ = model.preprocess(truth)
        x_start = torch.where(missing, model.preprocess(torch.full_like(truth, 0.5))[0], x_truth)
        z_start, _ = model.encode(x_start)
        start = model.postprocess(x_start)
    free = {"cone": torch.as_tensor(cone_latents(model, mask)), "all": torch.ones_like(missing)}
    for method in free:  # warm up
        inpaint_latents(model, z_start, free[method], truth, missing, 3, 0.05, 0.05)
    seconds: dict[str, list[float]] = {method: [] for method in free}
    filled = {}
    for repeat in range(REPEATS):
        for method in list(free)[:: 1 if repeat % 2 == 0 else -1]:
            began = time.perf_counter()
            z, _ = inpaint_latents(model, z_start, free[method], truth, missing, STEPS, 0.05, 0.05)
            seconds[method].append(time.perf_counter() - began)
            with torch.no_grad():
                filled[method] = model.postprocess(model.decode(z)[0])
    print(
        f"\nBundled 32×32×3 MSDS1 model, {IMAGES} MSDS1 images, hole square:8@12,12, {STEPS} Adam "
        f"steps (lr 0.05, σ 0.05), median of {REPEATS}:"
    )
    print(
        f"{'method':>12} {'latents':>8} {'seconds':>8} {'ms/step':>8} {'masked RMSE':>12} "
        f"{'known RMSE':>11}"
    )
    grey, grey_known = rmse(start, truth, missing).mean(), rmse(start, truth, ~missing).mean()
    print(f"{'grey start':>12} {0:>8} {'':>8} {'':>8} {grey:>12.4f} {grey_known:>11.4f}")
    for method in free:
        time_taken = float(np.median(seconds[method]))
        masked = rmse(filled[method], truth, missing).mean()
        known = rmse(filled[method], truth, ~missing).mean()
        print(
            f"{method:>12} {int(free[method].sum()):>8} {time_taken:>8.2f} "
            f"{1000 * time_taken / STEPS:>8.1f} {masked:>12.4f} {known:>11.4f}"
        )
    ratio = np.median(seconds["all"]) / np.median(seconds["cone"])
    print(f"time all / cone = {ratio:.2f} (both decode the whole image every step)")


if __name__ == "__main__":
    began = time.perf_counter()
    count_cones()
    time_fills()
    print(f"\n{time.perf_counter() - began:.0f} s in all")
