"""MSDS1/MSDS2, the synthetic multi-scale data of the RG-Flow paper: rotated ellipses on black.

Upstream RG-Flow (`code/msds/generate_msds{1,2}.py`) draws each ellipse with PIL on an 8×8 RGBA tile
(transparent white background), rotates it bicubically and pastes it through its own alpha onto a
black image. Models trained upstream have only seen those pixels, light fringes of the bicubic
rotation included, so we reproduce them bit for bit: the same `random.Random(seed)` draws in the
same order, and PIL's arithmetic for that one tile size (premultiply, bicubic filter in double
precision with truncation, un-premultiply, alpha blend) vectorised with numpy over all tiles
instead of five PIL calls per tile. tests/test_data.py checks it against the upstream scripts'
own output and against PIL itself.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from functools import cache
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

from ..errors import DataSpecError

FACTOR_NAMES = ("x", "y", "angle", "R", "G", "B")
_TILE = 8
_ELLIPSE_BOX = (1, 3, 7, 5)  # upstream's ImageDraw.ellipse box: 7×3 px, centre pixel (4, 4)
_CHUNK = 32  # images rendered at once: its arrays stay in cache (64: 10% slower); the bar step


@dataclass(frozen=True)
class MSDSBatch:
    """MSDS images with the ground-truth factors of every ellipse.

    `images`: (n, 3, L, L) float32 in [0, 1], multiples of 1/255. `labels`: (n, (L/8)², 6) float64,
    per ellipse (x, y, angle, R, G, B): the exact centre of the drawn ellipse in pixels (pixel p
    spans [p-0.5, p+0.5]; PIL rotates about the tile's corner point (4, 4), so the centre moves
    with the angle), the angle in degrees counter-clockwise as displayed, exactly as drawn
    (orientation is modulo 180; MSDS2 keeps θ0 + U[0,45) unwrapped, as upstream), colour 0..255.
    Ellipse k = (L/8)·i + j sits in column i, row j: upstream's label grid [i, j] flattened, and
    the paste order (later ones on top). `upstream_labels()` gives upstream's label file.
    """

    images: np.ndarray
    labels: np.ndarray
    factor_names: tuple[str, ...] = FACTOR_NAMES

    def upstream_labels(self) -> np.ndarray:
        """Upstream's label array, (n, L/8, L/8, 6) int32 indexed [image, column i, row j]: tile
        corner (x_pos, y_pos) where the tile was pasted, the angle truncated to whole degrees
        (as upstream's int32 array stores it), R, G, B."""
        n, m, _ = self.labels.shape
        grid = math.isqrt(m)
        angle = self.labels[..., 2]
        corner = self.labels[..., :2] - _centre_offset(angle)
        out = np.concatenate(
            [np.rint(corner), np.trunc(angle)[..., None], self.labels[..., 3:]], -1
        )
        return out.astype(np.int32).reshape(n, grid, grid, 6)


def generate_msds(
    kind: Literal["msds1", "msds2"],
    n: int,
    *,
    seed: int = 0,
    L: int = 32,
    progress: bool = True,
) -> MSDSBatch:
    """Draw `n` MSDS images exactly as upstream's script does after `random.seed(seed)`.

    MSDS1: global colour c0 ~ U{32..223}³ per image, each ellipse c0 + U{-32..32}, local angles
    U[0, 180). MSDS2: global angle θ0 ~ U[0, 180), each ellipse θ0 + U[0, 45), colours U{0..255}³.
    Every tile is pasted at (8i+δx, 8j+δy), δ ∈ {-1, 0, 1}, clipped at the border. Other multiples
    of 8 for L give an (L/8)×(L/8) grid of the same ellipses (upstream draws only 32×32). A tqdm
    bar appears on a terminal when generation takes more than a second, unless `progress` is False.
    """
    if kind not in ("msds1", "msds2"):
        raise DataSpecError(f"unknown MSDS kind {kind!r}; use 'msds1' or 'msds2'")
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise DataSpecError(f"MSDS needs a positive number of images, got {n!r}")
    if L < _TILE or L % _TILE:
        raise DataSpecError(f"MSDS size must be a multiple of 8 (an 8×8 tile per ellipse), not {L}")
    grid = L // _TILE
    rng = random.Random(seed)
    draw = _draw_msds1 if kind == "msds1" else _draw_msds2
    images = np.empty((n, 3, L, L), dtype=np.float32)
    labels = np.empty((n, grid * grid, 6))
    bar = tqdm(
        total=n, desc=f"{kind} images", unit="img", delay=1, disable=None if progress else True
    )
    with bar:
        for start in range(0, n, _CHUNK):
            part = slice(start, min(start + _CHUNK, n))
            draws = np.array([draw(rng, grid * grid) for _ in range(part.stop - start)])
            angles, colours, corners = draws[..., 0], draws[..., 1:4], draws[..., 4:6]
            images[part] = _paste(_rotated_tiles(angles, colours), corners.astype(np.intp), L)
            centres = corners + _centre_offset(angles)
            labels[part] = np.concatenate([centres, angles[..., None], colours], axis=-1)
            bar.update(part.stop - start)
    return MSDSBatch(images=images, labels=labels)


def _draw_msds1(rng: random.Random, tiles: int) -> list[tuple[float, ...]]:
    """One MSDS1 image's random numbers in upstream's order: base colour, then per tile (i outer,
    j inner) its colour, angle and paste offsets; as rows (angle, R, G, B, x_pos, y_pos).
    Integers come from Random._randbelow, which randint calls, without randint's argument
    checks (a quarter of the generation time); the fixture test pins the draws to upstream's."""
    below = rng._randbelow  # randint(a, b) is a + _randbelow(b - a + 1), draw for draw
    base = [below(192) + 32 for _ in range(3)]  # randint(0, 191) + 32
    grid = math.isqrt(tiles)
    rows = []
    for k in range(tiles):
        colour = [c + below(65) - 32 for c in base]  # randint(-32, 32)
        angle = rng.random() * 180
        i, j = divmod(k, grid)
        rows.append((angle, *colour, i * _TILE + below(3) - 1, j * _TILE + below(3) - 1))
    return rows


def _draw_msds2(rng: random.Random, tiles: int) -> list[tuple[float, ...]]:
    """One MSDS2 image's random numbers in upstream's order: base angle, then per tile its
    colour, angle and paste offsets; rows as in `_draw_msds1`."""
    below = rng._randbelow  # as in _draw_msds1
    base = rng.random() * 180
    grid = math.isqrt(tiles)
    rows = []
    for k in range(tiles):
        colour = [below(256) for _ in range(3)]  # randint(0, 255)
        angle = base + rng.random() * 45
        i, j = divmod(k, grid)
        rows.append((angle, *colour, i * _TILE + below(3) - 1, j * _TILE + below(3) - 1))
    return rows


def _centre_offset(angles: np.ndarray) -> np.ndarray:
    """Ellipse centre minus tile corner, (..., 2) pixels: PIL draws the ellipse centred on pixel
    (4, 4), i.e. the point (4.5, 4.5), and rotates about the point (4, 4) counter-clockwise."""
    theta = np.deg2rad(angles)
    cos, sin = np.cos(theta), np.sin(theta)
    return np.stack([3.5 + 0.5 * (cos + sin), 3.5 + 0.5 * (cos - sin)], axis=-1)


@cache
def _ellipse_rows() -> tuple[np.ndarray, np.ndarray]:
    """Upstream's ellipse as PIL's ImageDraw rasterises it (no anti-aliasing), by distinct rows.

    Returns the class of each of the 8 mask rows (0: empty, else its distinct pattern) and, for
    every bicubic window start x0 = -1..7 and non-empty pattern, the four terms of the cubic
    through its taps x0-1..x0+2 (edge pixels repeated): (9, patterns, 4).
    """
    tile = Image.new("L", (_TILE, _TILE), 0)
    ImageDraw.Draw(tile).ellipse(_ELLIPSE_BOX, 255)
    mask = (np.asarray(tile) > 0).astype(np.float64)
    patterns, row_class = np.unique(mask, axis=0, return_inverse=True)  # the empty row sorts first
    starts = np.arange(-1, _TILE)[:, None] + np.arange(-1, 3)
    taps = patterns[1:, np.clip(starts, 0, _TILE - 1)].transpose(1, 0, 2)  # (start, pattern, tap)
    return row_class.reshape(-1), np.stack(_cubic_terms(*np.moveaxis(taps, -1, 0)), axis=-1)


def _rotated_tiles(angles: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """`Image.rotate(angle, BICUBIC)` of every RGBA tile: (..., 8, 8, 4) integers 0..255.

    PIL premultiplies RGBA before a bicubic transform (the ellipse's colour and alpha 255 inside,
    zero outside), maps each output pixel centre back through its rounded affine matrix, filters
    each band with its a = -1 cubic along x and then y (edge pixels repeated), clips, truncates,
    and divides the colour by alpha again in integers. The expressions keep PIL's operation
    order, so the doubles, and hence the truncated bytes, are the same. Colour is computed only
    where alpha is not 0: pasting ignores it elsewhere.
    """
    flat = angles.reshape(-1)
    cos = np.empty(len(flat))
    sin = np.empty(len(flat))
    for t, angle in enumerate(flat.tolist()):  # Python's correctly rounded round(), as PIL's
        phi = -math.radians(angle % 360.0)
        cos[t], sin[t] = round(math.cos(phi), 15), round(math.sin(phi), 15)
    neg_sin = -sin
    centre = _TILE / 2
    a2 = cos * -centre + sin * -centre + 0.0 + centre
    a5 = neg_sin * -centre + cos * -centre + 0.0 + centre
    pixel = np.arange(_TILE) + 0.5
    xin, yin = pixel[None, None, :], pixel[None, :, None]  # output (row y, column x)
    xx = cos[:, None, None] * xin + sin[:, None, None] * yin + a2[:, None, None]
    yy = neg_sin[:, None, None] * xin + cos[:, None, None] * yin + a5[:, None, None]
    inside = (xx >= 0) & (xx < _TILE) & (yy >= 0) & (yy < _TILE)  # else transparent black
    tile_of = np.broadcast_to(np.arange(len(flat))[:, None, None], inside.shape)[inside]
    xx, yy = xx[inside] - 0.5, yy[inside] - 0.5
    x0, y0 = np.floor(xx), np.floor(yy)
    sample = _Sample(x0.astype(np.intp), xx - x0, y0.astype(np.intp), yy - y0)
    tiles = np.zeros((len(flat), _TILE, _TILE, 4), dtype=np.int64)
    alpha = sample.filter(np.full((len(xx), 1), 255.0))[:, 0]
    seen = alpha > 0
    colour = sample.select(seen).filter(colours.reshape(-1, 3)[tile_of[seen]])
    partial = (alpha[seen] < 255)[:, None]
    colour = np.where(
        partial, np.minimum(255 * colour // np.maximum(alpha[seen, None], 1), 255), colour
    )
    where = np.nonzero(inside)
    tiles[where + (3,)] = alpha
    tiles[tuple(w[seen] for w in where)] = np.concatenate([colour, alpha[seen, None]], axis=1)
    return tiles.reshape(*angles.shape, _TILE, _TILE, 4)


@dataclass(frozen=True)
class _Sample:
    """Where PIL's bicubic filter reads the source tile for some output pixels: the first tap's
    column and row offsets x0 - 1, y0 - 1 and the fractions dx, dy (flat arrays)."""

    x0: np.ndarray
    dx: np.ndarray
    y0: np.ndarray
    dy: np.ndarray

    def select(self, keep: np.ndarray) -> _Sample:
        return _Sample(self.x0[keep], self.dx[keep], self.y0[keep], self.dy[keep])

    def filter(self, values: np.ndarray) -> np.ndarray:
        """The filtered bytes of bands whose premultiplied source is `values` (pixel, band)
        times the 0/1 ellipse mask: clipped to 0..255 and truncated, as PIL stores them."""
        row_class, terms = _ellipse_rows()
        # Along x, once per distinct mask row: the source band is its value times the 0/1 mask,
        # so its integer terms are that value times the mask's, exactly. (pixel, pattern, band)
        x_terms = terms[self.x0 + 1]  # (pixel, pattern, term)
        scaled = (values[:, None] * x_terms[..., i, None] for i in range(4))
        along_x = _cubic(*scaled, self.dx[:, None, None])
        along_x = np.concatenate([np.zeros_like(along_x[:, :1]), along_x], axis=1)  # empty rows
        # Along y over the four tap rows, each one of those mask rows (edge rows repeated).
        tap_rows = row_class[np.clip(self.y0[:, None] + np.arange(-1, 3), 0, _TILE - 1)]
        rows = np.take_along_axis(along_x, tap_rows[..., None], axis=1).transpose(1, 0, 2)
        filtered = _cubic(*_cubic_terms(*rows), self.dy[:, None])
        clipped = np.where(filtered <= 0, 0, np.where(filtered >= 255, 255, np.trunc(filtered)))
        return clipped.astype(np.int64)


def _cubic_terms(v1, v2, v3, v4):
    """The polynomial coefficients of PIL's BICUBIC macro (cubic convolution with a = -1), term
    for term in its order, so that doubles round as they do there."""
    return v2, -v1 + v3, 2 * (v1 - v2) + v3 - v4, -v1 + v2 - v3 + v4


def _cubic(p1, p2, p3, p4, d):
    """The macro's Horner evaluation at fractional offset d."""
    return p1 + d * (p2 + d * (p3 + d * p4))


def _paste(tiles: np.ndarray, corners: np.ndarray, size: int) -> np.ndarray:
    """`paste(tile, corner, mask=tile)` of every tile in order onto black: (n, 3, size, size) in
    [0, 1]. PIL blends each byte as round((out·(255-a) + tile·a) / 255) by integer shifts."""
    n, m = corners.shape[:2]
    canvas = np.zeros((n, size + 2, size + 2, 3), dtype=np.int32)  # 1 px margin takes the overhang
    images = np.arange(n)[:, None, None]
    offsets = np.arange(_TILE)
    for k in range(m):
        cols = (corners[:, k, 0, None] + 1 + offsets)[:, None, :]
        rows = (corners[:, k, 1, None] + 1 + offsets)[:, :, None]
        tile = tiles[:, k]
        alpha = tile[..., 3:]
        blend = canvas[images, rows, cols] * (255 - alpha) + tile[..., :3] * alpha + 128
        canvas[images, rows, cols] = ((blend >> 8) + blend) >> 8
    visible = canvas[:, 1:-1, 1:-1].transpose(0, 3, 1, 2)
    return (visible / 255.0).astype(np.float32)
