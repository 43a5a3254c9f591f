"""The --data specification: which images (or fields) to push through a model, as one string."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import DataSpecError
from .digits import DIGIT_LEVELS, DIGITS_SIZES, load_digits_images
from .msds import generate_msds

ACCEPTED_FORMS = (
    "msds1, msds1:N, msds2, msds2:N, digits, digits:16, digits:32, folder:PATH, npz:PATH, "
    "npz:PATH#KEY, model"
)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
ANALYSIS_SEED_OFFSET = 2**32  # analysis data are drawn with --seed + this; training with --seed


@dataclass(frozen=True)
class DataSpec:
    """A parsed data spec; `path` and `key` only for folder/npz, `n` for MSDS, `size` for digits."""

    kind: str  # msds1 | msds2 | digits | folder | npz | model
    n: int | None = None
    path: str | None = None
    size: int | None = None
    key: str | None = None


@dataclass(frozen=True, kw_only=True)
class DataBatch:
    """Data ready for a model: (n, C, L, L) float32, with ground-truth factors where they exist.

    `levels` is the number of intensity levels per channel the images were quantised to (256 for
    8-bit images, 17 for sklearn digits), None for fields and continuous data: a likelihood in bits
    per dimension adds log2(levels) for the dequantisation only where the data really are discrete.
    """

    images_or_fields: np.ndarray
    labels: np.ndarray | None = None
    factor_names: tuple[str, ...] | None = None
    source: str
    levels: int | None = None


def parse_data_spec(spec: str) -> DataSpec:
    """Read a spec such as `msds1:1000` or `npz:runs/x.npz#fields`; reject anything else."""
    kind, colon, arg = spec.strip().partition(":")
    kind = kind.lower()
    if kind in ("msds1", "msds2"):
        if not colon:
            return DataSpec(kind)
        if arg.isdigit() and int(arg) > 0:
            return DataSpec(kind, n=int(arg))
        raise _bad_spec(spec, f"N must be a positive whole number, not {arg!r}")
    if kind == "digits":
        if not colon:
            return DataSpec(kind)
        if arg in [str(s) for s in DIGITS_SIZES]:
            return DataSpec(kind, size=int(arg))
        raise _bad_spec(spec, f"digits size must be 16 or 32, not {arg!r}")
    if kind == "folder" and arg:
        return DataSpec(kind, path=arg)
    if kind == "npz" and arg:
        path, hash_sign, key = arg.rpartition("#")
        if not hash_sign:
            return DataSpec(kind, path=arg)
        if path and key:
            return DataSpec(kind, path=path, key=key)
        raise _bad_spec(spec, "write npz:PATH#KEY with both a path and a key")
    if kind == "model" and not colon:
        return DataSpec(kind)
    raise _bad_spec(spec)


def load_data(
    spec: DataSpec | str,
    *,
    channels: int | None = None,
    size: int | None = None,
    n_default: int = 256,
    seed: int = 0,
    domain: Literal["image", "field"] = "image",
    stream: Literal["analysis", "training"] = "analysis",
    progress: bool = True,
) -> DataBatch:
    """Load or generate the data a spec names, fitted to a `domain` model of `channels` × `size`².

    MSDS is drawn at the model's size (a multiple of 8), digits at 16 or 32, folder images are
    converted and resized; npz arrays are stored fields for a field model and images in [0, 1]
    (uint8 or 0..255 files scaled) for an image model. Anything that cannot fit raises DataSpecError.
    Generated data of one `seed` come in two disjoint streams (see `msds_seed`), so that analyses
    never look at the images a model was trained on; `progress` allows a bar for slow generation.
    """
    if isinstance(spec, str):
        spec = parse_data_spec(spec)
    if spec.kind in ("msds1", "msds2"):
        batch = _load_msds(spec, channels, size, n_default, msds_seed(seed, stream), progress)
    elif spec.kind == "digits":
        batch = _load_digits(spec, channels, size)
    elif spec.kind == "folder":
        batch = _load_folder(Path(spec.path), channels, size)
    elif spec.kind == "npz":
        batch = _load_npz(Path(spec.path), spec.key, domain)
    elif spec.kind == "model":
        raise DataSpecError(
            "'model' data are samples drawn from the checkpoint, not loaded here; sample them from "
            f"the loaded model, or name a data source ({ACCEPTED_FORMS})"
        )
    else:
        raise DataSpecError(f"unknown data kind {spec.kind!r}; accepted forms: {ACCEPTED_FORMS}")
    _check_fit(batch, channels, size)
    return batch


def msds_seed(seed: int, stream: Literal["analysis", "training"]) -> int:
    """The `random.seed` of the MSDS images drawn for `stream` under --seed `seed`.

    Training images are upstream's script after `random.seed(seed)`; analysis images take seed
    + 2**32, a seed no training run uses, so the two never share an image (or a base colour).
    """
    if not isinstance(seed, (int, np.integer)) or not 0 <= seed < ANALYSIS_SEED_OFFSET:
        raise DataSpecError(f"the seed must be a whole number from 0 to 2**32 - 1, not {seed!r}")
    if stream not in ("analysis", "training"):
        raise ValueError(f"unknown data stream {stream!r}; use 'analysis' or 'training'")
    return int(seed) + (ANALYSIS_SEED_OFFSET if stream == "analysis" else 0)


def _bad_spec(spec: str, reason: str | None = None) -> DataSpecError:
    why = f" ({reason})" if reason else ""
    return DataSpecError(f"cannot read data spec {spec!r}{why}; accepted forms: {ACCEPTED_FORMS}")


def _mismatch(channels: int | None, size: int | None, found: tuple[int, ...], source: str) -> str:
    c = "C" if channels is None else channels
    side = "L" if size is None else size
    return f"the model expects ({c}, {side}, {side}) but the data ({source}) have {found}"


def _load_msds(
    spec: DataSpec,
    channels: int | None,
    size: int | None,
    n_default: int,
    seed: int,
    progress: bool,
) -> DataBatch:
    n = spec.n or n_default
    side = 32 if size is None else size
    source = f"{spec.kind}, {n} images generated with random.seed({seed})"
    if channels not in (None, 3) or side < 8 or side % 8:
        raise DataSpecError(
            _mismatch(channels, size, (3, side, side), source)
            + "; MSDS is RGB in 8×8 tiles: it fits 3-channel models whose size is a multiple of 8"
        )
    msds = generate_msds(spec.kind, n, seed=seed, L=side, progress=progress)
    return DataBatch(
        images_or_fields=msds.images,
        labels=msds.labels,
        factor_names=msds.factor_names,
        source=f"{source}, {side}×{side}",
        levels=256,
    )


def _load_digits(spec: DataSpec, channels: int | None, size: int | None) -> DataBatch:
    side = spec.size or size or DIGITS_SIZES[0]
    source = f"sklearn digits {side}×{side}"
    if channels not in (None, 1) or (size is not None and size != side) or side not in DIGITS_SIZES:
        raise DataSpecError(
            _mismatch(channels, size, (1, side, side), source)
            + "; digits are greyscale, 16×16 (digits) or 32×32 (digits:32)"
        )
    images, labels = load_digits_images(side)
    return DataBatch(
        images_or_fields=images,
        labels=labels,
        factor_names=("digit",),
        source=source,
        levels=DIGIT_LEVELS,
    )


def _load_folder(folder: Path, channels: int | None, size: int | None) -> DataBatch:
    if not folder.is_dir():
        raise DataSpecError(f"{folder}: no such folder; folder:PATH needs a folder of images")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataSpecError(f"{folder}: no .png/.jpg/.jpeg images here; add some or fix the path")
    arrays = []
    mode = None
    for path in files:
        try:
            with Image.open(path) as image:
                if mode is None:  # greyscale only when asked, or when the first image is greyscale
                    grey = channels == 1 or (channels is None and _is_greyscale(image))
                    mode = "L" if grey else "RGB"
                image = image.convert(mode)
                if size is not None and image.size != (size, size):
                    image = image.resize((size, size), Image.Resampling.BILINEAR)
                arrays.append(np.asarray(image, dtype=np.float32) / 255.0)
        except (OSError, UnidentifiedImageError, ValueError) as err:
            raise DataSpecError(f"{path}: cannot read this image ({err}); replace it") from err
        if arrays[-1].shape != arrays[0].shape:
            raise DataSpecError(
                f"{path}: {arrays[-1].shape[1]}×{arrays[-1].shape[0]} px, but {files[0].name} is "
                f"{arrays[0].shape[1]}×{arrays[0].shape[0]}; images must share one size"
            )
    stacked = np.stack(arrays)
    stacked = stacked[:, None] if stacked.ndim == 3 else stacked.transpose(0, 3, 1, 2)
    return DataBatch(
        images_or_fields=np.ascontiguousarray(stacked),
        source=f"folder {folder}, {len(files)} images",
        levels=256,
    )


def _is_greyscale(image: Image.Image) -> bool:
    return image.mode != "P" and len(image.getbands()) == 1


def _load_npz(path: Path, key: str | None, domain: str) -> DataBatch:
    if not path.is_file():
        raise DataSpecError(f"{path}: no such file; npz:PATH needs an .npz (or .npy) array file")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DataSpecError(f"{path}: not a readable numpy .npz/.npy file ({err})") from err
    if isinstance(loaded, np.ndarray):
        array, source = loaded, f"npy {path}"
    else:
        with loaded:
            keys = list(loaded.files)
            if key is None and len(keys) != 1:
                raise DataSpecError(f"{path} holds arrays {keys}; pick one with npz:{path}#KEY")
            key = keys[0] if key is None else key
            if key not in keys:
                raise DataSpecError(f"{path} has no array {key!r}; it holds {keys}")
            source = f"npz {path}#{key}"
            try:
                array = loaded[key]
            except ValueError as err:  # object arrays would need unpickling
                raise DataSpecError(
                    f"{source}: not a readable numpy array ({err}); save plain numbers"
                ) from err
    return batch_from_array(array, domain=domain, source=source)


def batch_from_array(
    array: Any, *, domain: Literal["image", "field"], source: str = "an array"
) -> DataBatch:
    """A data batch from numbers in memory (numpy, torch or nested lists): (n, C, L, L) or
    (n, L, L). Fields are kept as they are; images must be in [0, 1] or whole numbers 0..255."""
    if hasattr(array, "detach"):  # a torch tensor
        array = array.detach().cpu().numpy()
    array = np.asarray(array)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise DataSpecError(f"{source}: dtype {array.dtype} is not real numbers")
    if array.ndim == 3:
        array = array[:, None]
    if array.ndim != 4 or array.shape[0] == 0 or array.shape[2] != array.shape[3]:
        raise DataSpecError(
            f"{source}: shape {array.shape}; expected a non-empty (n, C, L, L) or (n, L, L) array "
            "(move a channels-last axis to position 1)"
        )
    values = array.astype(np.float32)
    if not np.isfinite(values).all():
        raise DataSpecError(f"{source}: contains NaN or Inf (as float32); clean the data first")
    if domain == "field":
        return DataBatch(images_or_fields=values, source=source)
    return _as_images01(values, integral=np.issubdtype(array.dtype, np.integer), source=source)


def _as_images01(values: np.ndarray, *, integral: bool, source: str) -> DataBatch:
    """Images in [0, 1] as image models expect: 0..255 whole numbers (any dtype) are divided by 255.

    An image model pushes pixels through a logit, so a value outside [0, 1] would come out NaN.
    """
    low, high = float(values.min()), float(values.max())
    whole = integral or bool((values == np.round(values)).all())
    if low >= 0 and high <= 1 and not integral:
        on_8bit_grid = np.abs(values * 255 - np.round(values * 255)).max() < 1e-3
        return DataBatch(
            images_or_fields=values, source=source, levels=256 if on_8bit_grid else None
        )
    if low >= 0 and high <= 255 and whole:
        return DataBatch(
            images_or_fields=values / 255, source=f"{source} (0..255, divided by 255)", levels=256
        )
    raise DataSpecError(
        f"{source}: image values span [{low:.4g}, {high:.4g}], but images must be in [0, 1] or whole "
        "numbers 0..255; rescale them (or, for a field, load a field model)"
    )


def _check_fit(batch: DataBatch, channels: int | None, size: int | None) -> None:
    found = tuple(batch.images_or_fields.shape[1:])
    c, h, w = found
    if h != w:
        raise DataSpecError(f"{batch.source}: images are {w}×{h} px; they must be square")
    if (channels is not None and c != channels) or (size is not None and h != size):
        raise DataSpecError(_mismatch(channels, size, found, batch.source))
