"""likelihood in bits/dim against closed forms (an affine flow) and against the bundled model's own
samples: data and samples are scored in the same [0, 1] image space."""

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.integrate
import scipy.stats
from rginspect_plugins.likelihood import Likelihood

import rginspect
from rginspect.analysis import RunContext
from rginspect.data import DataBatch, load_data

BUNDLED = Path(rginspect.__file__).parent / "assets" / "msds1_rgflow.pt"
CONSTRAINT = 0.9  # the logit preprocessing squeezes images into [0.05, 0.95]
A, B = 2.0, 0.5  # the affine flow z = A x + B of conftest.affine_image_flow


def run(model, data, **changes):
    parameters = {name: p.default for name, p in Likelihood.parameters.items()} | changes
    return Likelihood().run(RunContext(model, parameters, 0, data=data))


def logit_log_det(x):
    """log |dx/du| of x = logit(((2u − 1) c + 1) / 2), written from the map's derivative."""
    y = 1 / (1 + np.exp(-x))
    return np.log(CONSTRAINT) - np.log(y) - np.log1p(-y)


def test_model_samples_of_an_affine_flow_match_the_closed_form():
    """x = (z − B)/A with z ~ N(0, 1): −log q(u) per dimension is the entropy of N(−B/A, 1/A²)
    minus E log|dx/du|, a one-dimensional integral; plus log2 256 for the 8-bit grid."""
    model = rginspect.load("conftest:affine_image_flow")  # 3 × 4 × 8, non-square
    dataset = run(model, None, inputs=4000)
    x = scipy.stats.norm(-B / A, 1 / A)
    entropy = x.entropy()
    mean_log_det = scipy.integrate.quad(lambda t: x.pdf(t) * logit_log_det(t), -12, 12)[0]
    expected = (entropy - mean_log_det) / math.log(2) + 8
    error = float(dataset.mean_total_err)
    assert 0 < error < 0.01
    assert float(dataset.mean_total) == pytest.approx(expected, abs=4 * error)
    assert (
        dataset.attrs["quantization_levels"] == 256 and dataset.attrs["source"] == "model samples"
    )


@pytest.mark.parametrize("levels", [17, None])
def test_quantised_and_continuous_data_get_their_own_term(levels):
    """Per input: −Σ [log N(A x + B) + log A + log|dx/du|] / (D ln 2), plus log2 K for K levels."""
    model = rginspect.load("conftest:affine_image_flow")
    rng = np.random.default_rng(0)
    grid = rng.integers(0, 17, (20, 3, 4, 8)) / 16
    images = (grid if levels else rng.uniform(size=grid.shape)).astype(np.float32)
    data = DataBatch(images_or_fields=images, source="test images", levels=levels)
    dataset = run(model, data, dequantize=False)
    nats = nats_per_entry(images.astype(np.float64))
    expected = nats.reshape(20, -1).mean(1) / math.log(2) + (math.log2(17) if levels else 0)
    np.testing.assert_allclose(dataset.total, expected, rtol=1e-5)
    assert dataset.attrs["quantization_levels"] == (levels or 0)


def nats_per_entry(u):
    """−log q(u) of one image entry u in [0, 1] under the affine flow with a N(0, 1) prior."""
    y = ((u * 2 - 1) * CONSTRAINT + 1) / 2
    x = np.log(y) - np.log1p(-y)
    return -(scipy.stats.norm.logpdf(A * x + B) + np.log(A) + logit_log_det(x))


def test_dequantised_data_average_the_density_over_each_bin():
    """17-level pixels at 8/16 are spread uniformly over their bin [8/17, 9/17]: the mean code
    length is the bin average of −log q(u), plus log2 17."""
    model = rginspect.load("conftest:affine_image_flow")
    images = np.full((16, 3, 4, 8), 8 / 16, np.float32)
    data = DataBatch(images_or_fields=images, source="grey", levels=17)
    dataset = run(model, data, dequantization_draws=16)
    average = 17 * scipy.integrate.quad(nats_per_entry, 8 / 17, 9 / 17)[0]
    expected = average / math.log(2) + math.log2(17)
    assert float(dataset.mean_total) == pytest.approx(expected, abs=0.01)


def test_the_bundled_model_reads_the_same_on_its_samples_and_its_data():
    model = rginspect.load(BUNDLED)
    data = load_data("msds1:128", channels=3, size=32, seed=3)
    on_data = run(model, data, inputs=128, dequantization_draws=1)
    on_samples = run(model, None, inputs=128)
    assert 2 < float(on_data.mean_total) < 4.5
    assert float(on_samples.mean_total) == pytest.approx(float(on_data.mean_total), abs=0.3)


def test_inputs_the_model_gives_no_density_fail_instead_of_storing_nan():
    """Pixels outside [0, 1] (a 0..255 array slipped past the data checks) go through the logit to
    NaN: the analysis fails and says so rather than storing NaN with status ok."""
    model = rginspect.load("conftest:affine_image_flow")
    images = np.full((4, 3, 4, 8), 0.5, np.float32)
    images[1, 0, 0, 0] = 200.0
    with pytest.raises(ValueError, match="not finite for 1 of 4 inputs"):
        run(model, DataBatch(images_or_fields=images, source="raw bytes", levels=256))
