"""inpaint: mask parsing, the cone against a dense Jacobian, exact locality, and a real fill."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from PIL import Image
from rginspect_plugins.inpaint import Inpaint
from rginspect_plugins.inpaint.compute import (
    cone_latents,
    hole_view,
    inpaint_latents,
    parse_mask,
    rmse,
)

import rginspect
from rginspect.analysis import RunContext
from rginspect.data import DataBatch, load_data
from rginspect.jacobian import to_data_space
from rginspect.model import RGFlowModel
from rginspect.nn.architectures import rgflow_config
from rginspect.nn.preprocessing import LogitTransform
from rginspect.nn.priors import GaussianPrior, Prior
from rginspect.results import ResultsStore

BUNDLED = Path(rginspect.__file__).parent / "assets" / "msds1_rgflow.pt"


@pytest.fixture(scope="module")
def small_model() -> RGFlowModel:
    """An untrained 16×16×3 RG-Flow, moved off the identity so its Jacobian is generic."""
    torch.manual_seed(0)
    config = rgflow_config(channels=3, L=16, kernel=4, nlayers=1, nhidden=8)
    model = RGFlowModel.from_config(config).double()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    return model


@pytest.fixture(scope="module")
def bundled() -> RGFlowModel:
    return rginspect.load(BUNDLED)


def _context(model: RGFlowModel, n: int, **overrides) -> RunContext:
    parameters = {key: p.default for key, p in Inpaint.parameters.items()} | overrides
    data = load_data(f"msds1:{n}", channels=3, size=32, seed=0)
    return RunContext(model=model, parameters=parameters, seed=0, data=data)


# -- masks --------------------------------------------------------------------------------
def test_square_masks():
    default = parse_mask("square", 32)
    assert default.sum() == 64 and default[12:20, 12:20].all()
    assert np.array_equal(parse_mask("square:8", 32), default)
    corner = parse_mask("square:3@0,29", 32)
    assert corner.sum() == 9 and corner[0:3, 29:32].all()


def test_non_square_masks():
    default = parse_mask("square", 8, 12)
    assert default.shape == (8, 12) and default.sum() == 4 and default[3:5, 5:7].all()
    with pytest.raises(ValueError, match="does not fit an 8×12 image"):
        parse_mask("square:3@6,0", 8, 12)


def test_file_masks(tmp_path):
    expected = np.zeros((16, 16), dtype=bool)
    expected[[1, 5, 9], [2, 14, 7]] = True
    np.save(tmp_path / "bool.npy", expected)
    np.save(tmp_path / "ints.npy", expected.astype(np.int64))
    Image.fromarray(np.where(expected, 255, 0).astype(np.uint8)).save(tmp_path / "hole.png")
    for name in ("bool.npy", "ints.npy", "hole.png"):
        assert np.array_equal(parse_mask(str(tmp_path / name), 16), expected), name


@pytest.mark.parametrize(
    "spec, message",
    [
        ("square:8@28,0", "does not fit"),
        ("square:0", "does not fit"),
        ("circle:4", "must be square"),
        ("missing.npy", "does not exist"),
        ("wrong_shape.npy", "the model needs (16, 16)"),
        ("twos.npy", "booleans or 0/1"),
        ("nothing.npy", "some pixels missing and some known"),
    ],
)
def test_mask_errors(tmp_path, monkeypatch, spec, message):
    monkeypatch.chdir(tmp_path)
    np.save("wrong_shape.npy", np.ones((8, 8), dtype=bool))
    np.save("twos.npy", np.full((16, 16), 2))
    np.save("nothing.npy", np.zeros((16, 16), dtype=bool))
    with pytest.raises(ValueError, match="inpaint.mask") as error:
        parse_mask(spec, 16)
    assert message in str(error.value) and "\n" not in str(error.value)


# -- the cone ----------------------------------------------------------------------------
def test_cone_is_exactly_the_latents_with_nonzero_jacobian(small_model):
    """Structural cone == support of ∂(masked entries)/∂z, from a dense autograd Jacobian."""
    mask = np.zeros((16, 16), dtype=bool)
    mask[5:7, 6:8] = True
    mask[13, 1] = True
    z = small_model.prior.sample(
        (1, *small_model.data_shape), generator=torch.Generator().manual_seed(1)
    )
    missing = torch.as_tensor(np.broadcast_to(mask, small_model.data_shape).copy())

    def masked_pixels(latents: torch.Tensor) -> torch.Tensor:
        return small_model.decode(latents[None])[0][0][missing]

    jacobian = torch.func.jacrev(masked_pixels)(z[0])  # (masked entries, C, L, L)
    moves_hole = (jacobian != 0).any(0).numpy()
    cone = cone_latents(small_model, mask)
    assert moves_hole.sum() > 0
    assert np.array_equal(moves_hole, cone)
    assert cone.sum() < small_model.n_latents


def test_grey_fill_does_not_reach_latents_outside_the_cone(bundled):
    """Out-of-cone latents are computed from known pixels only, so they equal the truth's."""
    mask = parse_mask("square", 32)
    images = torch.as_tensor(load_data("msds1:2", channels=3, size=32, seed=0).images_or_fields)
    missing = torch.as_tensor(np.broadcast_to(mask, bundled.data_shape).copy())
    with torch.no_grad():
        x_truth, _ = bundled.preprocess(images)
        z_truth, _ = bundled.encode(x_truth)
        z_grey, _ = bundled.encode(torch.where(missing, torch.zeros(()), x_truth))
    outside = torch.as_tensor(~cone_latents(bundled, mask))
    torch.testing.assert_close(z_grey[:, outside], z_truth[:, outside], rtol=0, atol=1e-6)
    assert (z_grey[:, ~outside] - z_truth[:, ~outside]).abs().max() > 1e-3


def test_optimising_a_latent_set_leaves_everything_outside_its_reach_bit_identical(small_model):
    """Free the fine-level part of a hole's cone: only pixels those latents reach may change."""
    mask = np.zeros((16, 16), dtype=bool)
    mask[6:8, 6:8] = True
    free = cone_latents(small_model, mask) & (small_model.latent_level == 0)
    reach = np.asarray(small_model.cone_matrix()[free.ravel()].sum(0)).ravel() > 0
    reach = reach.reshape(small_model.data_shape)
    assert 0 < reach.sum() < small_model.n_latents
    generator = torch.Generator().manual_seed(2)
    z_start = small_model.prior.sample((2, *small_model.data_shape), generator=generator)
    missing = torch.as_tensor(np.broadcast_to(mask, small_model.data_shape).copy())
    truth = torch.rand((2, *small_model.data_shape), generator=generator, dtype=torch.float64)
    z, trace = inpaint_latents(
        small_model, z_start, torch.as_tensor(free), truth, missing, 5, 0.1, 0.05
    )
    assert trace.shape == (5, 2)
    with torch.no_grad():
        before, after = small_model.decode(z_start)[0], small_model.decode(z)[0]
    free, reach = torch.as_tensor(free), torch.as_tensor(reach)
    assert torch.equal(z[:, ~free], z_start[:, ~free]) and not torch.equal(
        z[:, free], z_start[:, free]
    )
    torch.testing.assert_close(after[:, ~reach], before[:, ~reach], rtol=0, atol=1e-6)
    assert (after[:, reach] - before[:, reach]).abs().max() > 1e-3


# -- the analysis -------------------------------------------------------------------------
def test_inpainting_the_bundled_model_beats_the_grey_fill(bundled):
    dataset = hole_view(Inpaint().run(_context(bundled, 2, steps=25)), "square")
    start = dataset.start_masked_rmse.values
    assert (dataset.masked_rmse.values < start).all(), (dataset.masked_rmse.values, start)
    assert (dataset.known_rmse.values < 2 * dataset.attrs["noise"]).all()
    # touched = the cone's size per level, counted independently from the cone matrix
    mask = parse_mask("square", 32)
    cone = cone_latents(bundled, mask)
    per_level = [int(cone[bundled.latent_level == level].sum()) for level in range(4)]
    assert dataset.cone_latents.values.tolist() == per_level
    assert dataset.latents_touched.values.tolist() == [cone.sum(), 3072]
    # the stored RMSEs are those of the stored images
    truth, images = dataset.truth.values, dataset.inpainted.values
    hole = np.broadcast_to(mask, truth.shape)
    expected = np.sqrt(((images - truth) ** 2)[:, hole].reshape(2, 2, -1).mean(-1))
    np.testing.assert_allclose(dataset.masked_rmse.values, expected, rtol=1e-5)
    # log q of the result is the flow's density of the decoded image
    assert (dataset.log_prob.values > dataset.start_log_prob.values).all()


def test_noise_fill_is_seeded_and_rmse_helper_is_plain_rmse(bundled):
    first = hole_view(Inpaint().run(_context(bundled, 1, steps=1, init="noise")), "square")
    second = hole_view(Inpaint().run(_context(bundled, 1, steps=1, init="noise")), "square")
    hole = first.mask.values
    start = first.start.values[0][:, hole]
    assert np.array_equal(start, second.start.values[0][:, hole])
    assert start.std() > 0.2  # uniform noise, not grey
    a, b = torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4)
    where = torch.rand(3, 4, 4) > 0.5
    expected = [((a[i] - b[i])[where] ** 2).mean().sqrt() for i in range(2)]
    torch.testing.assert_close(rmse(a, b, where), torch.stack(expected))


def test_run_and_render_round_trip_through_netcdf(bundled, tmp_path):
    dataset = Inpaint().run(_context(bundled, 2, steps=3, mask="square:6@2,20"))
    dataset.to_netcdf(tmp_path / "inpaint.nc", engine="h5netcdf")
    stored = xr.open_dataset(tmp_path / "inpaint.nc", engine="h5netcdf")
    xr.testing.assert_identical(stored.load(), dataset)
    assert stored.mask.dtype == bool and stored.mask.values[0, 2:8, 20:26].all()
    section = Inpaint().render(stored)
    stored = hole_view(stored, "square:6@2,20")
    assert len(section.figures) == 2 and len(section.tables) == 2
    summary = section.tables[0].frame
    assert summary["latents touched"].tolist() == [0, int(stored.cone_latents.sum()), 3072]
    np.testing.assert_allclose(
        summary["masked RMSE"].iloc[1:], stored.masked_rmse.mean("image").values
    )
    assert f"{int(stored.cone_latents.sum())} of 3072 latents" in section.text


# -- issue 13 --------------------------------------------------------------------------------
def test_known_pixels_below_zero_are_pulled_back(small_model):
    """The data term sees the unclipped image: a known pixel under 0 (truth 0) gets a gradient.

    With the noise this small the data term dominates log q; through a clipped image it would
    be exactly flat for every pixel below 0, and nothing would move them back."""
    shape = (1, *small_model.data_shape)
    with torch.no_grad():
        z_start, _ = small_model.encode(torch.full(shape, -4.0, dtype=torch.float64))
        below = to_data_space(small_model, small_model.decode(z_start)[0])
    assert (below < -0.03).all()  # every pixel under black, clipped to exactly the truth
    mask = np.zeros((16, 16), dtype=bool)
    mask[6:8, 6:8] = True
    missing = torch.as_tensor(np.broadcast_to(mask, small_model.data_shape).copy())
    truth = torch.zeros(shape, dtype=torch.float64)
    free = torch.ones(small_model.data_shape, dtype=torch.bool)
    known = ~missing

    def distance_after(noise: float) -> float:
        z, _ = inpaint_latents(small_model, z_start, free, truth, missing, 20, 0.3, noise)
        with torch.no_grad():
            after = to_data_space(small_model, small_model.decode(z)[0])
        return float(after[0][known].abs().mean() / below[0][known].abs().mean())

    assert distance_after(1e-3) < 0.3  # pulled to black by the data term
    assert distance_after(1e3) > 0.7  # log q alone (data term ~0) does not do it


def test_stored_mask_is_a_boolean_for_plain_xarray(bundled, tmp_path):
    dataset = Inpaint().run(_context(bundled, 1, steps=2))
    store = ResultsStore(tmp_path / "results.nc")
    store.write("inpaint", dataset, {"status": "ok"})
    plain = xr.open_datatree(tmp_path / "results.nc", engine="h5netcdf")["inpaint"].to_dataset()
    assert plain.mask.dtype == bool
    assert np.array_equal((~plain.mask).values, ~dataset.mask.values)
    known_table = Inpaint().render(plain).tables[0].frame["known RMSE"]
    assert known_table.iloc[0] == pytest.approx(
        _known_start_rmse(hole_view(dataset, "square")), rel=1e-6
    )


def _known_start_rmse(dataset: xr.Dataset) -> float:
    known = ~np.broadcast_to(dataset.mask.values, dataset.truth.shape[1:])
    squared = (dataset.start.values - dataset.truth.values) ** 2
    return float(np.mean([np.sqrt(image[known].mean()) for image in squared]))


def test_parameters_follow_the_shared_names():
    assert "inputs" in Inpaint.parameters and "images" not in Inpaint.parameters


def test_budget_cuts_the_steps_and_says_so(bundled):
    dataset = Inpaint().run(_context(bundled, 1, steps=50, budget=1e-6))
    one = hole_view(dataset, "square")
    assert one.attrs["steps"] == 1 and one.attrs["steps_requested"] == 50
    assert one.sizes["step"] == 1 and one.attrs["step_seconds"] > 0
    assert "Cut from 50 steps" in Inpaint().render(dataset).text
    full = Inpaint().run(_context(bundled, 1, steps=3, budget=0))
    assert full.steps.values.tolist() == [3] and "Cut from" not in Inpaint().render(full).text


class DenseFlow(torch.nn.Module):
    """A flow without block tables: one dense invertible linear map on all entries."""

    def __init__(self, n: int) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.weight = torch.nn.Parameter(
            torch.eye(n) + 0.1 * torch.randn(n, n, generator=generator)
        )

    def decode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = (z.flatten(1) @ self.weight.T).reshape(z.shape)
        return x, torch.linalg.slogdet(self.weight)[1].expand(len(z))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.linalg.solve(self.weight, x.flatten(1).T).T.reshape(x.shape)
        return z, -torch.linalg.slogdet(self.weight)[1].expand(len(x))


class Logistic(Prior):
    """A custom prior: standard logistic latents."""

    kind = "logistic"

    def log_density(self, z: torch.Tensor) -> torch.Tensor:
        return -z - 2 * torch.nn.functional.softplus(-z)


def _dense_model(prior: Prior) -> RGFlowModel:
    shape = (3, 8, 12)  # non-square, like a module model may be
    return RGFlowModel(
        DenseFlow(math.prod(shape)),
        prior,
        np.zeros(shape[1:], dtype=np.int64),
        domain="image",
        data_shape=shape,
        preprocessing=LogitTransform(0.9),
    )


def test_without_block_tables_the_cone_is_everything_and_is_said_so():
    model = _dense_model(Logistic(1.0))
    images = np.random.default_rng(0).uniform(0.2, 0.8, (2, 3, 8, 12)).astype(np.float32)
    context = _context(model, 2, steps=5, mask="square:3@2,4")
    context.data = DataBatch(images_or_fields=images, source="uniform noise images")
    dataset = Inpaint().run(context)
    assert dataset.latent_set.values.tolist() == ["all"]
    assert dataset.mask.shape == (1, 8, 12) and int(dataset.mask.sum()) == 9
    text = Inpaint().render(dataset).text
    assert "Every latent is in the cone" in text and "smaller space" not in text
    assert np.isfinite(dataset.log_prob.values).all()


def test_a_prior_without_a_density_is_refused_in_one_line():
    class NoDensity(GaussianPrior):
        def log_density(self, z):
            raise NotImplementedError

    model = _dense_model(NoDensity(1.0))
    context = _context(model, 1, steps=1)
    context.data = DataBatch(
        images_or_fields=np.full((1, 3, 8, 12), 0.5, np.float32), source="grey"
    )
    with pytest.raises(ValueError, match="has none: give it a log_density") as error:
        Inpaint().run(context)
    assert "\n" not in str(error.value)


# -- issue 15: several holes ------------------------------------------------------------------
def test_several_holes_are_filled_each_on_its_own(bundled):
    dataset = Inpaint().run(_context(bundled, 2, steps=2, mask="square:4; square:8"))
    assert dataset.hole.values.tolist() == ["square:4", "square:8"]
    for spec in ("square:4", "square:8"):
        one = hole_view(dataset, spec)
        alone = hole_view(Inpaint().run(_context(bundled, 2, steps=2, mask=spec)), spec)
        cone = cone_latents(bundled, parse_mask(spec, 32))
        assert one.latents_touched.values.tolist() == [cone.sum(), 3072]
        # the same inputs, start and optimisation as a run with that hole alone
        np.testing.assert_allclose(one.masked_rmse, alone.masked_rmse, rtol=1e-5)
        np.testing.assert_allclose(one.mean_masked_rmse, alone.masked_rmse.mean("image"), rtol=1e-5)
    small, large = (int(dataset.latents_touched.sel(hole=h, latent_set="cone")) for h in
                    ("square:4", "square:8"))  # fmt: skip
    assert small <= large < 3072  # centred, both straddle the same block boundaries
    section = Inpaint().render(dataset)
    assert len(section.figures) == 4 and len(section.tables) == 4
    assert "mask square:4" in section.text and "mask square:8" in section.text


def test_a_hole_named_twice_is_refused(bundled):
    with pytest.raises(ValueError, match="names a hole twice"):
        Inpaint().run(_context(bundled, 1, steps=1, mask="square:4;square:4"))


class OverflowingFlow(DenseFlow):
    """Decodes latents of mean magnitude above 1 to NaN, as an ill-conditioned decoder overflows."""

    def decode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, logdet = super().decode(z)
        overflowed = z.flatten(1).abs().mean(1) > 1
        return torch.where(overflowed[:, None, None, None], torch.nan, x), logdet


def test_fills_that_overflow_are_counted_and_left_out_of_the_means():
    shape = (3, 8, 12)
    model = RGFlowModel(
        OverflowingFlow(math.prod(shape)),
        GaussianPrior(1.0),
        np.zeros(shape[1:], dtype=np.int64),
        domain="image",
        data_shape=shape,
        preprocessing=LogitTransform(0.9),
    )
    images = np.stack([np.full(shape, 0.97), np.full(shape, 0.5)]).astype(np.float32)
    context = _context(model, 2, steps=3, mask="square:3@2,4")
    context.data = DataBatch(images_or_fields=images, source="a bright and a grey image")
    dataset = hole_view(Inpaint().run(context), "square:3@2,4")
    assert dataset.diverged.values.tolist() == [1]  # the bright input's latents overflow
    rmse_of = dataset.masked_rmse.sel(latent_set="all").values
    assert np.isnan(rmse_of[0]) and np.isfinite(rmse_of[1])
    assert float(dataset.mean_masked_rmse.sel(latent_set="all")) == pytest.approx(rmse_of[1])
    assert "became NaN/Inf as the decoder overflowed: 1 of 2 by all latents" in (
        Inpaint().render(Inpaint().run(context)).text
    )
