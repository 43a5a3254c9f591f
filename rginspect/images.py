"""Images as a figure or a GIF shows them: analyses store images channel first, (…, C, H, W) in
[0, 1] as the model's postprocess gives them, while imshow and PIL want the channel last, and
have no use for a channel count other than 1 or 3."""

from __future__ import annotations

import numpy as np


def display_image(images: np.ndarray) -> np.ndarray:
    """(..., C, H, W) in [0, 1] -> (..., H, W, 3) for colour, (..., H, W) otherwise (channel mean)."""
    moved = np.moveaxis(np.asarray(images), -3, -1)
    return moved if moved.shape[-1] == 3 else moved.mean(-1)
