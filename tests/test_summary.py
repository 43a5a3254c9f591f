"""summary's latent statistics: centred per latent before pooling, against the prior's moments
(closed form or, for a prior without one, from draws), and empty on the model's own samples."""

import math

import numpy as np
import pytest
import scipy.stats
import torch
from rginspect_plugins.summary import Summary

import rginspect
from rginspect.analysis import RunContext
from rginspect.data import DataBatch
from rginspect.nn.priors import GaussianPrior, Prior


class LogisticPrior(Prior):
    """A prior with no closed-form moments in rginspect: std s·π/√3, excess kurtosis 6/5."""

    kind = "logistic"

    def log_density(self, z):
        t = z / self.scale
        return -t - 2 * torch.nn.functional.softplus(-t) - torch.log(self.scale)

    def sample(self, shape, temperature=1.0, generator=None):
        u = torch.rand(shape, generator=generator, dtype=torch.float64).clamp(1e-12, 1 - 1e-12)
        return (torch.log(u) - torch.log1p(-u)).to(self.scale) * self.scale * temperature


def run(model, data, inputs=64):
    return Summary().run(RunContext(model, {"inputs": inputs}, 0, data=data))


def test_levels_pool_latents_centred_on_their_own_means():
    """Entries with different means (a ramp across the image) would inflate the pooled spread;
    centred, each level's std and kurtosis are those of the noise, 2× for z = 2x + 0.5."""
    model = rginspect.load("conftest:affine_image_flow", height=4, width=8)
    rng = np.random.default_rng(0)
    ramp = np.linspace(0.2, 0.8, 3 * 4 * 8).reshape(3, 4, 8)
    images = np.clip(ramp + rng.normal(0, 0.03, (500, 3, 4, 8)), 0, 1).astype(np.float32)
    dataset = run(model, DataBatch(images_or_fields=images, source="ramp"), inputs=500)
    x, _ = model.preprocess(torch.as_tensor(images))
    z = 2 * x.double().numpy() + 0.5
    for level in range(model.n_levels):
        values = (z - z.mean(0))[:, model.latent_level == level].ravel()
        assert float(dataset["std"][level]) == pytest.approx(values.std(), rel=1e-6)
        assert float(dataset.excess_kurtosis[level]) == pytest.approx(
            scipy.stats.kurtosis(values), abs=1e-6
        )
        raw = z[:, model.latent_level == level].ravel()
        assert raw.std() > 3 * values.std()  # what pooling without centring would have shown
    assert dataset.attrs["empty_comparison"] == ""


def test_a_prior_without_closed_form_moments_gets_them_from_draws():
    model = rginspect.load("conftest:affine_image_flow", prior=LogisticPrior(0.5))
    images = np.random.default_rng(1).uniform(0.1, 0.9, (16, 3, 4, 8)).astype(np.float32)
    dataset = run(model, DataBatch(images_or_fields=images, source="noise"), inputs=16)
    assert dataset.attrs["prior_std"] == pytest.approx(0.5 * math.pi / math.sqrt(3), rel=0.01)
    assert dataset.attrs["prior_excess_kurtosis"] == pytest.approx(1.2, abs=0.1)
    assert GaussianPrior(2.0).std() == 2.0 and GaussianPrior(2.0).excess_kurtosis() == 0.0


def test_on_its_own_samples_the_comparison_is_empty_and_says_so():
    model = rginspect.load("conftest:affine_image_flow")
    dataset = run(model, None)
    assert "compare the prior with itself" in dataset.attrs["empty_comparison"]
    assert "No test of the latents here" in Summary().render(dataset).text


def test_nan_latents_fail_instead_of_being_stored():
    model = rginspect.load("conftest:affine_image_flow")
    images = np.full((4, 3, 4, 8), 0.5, np.float32)
    images[2, 1, 1, 1] = 255.0
    with pytest.raises(ValueError, match="NaN/Inf latents for 1 of 4 inputs"):
        run(model, DataBatch(images_or_fields=images, source="raw bytes"), inputs=4)
