"""rginspect.data: MSDS as upstream draws it, digits, and every --data spec form."""

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import RGFLOW_RUN, RGFLOW_STATE
from PIL import Image, ImageDraw

import rginspect
from rginspect.data import (
    DataSpec,
    MSDSBatch,
    generate_msds,
    load_data,
    load_digits_images,
    parse_data_spec,
)
from rginspect.errors import DataSpecError
from rginspect.train import bits_per_dim

UPSTREAM_MSDS = Path(__file__).parent / "fixtures" / "msds"
# Pixel offsets of an 8×8 window around an ellipse centre.
TILE_Y, TILE_X = np.mgrid[-4:4, -4:4]


@pytest.fixture(scope="module")
def msds1() -> MSDSBatch:
    return generate_msds("msds1", 200, seed=11)


@pytest.fixture(scope="module")
def msds2() -> MSDSBatch:
    return generate_msds("msds2", 200, seed=12)


def as_uint8(images01: np.ndarray) -> np.ndarray:
    """(n, 3, L, L) in [0, 1] -> (n, L, L, 3) bytes, as the upstream PNGs store them."""
    return np.rint(images01 * 255).astype(np.uint8).transpose(0, 2, 3, 1)


def upstream_by_pil(kind: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The upstream procedure (fixtures/msds/README.md) one PIL call per tile: images and labels."""
    rng = random.Random(seed)
    images = np.empty((n, 32, 32, 3), dtype=np.uint8)
    labels = np.empty((n, 4, 4, 6), dtype=np.int32)
    for count in range(n):
        base = (
            [rng.randint(0, 191) + 32 for _ in range(3)] if kind == "msds1" else rng.random() * 180
        )
        image = Image.new("RGB", (32, 32), (0, 0, 0))
        for i in range(4):
            for j in range(4):
                tile = Image.new("RGBA", (8, 8), (255, 255, 255, 0))
                if kind == "msds1":
                    colour = [c + rng.randint(-32, 32) for c in base]
                    angle = rng.random() * 180
                else:
                    colour = [rng.randint(0, 255) for _ in range(3)]
                    angle = base + rng.random() * 45
                ImageDraw.Draw(tile).ellipse((1, 3, 7, 5), (*colour, 255))
                tile = tile.rotate(angle, resample=Image.Resampling.BICUBIC)
                corner = (8 * i + rng.randint(-1, 1), 8 * j + rng.randint(-1, 1))
                image.paste(tile, corner, mask=tile)
                labels[count, i, j] = (*corner, angle, *colour)
        images[count] = np.asarray(image)
    return images, labels


def centre_pixels(batch: MSDSBatch) -> np.ndarray:
    """(n, m, 3) colour of the pixel at each ellipse's labelled centre, 0..255."""
    n = np.arange(len(batch.images))[:, None]
    x, y = np.rint(batch.labels[..., :2]).astype(int).transpose(2, 0, 1)
    return batch.images.transpose(0, 2, 3, 1)[n, y, x] * 255


def moments(batch: MSDSBatch) -> tuple[np.ndarray, np.ndarray]:
    """Measured orientation (degrees, counter-clockwise on screen) and centroid offset per ellipse.

    Uses intensity in a disc of radius 3.6 px around the labelled centre's pixel.
    """
    intensity = np.pad(batch.images.sum(1), ((0, 0), (4, 4), (4, 4)))
    disc = TILE_X**2 + TILE_Y**2 <= 3.6**2
    n, m = batch.labels.shape[:2]
    angles = np.empty((n, m))
    offsets = np.empty((n, m))
    for i in range(n):
        for k in range(m):
            centre = batch.labels[i, k, :2]
            x, y = np.rint(centre).astype(int)
            w = intensity[i, y : y + 8, x : x + 8] * disc
            w = w / w.sum()
            mx, my = (w * TILE_X).sum(), (w * TILE_Y).sum()
            cxx = (w * (TILE_X - mx) ** 2).sum()
            cyy = (w * (TILE_Y - my) ** 2).sum()
            cxy = (w * (TILE_X - mx) * (TILE_Y - my)).sum()
            angles[i, k] = np.degrees(0.5 * np.arctan2(-2 * cxy, cxx - cyy))
            offsets[i, k] = np.hypot(x + mx - centre[0], y + my - centre[1])
    return angles, offsets


def angle_error(measured: np.ndarray, label: np.ndarray) -> np.ndarray:
    return np.abs((measured - label + 90) % 180 - 90)


# --- MSDS -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["msds1", "msds2"])
def test_msds_reproduces_the_upstream_scripts_pixel_for_pixel(kind):
    """fixtures/msds holds what upstream's own generate_msds{1,2}.py wrote after random.seed(0)."""
    upstream = np.load(UPSTREAM_MSDS / f"upstream_{kind}_seed0.npz")
    batch = generate_msds(kind, 64, seed=0)
    np.testing.assert_array_equal(as_uint8(batch.images), upstream["images"])
    np.testing.assert_array_equal(batch.upstream_labels(), upstream["labels"])


@pytest.mark.parametrize("kind", ["msds1", "msds2"])
def test_msds_matches_pil_tile_by_tile_for_other_seeds(kind):
    images, labels = upstream_by_pil(kind, 40, seed=2024)
    batch = generate_msds(kind, 40, seed=2024)
    np.testing.assert_array_equal(as_uint8(batch.images), images)
    np.testing.assert_array_equal(batch.upstream_labels(), labels)


@pytest.mark.parametrize("kind", ["msds1", "msds2"])
def test_msds_labels_are_exact_and_map_onto_upstream_labels(kind):
    upstream = np.load(UPSTREAM_MSDS / f"upstream_{kind}_seed0.npz")["labels"]
    batch = generate_msds(kind, 64, seed=0)
    grid = batch.labels.reshape(64, 4, 4, 6)  # ellipse k = 4i + j is upstream's [i, j]
    np.testing.assert_array_equal(np.floor(grid[..., 2]), upstream[..., 2])
    assert np.any(grid[..., 2] != np.floor(grid[..., 2]))  # the float angle, not its integer
    np.testing.assert_array_equal(grid[..., 3:], upstream[..., 3:])
    # PIL rotates the tile about its corner point (4, 4); the ellipse is centred on pixel (4, 4),
    # i.e. the point (4.5, 4.5): its centre turns about the rotation point by the angle.
    theta = np.deg2rad(grid[..., 2])
    turned = 0.5 * np.stack([np.cos(theta) + np.sin(theta), np.cos(theta) - np.sin(theta)], -1)
    np.testing.assert_allclose(grid[..., :2], upstream[..., :2] + 3.5 + turned, atol=1e-9)


@pytest.mark.parametrize("kind", ["msds1", "msds2"])
def test_msds_shapes_dtypes_range(kind):
    batch = generate_msds(kind, 5, seed=3)
    assert batch.images.shape == (5, 3, 32, 32) and batch.images.dtype == np.float32
    assert batch.labels.shape == (5, 16, 6) and batch.labels.dtype == np.float64
    assert batch.factor_names == ("x", "y", "angle", "R", "G", "B")
    assert 0.0 <= batch.images.min() and batch.images.max() <= 1.0
    np.testing.assert_allclose(batch.images * 255, np.round(batch.images * 255), atol=1e-4)
    colours = batch.labels[..., 3:]
    assert colours.min() >= 0 and colours.max() <= 255
    assert np.all(colours == np.round(colours))
    # ellipses and their bicubic fringes on a black background
    assert 0.5 < (batch.images.max(1) == 0).mean() < 0.75


@pytest.mark.parametrize("kind", ["msds1", "msds2"])
def test_msds_deterministic_per_seed(kind):
    a, b = generate_msds(kind, 4, seed=5), generate_msds(kind, 4, seed=5)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    c = generate_msds(kind, 4, seed=6)
    assert not np.array_equal(a.images, c.images)
    assert not np.array_equal(a.labels, c.labels)
    # images come one after another from one random stream: a longer draw starts the same
    np.testing.assert_array_equal(generate_msds(kind, 300, seed=5).images[:4], a.images)


def test_msds_positions_follow_the_grid(msds1):
    column, row = np.divmod(np.arange(16), 4)
    corners = msds1.upstream_labels().reshape(-1, 16, 6)[..., :2]
    shift_x, shift_y = corners[..., 0] - 8 * column, corners[..., 1] - 8 * row
    assert set(np.unique(shift_x)) == {-1, 0, 1} and set(np.unique(shift_y)) == {-1, 0, 1}


@pytest.mark.parametrize("kind", ["msds1", "msds2"])
def test_msds_centroid_matches_position_label(kind, msds1, msds2):
    """The intensity centroid around each labelled centre lies within 1 px of it."""
    batch = msds1 if kind == "msds1" else msds2
    _, offsets = moments(batch)
    bright = batch.labels[..., 3:].sum(-1) >= 300  # dim ellipses are swamped by neighbours' edges
    assert np.median(offsets[bright]) < 0.3 and offsets[bright].max() < 1.0


def test_msds1_colours_global_per_image(msds1):
    measured = centre_pixels(msds1)
    # the drawn colour at each centre is the label colour, brightened where the bicubic
    # rotation of the premultiplied tile overshoots (upstream's light fringes)
    overshoot = measured - msds1.labels[..., 3:]
    assert overshoot.min() >= 0 and np.median(overshoot) <= 2 and np.percentile(overshoot, 99) < 32
    # all 16 ellipses lie within c0 ± 32 for one c0, so within 64 of each other per channel
    spread = msds1.labels[..., 3:].max(1) - msds1.labels[..., 3:].min(1)
    assert spread.max() <= 64
    image_mean = measured.mean(1)
    assert np.all((image_mean >= 32 - 32) & (image_mean <= 223 + 32))
    within = measured.std(1).mean()
    across = image_mean.std(0).min()
    assert within < 25 and across > 40


def test_msds1_angles_local(msds1):
    angles = msds1.labels[..., 2]
    assert angles.min() >= 0 and angles.max() < 180
    assert angles.std(1).mean() > 35  # U[0, 180) has std 52


def test_msds2_angles_global_colours_local(msds2):
    angles = msds2.labels[..., 2]
    assert np.all(angles.max(1) - angles.min(1) < 45)
    assert angles.min(1).std() > 35  # θ0 differs from image to image
    colours = centre_pixels(msds2)
    overshoot = colours - msds2.labels[..., 3:]
    assert overshoot.min() >= 0 and np.median(overshoot) <= 2 and np.percentile(overshoot, 99) < 32
    assert colours.std(1).mean() > 50  # U{0..255} has std 74


@pytest.mark.parametrize("kind", ["msds1", "msds2"])
def test_msds_drawn_orientation_matches_label(kind, msds1, msds2):
    batch = msds1 if kind == "msds1" else msds2
    measured, _ = moments(batch)
    error = angle_error(measured, batch.labels[..., 2])
    bright = batch.labels[..., 3:].sum(-1) >= 300
    assert np.median(error) < 3
    assert np.mean(error[bright] < 15) > 0.99  # the rest touch a brighter neighbour


@pytest.mark.parametrize("kind", ["msds1", "msds2"])
def test_isolated_ellipse_matches_label(kind):
    """L=8 draws one ellipse per image: no neighbours, so orientation and centre are exact."""
    batch = generate_msds(kind, 300, seed=4, L=8)
    assert batch.images.shape == (300, 3, 8, 8) and batch.labels.shape == (300, 1, 6)
    measured, _ = moments(batch)
    assert angle_error(measured, batch.labels[..., 2]).max() < 5
    weight = batch.images.sum(1)
    weight /= weight.sum((1, 2), keepdims=True)
    ys, xs = np.mgrid[0:8, 0:8]
    cx, cy = (weight * xs).sum((1, 2)), (weight * ys).sum((1, 2))  # whole image: no label used
    assert np.hypot(cx - batch.labels[:, 0, 0], cy - batch.labels[:, 0, 1]).max() < 0.5


def test_msds_other_sizes_and_errors():
    batch = generate_msds("msds2", 2, L=64)
    assert batch.images.shape == (2, 3, 64, 64) and batch.labels.shape == (2, 64, 6)
    assert batch.upstream_labels().shape == (2, 8, 8, 6)
    for bad in [dict(kind="msds3", n=2), dict(kind="msds1", n=0), dict(kind="msds1", n=2, L=30)]:
        with pytest.raises(DataSpecError):
            generate_msds(**bad)


def test_upstream_model_sees_msds1_as_its_own_training_data():
    """The upstream-trained fixture model scores fresh msds1 images as it scores the images it
    came with (drawn by upstream's script), within the sampling error of the two means."""
    model = rginspect.load(RGFLOW_STATE)
    # Upstream's logit_transform overwrote the stored images01 in place with 0.05 + 0.9·x.
    stored = np.load(RGFLOW_RUN / "out_save" / "reference_60.npz")["images01"]
    own = (np.rint((stored - 0.05) / 0.9 * 255) / 255).astype(np.float32)
    fresh = load_data("msds1:256", channels=3, size=32, seed=0).images_or_fields
    with torch.no_grad():
        a, b = (
            bits_per_dim(model, torch.as_tensor(images), torch.Generator().manual_seed(seed))
            .double()
            .numpy()
            for seed, images in enumerate((own, fresh))
        )
    error = np.hypot(a.std(ddof=1) / np.sqrt(len(a)), b.std(ddof=1) / np.sqrt(len(b)))
    assert abs(a.mean() - b.mean()) < 3 * error, (a.mean(), b.mean(), error)


# --- digits -----------------------------------------------------------------------------------


def test_digits_16_preserves_pixels():
    from sklearn.datasets import load_digits

    images, labels = load_digits_images(16)
    assert images.shape == (1797, 1, 16, 16) and images.dtype == np.float32
    assert labels.shape == (1797,) and set(np.unique(labels)) == set(range(10))
    assert images.min() >= 0 and images.max() <= 1
    reference = load_digits().images / 16
    np.testing.assert_allclose(images.sum((1, 2, 3)), reference.sum((1, 2)), rtol=1e-5)
    np.testing.assert_array_equal(images[:, 0, 4:12, 4:12], reference.astype(np.float32))


def test_digits_32_is_16_upsampled():
    small, _ = load_digits_images(16)
    large, _ = load_digits_images(32)
    assert large.shape == (1797, 1, 32, 32)
    np.testing.assert_array_equal(large, small.repeat(2, axis=2).repeat(2, axis=3))


def test_digits_bad_size():
    with pytest.raises(DataSpecError, match="16 or 32"):
        load_digits_images(28)


# --- parse_data_spec --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("msds1", DataSpec("msds1")),
        ("msds2:500", DataSpec("msds2", n=500)),
        (" MSDS1:10 ", DataSpec("msds1", n=10)),
        ("digits", DataSpec("digits")),
        ("digits:32", DataSpec("digits", size=32)),
        ("digits:16", DataSpec("digits", size=16)),
        ("folder:/data/faces", DataSpec("folder", path="/data/faces")),
        ("folder:C:/data", DataSpec("folder", path="C:/data")),
        ("npz:runs/x.npz", DataSpec("npz", path="runs/x.npz")),
        ("npz:runs/x.npz#fields", DataSpec("npz", path="runs/x.npz", key="fields")),
        ("model", DataSpec("model")),
    ],
)
def test_parse_accepts(text, expected):
    assert parse_data_spec(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "msds3", "msds1:0", "msds1:-5", "msds1:ten", "digits:28", "folder:", "npz:",
     "npz:x.npz#", "npz:#key", "model:foo", "mnist", "celeba:64"],
)  # fmt: skip
def test_parse_rejects_with_accepted_forms(text):
    with pytest.raises(DataSpecError, match="accepted forms: msds1, msds1:N"):
        parse_data_spec(text)


# --- load_data --------------------------------------------------------------------------------


def test_load_msds():
    batch = load_data("msds1:7", seed=2)
    assert batch.images_or_fields.shape == (7, 3, 32, 32)
    assert batch.labels.shape == (7, 16, 6) and batch.factor_names[2] == "angle"
    assert "msds1" in batch.source and f"random.seed({2 + 2**32})" in batch.source
    assert batch.levels == 256
    analysis = generate_msds("msds1", 7, seed=2 + 2**32).images
    np.testing.assert_array_equal(batch.images_or_fields, analysis)
    training = load_data("msds1:7", seed=2, stream="training").images_or_fields
    np.testing.assert_array_equal(training, generate_msds("msds1", 7, seed=2).images)
    assert load_data("msds2", n_default=3).images_or_fields.shape == (3, 3, 32, 32)
    assert load_data("msds2:2", channels=3, size=16).images_or_fields.shape == (2, 3, 16, 16)
    for channels, size in [(1, None), (3, 30)]:
        with pytest.raises(DataSpecError, match="model expects"):
            load_data("msds1:2", channels=channels, size=size)


def test_training_and_analysis_images_of_one_seed_share_nothing():
    """`rginspect train image` and the analyses of the same --seed draw disjoint images."""
    training = load_data("msds1:2000", seed=0, stream="training").images_or_fields
    analysis = load_data("msds1:500", seed=0).images_or_fields
    # the training set is upstream's random.seed(0) stream
    upstream = np.load(UPSTREAM_MSDS / "upstream_msds1_seed0.npz")["images"]
    np.testing.assert_array_equal(as_uint8(training[:64]), upstream)
    flat_training = {image.tobytes() for image in as_uint8(training)}
    assert not any(image.tobytes() in flat_training for image in as_uint8(analysis))
    # nor base colours: each image's mean colour is uncorrelated with the training one's
    mean_colour = analysis.mean((2, 3)), training[:500].mean((2, 3))
    correlation = np.corrcoef(mean_colour[0].ravel(), mean_colour[1].ravel())[0, 1]
    assert abs(correlation) < 0.15  # 1500 pairs: standard error 0.026
    with pytest.raises(DataSpecError, match="seed must be"):
        load_data("msds1:2", seed=-1)


def test_load_digits():
    batch = load_data("digits", channels=1, size=32)
    assert batch.levels == 17  # sklearn's 0..16
    assert batch.images_or_fields.shape == (1797, 1, 32, 32)
    assert batch.labels.shape == (1797,) and batch.factor_names == ("digit",)
    assert load_data("digits").images_or_fields.shape == (1797, 1, 16, 16)
    for spec, channels, size in [("digits:32", 1, 16), ("digits", 3, 16), ("digits", 1, 64)]:
        with pytest.raises(DataSpecError, match="model expects"):
            load_data(spec, channels=channels, size=size)


def test_load_model_is_not_loaded_here():
    with pytest.raises(DataSpecError, match="checkpoint"):
        load_data("model")


def write_pngs(folder):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(2, 8, 8, 3), dtype=np.uint8)
    Image.fromarray(pixels[0]).save(folder / "a.png")
    Image.fromarray(pixels[1]).save(folder / "b.png")
    (folder / "notes.txt").write_text("not an image, and not read")
    return pixels


def test_load_folder(tmp_path):
    pixels = write_pngs(tmp_path)
    batch = load_data(f"folder:{tmp_path}", channels=3, size=8)
    assert batch.images_or_fields.shape == (2, 3, 8, 8) and batch.labels is None
    assert batch.levels == 256
    np.testing.assert_allclose(batch.images_or_fields, pixels.transpose(0, 3, 1, 2) / 255.0)
    grey = load_data(f"folder:{tmp_path}", channels=1, size=16).images_or_fields
    assert grey.shape == (2, 1, 16, 16) and grey.dtype == np.float32
    assert 0 <= grey.min() and grey.max() <= 1
    assert load_data(f"folder:{tmp_path}").images_or_fields.shape == (2, 3, 8, 8)


def test_load_folder_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataSpecError, match="no .png"):
        load_data(f"folder:{empty}")
    with pytest.raises(DataSpecError, match="no such folder"):
        load_data(f"folder:{tmp_path / 'missing'}")
    write_pngs(tmp_path)
    (tmp_path / "c.png").write_bytes(b"this is text, not a PNG")
    with pytest.raises(DataSpecError, match="c.png"):
        load_data(f"folder:{tmp_path}")


def test_load_folder_mixed_sizes(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    Image.new("RGB", (12, 12)).save(tmp_path / "b.png")
    with pytest.raises(DataSpecError, match="b.png"):
        load_data(f"folder:{tmp_path}")
    assert load_data(f"folder:{tmp_path}", size=8).images_or_fields.shape == (2, 3, 8, 8)


def test_load_npz(tmp_path):
    fields = np.random.default_rng(1).normal(size=(5, 8, 8))
    np.savez(tmp_path / "one.npz", fields)
    batch = load_data(f"npz:{tmp_path / 'one.npz'}", channels=1, size=8, domain="field")
    assert batch.images_or_fields.shape == (5, 1, 8, 8) and batch.levels is None
    assert batch.images_or_fields.dtype == np.float32
    np.testing.assert_allclose(batch.images_or_fields[:, 0], fields, rtol=1e-6)

    images = np.random.default_rng(2).random((3, 3, 4, 4))
    np.savez(tmp_path / "two.npz", images=images, fields=fields)
    picked = load_data(f"npz:{tmp_path / 'two.npz'}#images").images_or_fields
    np.testing.assert_allclose(picked, images, rtol=1e-6)
    with pytest.raises(DataSpecError, match="pick one"):
        load_data(f"npz:{tmp_path / 'two.npz'}")
    with pytest.raises(DataSpecError, match="no array 'other'"):
        load_data(f"npz:{tmp_path / 'two.npz'}#other")
    with pytest.raises(DataSpecError, match=r"model expects \(3, 8, 8\)"):
        load_data(f"npz:{tmp_path / 'two.npz'}#images", channels=3, size=8)


def test_load_npz_bad_arrays(tmp_path):
    bad = np.zeros((2, 1, 4, 4))
    bad[1, 0, 2, 2] = np.nan
    np.savez(tmp_path / "nan.npz", bad)
    with pytest.raises(DataSpecError, match="NaN"):
        load_data(f"npz:{tmp_path / 'nan.npz'}")
    np.savez(tmp_path / "flat.npz", np.zeros((4, 16)))
    with pytest.raises(DataSpecError, match=r"\(n, C, L, L\)"):
        load_data(f"npz:{tmp_path / 'flat.npz'}")
    with pytest.raises(DataSpecError, match="no such file"):
        load_data(f"npz:{tmp_path / 'missing.npz'}")


def test_npz_images_are_brought_to_0_1_or_refused(tmp_path):
    """Image models push pixels through a logit: uint8 files are divided by 255, [0, 1] floats
    kept, anything else refused in one line; fields pass as stored."""
    pixels = np.random.default_rng(3).integers(0, 256, size=(4, 3, 8, 8))
    pixels[0, 0, 0, :2] = (0, 255)
    cases = {
        "uint8": (pixels.astype(np.uint8), pixels / 255, 256),
        "int64": (pixels, pixels / 255, 256),
        "float_0_255": (pixels.astype(np.float64), pixels / 255, 256),
        "float_8bit": (pixels / 255, pixels / 255, 256),
        "float_continuous": (pixels / 300 + 0.01, pixels / 300 + 0.01, None),
    }
    for name, (stored, expected, levels) in cases.items():
        np.save(tmp_path / f"{name}.npy", stored)
        batch = load_data(f"npz:{tmp_path / name}.npy", channels=3, size=8)
        np.testing.assert_allclose(batch.images_or_fields, expected, atol=1e-6, err_msg=name)
        assert batch.images_or_fields.dtype == np.float32 and batch.levels == levels, name
    for name, bad in {
        "negative": pixels / 255 - 0.5,
        "fractional_0_255": pixels + 0.5,
        "16bit": pixels * 256,
    }.items():
        np.save(tmp_path / f"{name}.npy", bad)
        with pytest.raises(DataSpecError, match=r"images must be in \[0, 1\]") as caught:
            load_data(f"npz:{tmp_path / name}.npy", channels=3, size=8)
        assert "\n" not in str(caught.value)
        field = load_data(f"npz:{tmp_path / name}.npy", domain="field").images_or_fields
        np.testing.assert_allclose(field, bad, rtol=1e-6)
