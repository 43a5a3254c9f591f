"""RG-Flow against a multiscale Glow (normflows): the latents inpainting must move, and the cost of
exact receptive fields.

Part 1 counts the latents in the causal cone of a centred 4×4 and 8×8 hole on untrained models of
edge L = 16, 32, 64 (cones are structural, so weights do not matter): an RG-Flow of kernel 4, whose
block tables give a cone that grows like log L, and a Glow (normflows, levels down to 2×2), whose
squeezes, 1×1 convolutions and couplings let every latent move every pixel, so inpainting any hole
touches all 3·L² latents. Part 2 times exact receptive-field Jacobians at L = 32 on the two bundled
MSDS1 models: the Glow by cone-compressed forward-mode probes (its cone is full: one probe per
latent), RG-Flow by block products, both against the per-entry backward loop.

    OMP_NUM_THREADS=1 python tests/benchmarks/bench_glow.py
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import torch
from bench_receptive import loop_seconds, timed
from rginspect_plugins.inpaint.compute import cone_latents, parse_mask

import rginspect
from rginspect.data import generate_msds
from rginspect.formats.normflows import build_multiscale, wrap_multiscale
from rginspect.jacobian import cone_colouring, jacobian_by_blocks, jacobian_by_probes
from rginspect.model import RGFlowModel
from rginspect.nn.architectures import rgflow_config

SIZES = (16, 32, 64)
HOLES = (4, 8)
SAMPLES = 4
LOOP_ENTRIES = 256  # the per-entry loop is timed on this many entries and scaled to all
ASSETS = Path(rginspect.__file__).parent / "assets"


def untrained_glow(L: int) -> RGFlowModel:
    settings = dict(levels=int(math.log2(L)) - 1, steps=2, hidden_channels=8, input_shape=[3, L, L])
    with warnings.catch_warnings():  # untrained: its ActNorm layers never saw data, by design
        warnings.simplefilter("ignore")
        return wrap_multiscale(build_multiscale(**settings), **settings)


def count_cones() -> None:
    print("Latents touched by inpainting a hole (3 channels): RG-Flow its causal cone, Glow all")
    print(
        f"{'L':>3} {'hole':>5} {'RG-Flow, centred':>17} {'at (L/2, L/2)':>14} {'Glow':>7} "
        f"{'Glow/RG-Flow centred':>21}"
    )
    for L in SIZES:
        rgflow = RGFlowModel.from_config(rgflow_config(channels=3, L=L, kernel=4, nhidden=8))
        glow = untrained_glow(L)
        for size in HOLES:
            centred = parse_mask(f"square:{size}", L)  # straddles block boundaries at L/2
            corner = parse_mask(f"square:{size}@{L // 2},{L // 2}", L)
            cone, aligned = (int(cone_latents(rgflow, mask).sum()) for mask in (centred, corner))
            everything = int(cone_latents(glow, centred).sum())
            print(
                f"{L:>3} {size}×{size:<3} {cone:>17} {aligned:>14} {everything:>7} "
                f"{everything / cone:>20.1f}×"
            )


def time_receptive() -> None:
    print(
        f"\nExact receptive-field Jacobians at L = 32, bundled MSDS1 models, S = {SAMPLES} samples"
    )
    images = torch.as_tensor(generate_msds("msds1", SAMPLES, seed=0).images)
    rows = {}
    for name, method in (("msds1_rgflow", "blocks"), ("msds1_glow", "probes")):
        model = rginspect.load(ASSETS / f"{name}.pt")
        with torch.no_grad():  # at encoded data, as the receptive analysis does by default
            z = model.encode(model.preprocess(images)[0])[0]
        colouring_s, colours = timed(cone_colouring, model.cone_matrix())
        if method == "blocks":
            timed(jacobian_by_blocks, model, z)  # the one-off index plan
            seconds, values = timed(jacobian_by_blocks, model, z)
        else:
            seconds, values = timed(jacobian_by_probes, model, z, colours)
        loop_s, loop_rows = loop_seconds(model, z, LOOP_ENTRIES)
        cone = model.cone_matrix()
        latent = torch.repeat_interleave(
            torch.arange(cone.shape[0]), torch.as_tensor(cone.getnnz(1), dtype=torch.long)
        )
        entry = torch.as_tensor(cone.indices)
        where = entry < LOOP_ENTRIES
        error = float((values[:, where] - loop_rows[:, entry[where], latent[where]]).abs().max())
        rows[name] = seconds
        print(
            f"  {name:<13} {method:<7} {seconds:7.2f} s ({seconds / SAMPLES:.2f} s/sample), "
            f"cone {cone.nnz} entries, {int(colours.max()) + 1} probes; "
            f"loop {loop_s:7.2f} s (scaled from {LOOP_ENTRIES} entries): ×{loop_s / seconds:.1f}; "
            f"max |difference| to the loop {error:.1e}"
        )
    ratio = rows["msds1_glow"] / rows["msds1_rgflow"]
    print(f"  Glow by probes / RG-Flow by blocks: ×{ratio:.1f} the time")


if __name__ == "__main__":
    torch.set_grad_enabled(True)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    count_cones()
    time_receptive()
