"""MSDS1/MSDS2, the synthetic multi-scale data of the RG-Flow paper: rotated ellipses on black.

Follows the upstream generator (RG-Flow `code/msds/generate_msds{1,2}.py`): a 7×3 px ellipse is
drawn in an 8×8 tile, rotated, and the tile pasted at (8i+δx, 8j+δy) with δ ∈ {-1, 0, 1}, clipped at
the image border. Rendering is vectorised numpy instead of PIL so that 10,000 images take well under
a second, and the labels give each ellipse's exact centre rather than its tile corner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..errors import DataSpecError

FACTOR_NAMES = ("x", "y", "angle", "R", "G", "B")
_TILE = 8
_CENTRE = 4  # tile pixel at the ellipse centre: upstream's bounding box is (1, 3, 7, 5)
_SEMI_AXES = (3.5, 1.5)  # a 7×3 px ellipse
_CHUNK = 2048  # images rendered at once, to bound memory


@dataclass(frozen=True)
class MSDSBatch:
    """MSDS images with the ground-truth factors of every ellipse.

    `images`: (n, 3, L, L) float32 in [0, 1], multiples of 1/255. `labels`: (n, (L/8)², 6) float32,
    per ellipse (x, y, angle, R, G, B): centre in pixels (pixel p spans [p-0.5, p+0.5]), angle in
    degrees counter-clockwise as displayed (orientation is modulo 180; MSDS2 keeps θ0 + U[0,45)
    unwrapped, as upstream), colour 0..255. Ellipse k = (L/8)·i + j sits in column i, row j: this
    is upstream's label grid [i, j] flattened, and also the paste order (later ones on top).
    """

    images: np.ndarray
    labels: np.ndarray
    factor_names: tuple[str, ...] = FACTOR_NAMES


def generate_msds(
    kind: Literal["msds1", "msds2"], n: int, *, seed: int = 0, L: int = 32
) -> MSDSBatch:
    """Draw `n` MSDS images, the same for the same seed.

    MSDS1: global colour c0 ~ U{32..223}³ per image, each ellipse c0 + U{-32..32}, local angles
    U[0, 180). MSDS2: global angle θ0 ~ U[0, 180), each ellipse θ0 + U[0, 45), colours U{0..255}³.
    Other multiples of 8 for L give an (L/8)×(L/8) grid of the same ellipses.
    """
    if kind not in ("msds1", "msds2"):
        raise DataSpecError(f"unknown MSDS kind {kind!r}; use 'msds1' or 'msds2'")
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise DataSpecError(f"MSDS needs a positive number of images, got {n!r}")
    if L < _TILE or L % _TILE:
        raise DataSpecError(f"MSDS size must be a multiple of 8 (an 8×8 tile per ellipse), not {L}")
    grid = L // _TILE
    m = grid * grid
    rng = np.random.default_rng(seed)
    if kind == "msds1":
        base_colour = rng.integers(32, 224, size=(n, 1, 3))
        colours = base_colour + rng.integers(-32, 33, size=(n, m, 3))
        angles = rng.uniform(0.0, 180.0, size=(n, m))
    else:
        base_angle = rng.uniform(0.0, 180.0, size=(n, 1))
        angles = base_angle + rng.uniform(0.0, 45.0, size=(n, m))
        colours = rng.integers(0, 256, size=(n, m, 3))
    shifts = rng.integers(-1, 2, size=(n, m, 2))

    cells = np.stack(np.divmod(np.arange(m), grid), axis=-1)  # (column i, row j) of ellipse k
    centres = cells * _TILE + _CENTRE + shifts
    images = np.empty((n, 3, L, L), dtype=np.float32)
    for start in range(0, n, _CHUNK):
        part = slice(start, start + _CHUNK)
        images[part] = _render(angles[part], colours[part], shifts[part], grid)
    labels = np.concatenate([centres, angles[..., None], colours], axis=-1).astype(np.float32)
    return MSDSBatch(images=images, labels=labels)


def _render(angles: np.ndarray, colours: np.ndarray, shifts: np.ndarray, grid: int) -> np.ndarray:
    """Anti-aliased ellipses composited over black in paste order: (c, 3, L, L) in 1/255 steps."""
    size = grid * _TILE
    # Each ellipse is drawn in a 10×10 window starting at pixel 8i-1: its tile wherever δ puts it.
    w = np.arange(_TILE + 2) - (_CENTRE + 1)
    dx = w[None, None, None, :] - shifts[..., 0, None, None]  # pixel offset from the centre
    dy = w[None, None, :, None] - shifts[..., 1, None, None]
    theta = np.deg2rad(angles)[..., None, None]
    cos, sin = np.cos(theta), np.sin(theta)
    # PIL's rotate turns counter-clockwise on screen (y down), so the major axis is (cos, -sin).
    u = dx * cos - dy * sin
    v = dx * sin + dy * cos
    a, b = _SEMI_AXES
    level = (u / a) ** 2 + (v / b) ** 2 - 1
    slope = 2 * np.hypot(u / a**2, v / b**2)
    # level/slope is the signed distance to the outline, to first order: a one-pixel ramp.
    alpha = np.clip(0.5 - level / np.maximum(slope, 1e-9), 0.0, 1.0)
    in_tile_x = (dx >= -_CENTRE) & (dx < _TILE - _CENTRE)
    in_tile_y = (dy >= -_CENTRE) & (dy < _TILE - _CENTRE)
    alpha *= in_tile_x & in_tile_y  # upstream pastes an 8×8 tile, so nothing leaks beyond it

    # One pixel of margin on each side takes the tiles that δ pushes over the border.
    canvas = np.zeros((len(angles), 3, size + 2, size + 2))
    for k in range(grid * grid):
        i, j = divmod(k, grid)
        region = canvas[:, :, _TILE * j : _TILE * j + _TILE + 2, _TILE * i : _TILE * i + _TILE + 2]
        cover = alpha[:, k, None]
        region *= 1.0 - cover
        region += cover * colours[:, k, :, None, None]
    return (np.round(canvas[:, :, 1:-1, 1:-1]) / 255.0).astype(np.float32)
