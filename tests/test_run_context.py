"""What RunContext gives analyses for speed: one HMC ensemble per run, which gives each analysis
exactly the fields it would have drawn on its own, and batches sized to the model's cost."""

import time

import torch

import rginspect.analysis
import rginspect.physics
from rginspect.analysis import RunContext
from rginspect.model import RGFlowModel
from rginspect.nn.architectures import rgflow_config
from rginspect.physics import Phi4Action


def phi4_model() -> RGFlowModel:
    config = rgflow_config(channels=2, L=8, kernel=2, prior="gaussian", domain="field")
    return RGFlowModel.from_config(config, action=Phi4Action(8, 0.3, 1.0))


def test_analyses_of_a_run_share_one_hmc_draw_that_matches_their_own(monkeypatch):
    model, shared, draws = phi4_model(), {}, []
    hmc = rginspect.physics.hmc

    def counted(*args, **kwargs):
        draws.append(args[1])
        return hmc(*args, **kwargs)

    monkeypatch.setattr(rginspect.physics, "hmc", counted)
    contexts = [
        RunContext(model, {}, seed=3, inputs_planned=300, shared=shared, show_progress=False)
        for _ in range(3)
    ]
    small, _ = contexts[0].target_inputs(100)
    large, source = contexts[1].target_inputs(300)
    assert draws == [300] and "HMC samples" in source  # sized by the plan, drawn once
    assert small.shape == (100, 2, 8, 8) and large.shape == (300, 2, 8, 8)
    alone, _ = RunContext(model, {}, seed=3, show_progress=False).target_inputs(100)
    assert draws == [300, 100]
    torch.testing.assert_close(small, alone, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(large[:100], alone, rtol=1e-6, atol=1e-6)
    other_seed, _ = RunContext(model, {}, seed=4, shared=shared).target_inputs(100)
    assert draws == [300, 100, 100] and not torch.allclose(other_seed, alone)
    more, _ = contexts[2].target_inputs(400)  # more than planned: a larger draw, same prefix
    assert draws[-1] == 400
    torch.testing.assert_close(more[:300], large, rtol=1e-6, atol=1e-6)


def test_batches_are_sized_to_the_measured_cost_and_give_the_whole_result(monkeypatch):
    monkeypatch.setattr(rginspect.analysis, "BATCH_SECONDS", 0.2)
    sizes = []

    def slow_square(part):  # 10 ms per input: about 20 inputs per 0.2 s batch
        sizes.append(len(part))
        time.sleep(0.01 * len(part))
        return part**2, ["per-model value"]

    context = RunContext(phi4_model(), {}, seed=0, show_progress=False)
    x = torch.arange(100.0)
    squares, value = context.in_batches(slow_square, x)
    torch.testing.assert_close(squares, x**2)
    assert value == ["per-model value"] and sum(sizes) == 100
    assert sizes[:2] == [8, 16]  # at most doubling
    assert all(16 <= size <= 21 for size in sizes[2:-1])  # ~20, not 32, 64, ...


def test_batched_encoding_equals_one_batch():
    model = phi4_model()
    x = torch.randn(300, 2, 8, 8, generator=torch.Generator().manual_seed(0))
    z, logdet = RunContext(model, {}, seed=0, show_progress=False).in_batches(model.encode, x)
    with torch.no_grad():
        z_all, logdet_all = model.encode(x)
    torch.testing.assert_close(z, z_all, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(logdet, logdet_all, rtol=1e-5, atol=1e-4)


def test_once_draws_once_per_key_across_the_analyses_of_a_run():
    shared, draws = {}, []
    first, second = (RunContext(phi4_model(), {}, seed=0, shared=shared) for _ in range(2))
    key = ("flow_samples", 16, 8, True, 0)
    assert first.once(key, lambda: draws.append(1) or "samples") == "samples"
    assert second.once(key, lambda: draws.append(2) or "other") == "samples"
    assert (
        second.once(("flow_samples", 32, 8, True, 0), lambda: draws.append(3) or "more") == "more"
    )
    assert draws == [1, 3]


def test_target_latents_are_encoded_once_per_run(monkeypatch):
    model, shared, encoded = phi4_model(), {}, []
    encode = model.encode
    monkeypatch.setattr(model, "encode", lambda x: encoded.append(len(x)) or encode(x))
    contexts = [RunContext(model, {}, seed=0, shared=shared, show_progress=False) for _ in "ab"]
    with torch.no_grad():
        x, z, _ = contexts[0].target_latents(64)
        x_again, z_again, _ = contexts[1].target_latents(64)
        expected = encode(x)[0]
    assert sum(encoded) == 64  # the second analysis reused the first one's latents
    torch.testing.assert_close(x_again, x)
    torch.testing.assert_close(z_again, expected, rtol=1e-5, atol=1e-5)
