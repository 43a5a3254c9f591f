"""inpaint: fill a hole in known images by moving only the latents that can reach the hole.

A latent outside the structural causal cone of the masked pixels cannot move them. Every block
mixes its entries both ways, so the encoder retraces the decoder's paths backwards and computes such
a latent from known pixels alone: the initial fill does not leak into it, and the truth stays
reachable with it held fixed. The cone method optimises only the cone's latents (a count that grows
like log L for a fixed hole); the baseline optimises all 3·L² of them.

Both maximise the same objective, a MAP estimate under the flow with Gaussian observation noise σ on
the known pixels:  log q(x) − Σ_known (image(x) − truth)² / 2σ²,  where x = decode(z),
log q(x) = log p(z) − log|det ∂x/∂z| is the flow's exact density in model space and image(x) the
image before clipping to [0, 1] (a clipped pixel would get no gradient back towards its truth).
Masked pixels enter only through log q. Known pixels may drift within ~σ, for the cone method only
where the cone's latents reach; every pixel they cannot reach stays exactly as encoded.

Both methods run as one batch (Adam is elementwise, so this is exactly two separate runs), and the
number of steps is cut to fit `budget` seconds from a timed first step, so a large model still
finishes; the dataset and the report say when that happened.
"""

from __future__ import annotations

import pandas as pd
import xarray as xr

from rginspect.analysis import Analysis, Parameter, RunContext, Section

from .compute import MASK_FORMS, SHARED, fill_hole, parse_mask
from .draw import inpaint_section, plot_convergence, plot_fills


class Inpaint(Analysis):
    name = "inpaint"
    description = "Fill a masked hole by optimising only the latents in its causal cone, vs all"
    version = "3"
    needs_grad = True  # the fills are optimised by gradient descent on the latents
    parameters = {
        "mask": Parameter(
            str,
            "square",
            f"the missing pixels: {MASK_FORMS} (True/white = missing); several holes, each "
            "filled on its own, separated by ';' (square:4;square:8)",
        ),
        "inputs": Parameter(int, 4, "how many inputs to inpaint"),
        "steps": Parameter(int, 200, "Adam steps per method (fewer if they would exceed budget)"),
        "budget": Parameter(
            float, 60.0, "seconds the optimisation may take, from a timed first step (0: no limit)"
        ),
        "lr": Parameter(float, 0.05, "Adam learning rate (latents have prior std ~1)"),
        "noise": Parameter(
            float, 0.05, "observation noise σ of the known pixels, in [0,1] pixel units"
        ),
        "init": Parameter(str, "grey", "what fills the hole at the start: grey (0.5) or noise"),
    }
    domains = ("image",)
    plots = {"fills": plot_fills, "convergence": plot_convergence}

    def run(self, context: RunContext) -> xr.Dataset:
        model, settings = context.model, context.parameters
        steps, lr, noise = settings["steps"], settings["lr"], settings["noise"]
        if settings["inputs"] < 1 or steps < 1 or not lr > 0 or not noise > 0:
            raise ValueError(
                "inpaint needs inputs ≥ 1, steps ≥ 1, lr > 0 and noise > 0; got "
                f"{settings['inputs']}, {steps}, {lr}, {noise}"
            )
        if settings["init"] not in ("grey", "noise"):
            raise ValueError(f"inpaint.init must be grey or noise, not {settings['init']!r}")
        specs = [spec.strip() for spec in str(settings["mask"]).split(";")]
        if len(set(specs)) < len(specs):
            raise ValueError(f"inpaint.mask {settings['mask']!r} names a hole twice")
        masks = [parse_mask(spec, *model.data_shape[1:]) for spec in specs]  # all checked first
        x_truth, _, source = context.model_inputs(settings["inputs"])
        holes = [fill_hole(context, x_truth, mask) for mask in masks]
        shared = holes[0][list(SHARED)]  # the inputs themselves: the same for every hole
        per_hole = xr.concat(
            [hole.drop_vars(SHARED) for hole in holes],
            dim=pd.Index(specs, name="hole"),
            data_vars="all",
            join="outer",  # a hole that every latent reaches runs the all-latent search alone
        )
        return xr.merge([per_hole, shared]).assign_attrs(
            source=source,
            mask=settings["mask"],
            steps_requested=steps,
            budget=settings["budget"],
            lr=lr,
            noise=noise,
            init=settings["init"],
            n_entries=model.n_latents,
        )

    def render(self, dataset: xr.Dataset) -> Section:
        return inpaint_section(dataset)
