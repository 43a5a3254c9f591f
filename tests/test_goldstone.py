"""goldstone: phase locking against exact cases, and the plugin on fields with a known answer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from rginspect_plugins.goldstone import Goldstone
from rginspect_plugins.goldstone.compute import phase_locking
from scipy.special import hyp2f1

import rginspect
from rginspect.analysis import RunContext
from rginspect.data.specs import DataBatch
from rginspect.engine import AnalysisSelectionError, select_analyses
from rginspect.model import RGFlowModel
from rginspect.nn.architectures import rgflow_config

ISING = Path(__file__).parent / "fixtures" / "neuralrg" / "ising_L8"
rng = np.random.default_rng(0)


def test_circular_statistics_on_exact_cases():
    theta = rng.uniform(-np.pi, np.pi, 5000)
    assert phase_locking(theta + 0.7, theta) == pytest.approx((1, 0), abs=0.05)
    assert phase_locking(-theta + 0.7, theta) == pytest.approx((0, 1), abs=0.05)
    unrelated = rng.uniform(-np.pi, np.pi, 5000)
    assert max(phase_locking(theta, unrelated)) < 4 / np.sqrt(5000)


def identity_field_model() -> RGFlowModel:
    """A fresh RG-Flow is the identity map, so each latent is the field at its site."""
    return RGFlowModel.from_config(
        rgflow_config(channels=2, L=8, kernel=2, prior="gaussian", domain="field")
    )


def fields_batch(fields: np.ndarray) -> DataBatch:
    return DataBatch(images_or_fields=fields.astype(np.float32), source="test fields")


def test_ordered_fields_lock_every_top_latent_to_the_global_phase():
    n = 2000
    theta = rng.uniform(-np.pi, np.pi, n)
    ordered = np.stack([np.cos(theta), np.sin(theta)], 1)[:, :, None, None] * np.ones((1, 1, 8, 8))
    ordered += 0.1 * rng.standard_normal(ordered.shape)
    result = Goldstone().run(
        RunContext(identity_field_model(), {"inputs": n}, seed=0, data=fields_batch(ordered))
    )
    assert result.phase_locking.min() > 0.95


def test_disordered_fields_show_no_locking(tmp_path):
    n = 2000
    noise = rng.standard_normal((n, 2, 8, 8))
    result = Goldstone().run(
        RunContext(identity_field_model(), {"inputs": n}, seed=0, data=fields_batch(noise))
    )
    # Σφ has 64 sites; one site's phase explains 1/64 of it: locking ≈ 1/8 ± noise, top or not
    assert result.phase_locking.max() < 1 / 8 + 4 / np.sqrt(n)
    # circular complex Gaussians with correlation ρ: |⟨e^{i(arg a − arg b)}⟩| = π/4 ρ ₂F₁(½,½;2;ρ²)
    rho = 1 / 8
    exact = np.pi / 4 * rho * hyp2f1(0.5, 0.5, 2, rho**2)
    assert float(result.baseline_locking) == pytest.approx(exact, abs=2 / np.sqrt(n))
    path = tmp_path / "goldstone.nc"
    result.to_netcdf(path, engine="h5netcdf")
    section = Goldstone().render(xr.load_dataset(path, engine="h5netcdf"))
    assert "no top-level latent tracks" in section.text


def test_needs_a_two_component_field():
    ising = rginspect.load(ISING)
    assert "2 components" in Goldstone().applies_to(ising)
    assert Goldstone().applies_to(identity_field_model()) is None
    with pytest.raises(AnalysisSelectionError, match="goldstone.*2 components"):
        select_analyses("goldstone", ising, have_data=True)
    assert "goldstone" not in [a.name for a in select_analyses("all", ising, have_data=True)]
