"""Handwritten digits bundled with scikit-learn: small real images that need no download."""

from __future__ import annotations

import numpy as np

from ..errors import DataSpecError

DIGITS_SIZES = (16, 32)
DIGIT_LEVELS = 17  # sklearn stores each pixel as a whole number 0..16


def load_digits_images(size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """The 1797 sklearn 8×8 digits as (n, 1, size, size) float32 in [0, 1], and their labels 0..9.

    Values 0..16 are divided by 16 and the digit is centred on a black canvas: 16×16 pads 4 pixels
    each side; 32×32 first doubles every pixel (nearest) and then pads 8, so it is exactly the 16×16
    image upsampled 2× and the digit covers the same central half in both.
    """
    if size not in DIGITS_SIZES:
        raise DataSpecError(f"digits come in size 16 or 32, not {size!r}; use digits or digits:32")
    from sklearn.datasets import load_digits  # imported here: sklearn takes a second to import

    digits = load_digits()
    images = digits.images.astype(np.float32) / 16.0
    if size == 32:
        images = images.repeat(2, axis=1).repeat(2, axis=2)
    pad = (size - images.shape[-1]) // 2
    images = np.pad(images, ((0, 0), (pad, pad), (pad, pad)))
    return images[:, None], digits.target.astype(np.int64)
