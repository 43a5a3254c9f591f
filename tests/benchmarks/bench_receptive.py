"""Receptive-field Jacobians: cone-compressed probes and block products against the per-entry loop.

The baseline is the loop a user writes today: decode a batch of S latent samples once, then one
autograd backward pass per output entry. Run: python tests/benchmarks/bench_receptive.py
At L=64 the loop takes minutes, so it is timed on a slice of entries and scaled to all of them
(every backward pass walks the same graph, so the cost per entry is flat).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

import rginspect
from rginspect.jacobian import (
    cone_colouring,
    decode_to_data,
    jacobian_by_blocks,
    jacobian_by_probes,
    overlap_clique,
    probe_lower_bound,
)
from rginspect.model import RGFlowModel
from rginspect.nn.architectures import rgflow_config

SAMPLES = 8
BUNDLED = Path(__file__).parents[2] / "rginspect" / "assets" / "msds1_rgflow.pt"


def loop_seconds(model: RGFlowModel, z: torch.Tensor, entries: int) -> tuple[float, torch.Tensor]:
    """Seconds for the per-entry backward loop over all entries (timed on the first `entries`)."""
    z = z.clone().requires_grad_(True)
    started = time.perf_counter()
    x = decode_to_data(model, z).reshape(len(z), -1)
    rows = [
        torch.autograd.grad(x[:, i].sum(), z, retain_graph=True)[0].reshape(len(z), -1)
        for i in range(entries)
    ]
    seconds = time.perf_counter() - started
    return seconds * x.shape[1] / entries, torch.stack(rows, 1)  # (S, entry, latent)


def timed(function, *args):
    started = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - started, result


def bench(label: str, model: RGFlowModel, loop_entries: int) -> None:
    torch.manual_seed(0)
    z = model.prior.sample((SAMPLES, *model.data_shape))
    cone = model.cone_matrix()
    colouring_s, colours = timed(cone_colouring, cone)
    probes = int(colours.max()) + 1
    first_blocks_s, blocks = timed(jacobian_by_blocks, model, z)  # builds the index plan once
    blocks_s, _ = timed(jacobian_by_blocks, model, z)
    probes_s, by_probes = timed(jacobian_by_probes, model, z, colours)
    loop_s, loop_rows = loop_seconds(model, z, loop_entries)
    # exactness: the three agree where the loop was run
    latent = torch.repeat_interleave(
        torch.arange(cone.shape[0]), torch.as_tensor(cone.getnnz(1), dtype=torch.long)
    )
    entry = torch.as_tensor(cone.indices)
    where = entry < loop_entries
    reference = loop_rows[:, entry[where], latent[where]]
    error = max(
        float((blocks[:, where] - reference).abs().max()),
        float((by_probes[:, where] - reference).abs().max()),
    )
    print(f"\n{label}: {model.n_latents} latents, S={SAMPLES}")
    print(
        f"  probes {probes} (per-entry bound {probe_lower_bound(cone)}, overlap clique "
        f"{overlap_clique(cone)}), latents/probes {model.n_latents / probes:.2f}"
    )
    scaled = "" if loop_entries == model.n_latents else f" (scaled from {loop_entries} entries)"
    print(f"  loop (baseline)      {loop_s:8.2f} s{scaled}")
    print(
        f"  probes               {probes_s:8.2f} s  ×{loop_s / probes_s:6.1f}"
        f"  (+ colouring {colouring_s:.2f} s, once per model)"
    )
    print(f"  blocks               {blocks_s:8.2f} s  ×{loop_s / blocks_s:6.1f}")
    print(
        f"  blocks, first call   {first_blocks_s:8.2f} s  ×{loop_s / first_blocks_s:6.1f}"
        "  (includes the index plan)"
    )
    print(f"  max |difference| to the loop's entries: {error:.2e}")


if __name__ == "__main__":
    torch.set_grad_enabled(True)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    bench("bundled MSDS1 model, 32×32×3", rginspect.load(BUNDLED), loop_entries=3072)
    untrained = RGFlowModel.from_config(rgflow_config(channels=3, L=64, kernel=4))
    bench("untrained model of the same family, 64×64×3", untrained, loop_entries=1024)
