"""What mix computes: the input pairs it is asked for, and a code with A's coarse levels and B's
fine ones."""

from __future__ import annotations

import torch


def parse_indices(text: str) -> list[int]:
    """Input indices from `0,1,2,3`; at least two, since images are mixed in pairs.

    `-p mix.images=0,1` reaches us as the text of a tuple, "(0, 1)", and a TOML list as "[0, 1]".
    """
    try:
        indices = [int(part) for part in text.strip("()[] ").split(",") if part.strip()]
    except ValueError:
        raise ValueError(
            f"mix.images must be whole numbers separated by commas, not {text!r}"
        ) from None
    if len(indices) < 2 or min(indices) < 0:
        raise ValueError(f"mix.images needs two or more input indices ≥ 0, e.g. 0,1; got {text!r}")
    return indices


def mix_latents(
    a: torch.Tensor, b: torch.Tensor, latent_level: torch.Tensor, cut: int
) -> torch.Tensor:
    """A's latents on levels ≥ cut, B's on the finer levels."""
    return torch.where(latent_level >= cut, a, b)
