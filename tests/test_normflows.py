"""The normflows format against normflows itself: Glow and RealNVP multiscale models with random
weights (ActNorm, couplings and the learned priors all moved off their identity initialisation)."""

import math
import sys

import numpy as np
import pytest
import scipy.stats
import torch
from conftest import STATE_DICT_MUTATIONS, mutate_state_dict
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rginspect_plugins.likelihood import Likelihood
from rginspect_plugins.mutual_info import MutualInfo
from rginspect_plugins.receptive import Receptive

import rginspect
from rginspect.analysis import RunContext
from rginspect.data import DataBatch
from rginspect.errors import (
    ArchitectureError,
    ArchitectureMismatchError,
    CheckpointValueError,
    MissingDependencyError,
    NonFiniteWeightsError,
    NotACheckpointError,
    RGInspectError,
    UntrustedCheckpointError,
)
from rginspect.formats import detect_format
from rginspect.formats.normflows import build_multiscale, save_normflows, wrap_multiscale
from rginspect.jacobian import decoder_jacobian, jacobian_by_probes
from rginspect.train import bits_per_dim

nf = pytest.importorskip("normflows")

GLOW = dict(levels=2, steps=2, hidden_channels=8, input_shape=[3, 8, 8])
MODELS = {
    "glow": GLOW,
    # the generative direction multiplies by the sigmoid scales (bounded), as `train image` builds
    "glow_sigmoid_inv": GLOW | dict(scale_map="sigmoid_inv"),
    "glow_checkerboard_diag": GLOW | dict(split_mode="checkerboard", prior="diag_gaussian"),
    "realnvp": GLOW | dict(architecture="realnvp"),
    "realnvp_checkerboard_diag": GLOW
    | dict(architecture="realnvp", split_mode="checkerboard", prior="diag_gaussian"),
    "realnvp_sigmoid_inv": GLOW | dict(architecture="realnvp", scale_map="sigmoid_inv"),
    "glow_3_levels_non_square": dict(
        levels=3, steps=2, hidden_channels=8, input_shape=[1, 8, 16], scale=False
    ),
}


def trained_like(options: dict, seed: int = 0):
    """A normflows MultiscaleFlow with every weight moved (a fresh one is the identity map, with
    zero prior means and unit scales) and its ActNorm layers marked as fitted, as after training."""
    torch.manual_seed(seed)
    flow = build_multiscale(**options)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, parameter in flow.named_parameters():
            size = 0.3 if name.startswith("q0.") and name.endswith(("loc", "log_scale")) else 0.05
            parameter.add_(size * torch.randn(parameter.shape, generator=generator))
        for module in flow.modules():
            if isinstance(module, nf.flows.ActNorm):
                module.data_dep_init_done.fill_(1.0)
    return flow.eval()


def skeleton(flow):
    """The same multiscale structure with only its squeezes and merges: normflows' own map from
    the latent list to the data layout, independent of rginspect's packing."""
    levels = len(flow.q0)
    return nf.MultiscaleFlow(
        flow.q0,
        [[nf.flows.Squeeze()]] * levels,
        [nf.flows.Merge()] * (levels - 1),
        class_cond=False,
    )


def close(actual: torch.Tensor, expected: torch.Tensor, rtol: float = 1e-5) -> None:
    """Float32 round-off relative to the largest value."""
    scale = max(1.0, float(expected.detach().abs().max()))
    torch.testing.assert_close(actual, expected, rtol=0, atol=rtol * scale)


@pytest.fixture(scope="module", params=list(MODELS))
def pair(request, tmp_path_factory):
    """(options, normflows flow, the rginspect model loaded from the saved file)."""
    options = MODELS[request.param]
    flow = trained_like(options)
    path = save_normflows(flow, tmp_path_factory.mktemp("nf") / "model.pt", **options)
    return options, flow, rginspect.load(path)


def inputs(model, n=6, seed=0):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, *model.data_shape), generator=generator) / 255
    return model.preprocess(images, dequantize=True, generator=generator)[0]


# -- the contract equals normflows ---------------------------------------------------------------
def test_encode_decode_log_prob_are_normflows_own(pair):
    _, flow, model = pair
    x = inputs(model)
    with torch.no_grad():
        z, logdet = model.encode(x)
        latents, logdet_nf = flow.inverse_and_log_det(x)
        for ours, theirs in zip(model.flow.packing.unpack(z), latents, strict=True):
            close(ours, theirs)
        close(logdet, logdet_nf)
        close(model.log_prob(x), flow.log_prob(x, None))
        decoded, logdet_decode = model.decode(z)
        x_nf, logdet_decode_nf = flow.forward_and_log_det(latents)
        close(decoded, x_nf)
        close(logdet_decode, logdet_decode_nf)
        close(decoded, x, rtol=1e-4)  # and the flow inverts
    moved = (decoded - skeleton(flow).forward_and_log_det(latents)[0]).abs().max()
    assert float(moved) > 0.1 and float(logdet.abs().max()) > 0.5  # not the identity map
    assert model.load_check["max_reconstruction_error"] < 1e-4


def scale_maps(flow) -> set[str]:
    return {m.scale_map for m in flow.modules() if isinstance(m, nf.flows.AffineCoupling)}


def test_the_couplings_use_the_scale_map_of_the_settings(pair):
    options, flow, model = pair
    default = "sigmoid" if options.get("architecture", "glow") == "glow" else "exp"
    expected = options.get("scale_map", default)
    assert scale_maps(flow) == scale_maps(model.flow.multiscale) == {expected}
    assert model.provenance["normflows"]["scale_map"] == expected


def test_packing_is_the_squeezes_and_merges_and_a_bijection(pair):
    _, flow, model = pair
    packing = model.flow.packing
    generator = torch.Generator().manual_seed(2)
    latents = [torch.randn(3, *q.shape, generator=generator) for q in flow.q0]
    packed = packing.pack(latents)
    assert torch.equal(packed, skeleton(flow).forward_and_log_det(latents)[0])
    for back, latent in zip(packing.unpack(packed), latents, strict=True):
        assert torch.equal(back, latent)
    z = torch.randn(3, *model.data_shape, generator=generator)
    assert torch.equal(packing.pack(packing.unpack(z)), z)
    assert torch.equal(packing.order.sort().values, torch.arange(model.n_latents))


def test_latent_levels_mark_where_each_level_lands(pair):
    options, flow, model = pair
    levels = options["levels"]
    marks = [torch.full((1, *q.shape), float(levels - 1 - i)) for i, q in enumerate(flow.q0)]
    expected = skeleton(flow).forward_and_log_det(marks)[0][0].numpy()
    assert (model.latent_level == expected).all()
    n = model.n_latents  # level 0 (the finest) is half the latents, each coarser one half again
    counts = [n // 2 ** (level + 1) for level in range(levels - 1)] + [n // 2 ** (levels - 1)]
    assert model.latents_per_level() == counts
    assert model.n_levels == levels and model.domain == "image"


# -- the prior ------------------------------------------------------------------------------------
def test_log_density_per_level_is_each_q0(pair):
    _, flow, model = pair
    with torch.no_grad():
        z, _ = model.encode(inputs(model))
        density = model.prior.log_density(z)
        latents = model.flow.packing.unpack(z)
        for i, q in enumerate(flow.q0):
            level = model.n_levels - 1 - i
            per_level = density[:, torch.as_tensor(model.latent_level == level)].sum(1)
            close(per_level, q.log_prob(latents[i]))


@pytest.mark.parametrize("name", ["glow", "glow_checkerboard_diag"])
def test_prior_samples_follow_q0_with_learned_means_and_scales(name):
    """Against normflows' own q0 draws (GlowBase or DiagGaussian, moved off N(0, 1)), also at a
    temperature; and the pooled one-latent descriptors against the samples they describe."""
    options = MODELS[name]
    flow = trained_like(options)
    model = wrap_multiscale(flow, **options)
    n = 4000
    for temperature in (1.0, 0.6):
        ours = model.prior.sample(
            (n, *model.data_shape), temperature, torch.Generator().manual_seed(5)
        )
        for q, part in zip(flow.q0, model.flow.packing.unpack(ours), strict=True):
            q.temperature = temperature
            with torch.no_grad():
                theirs, _ = q(n)
            q.temperature = None
            spread = theirs.std(0)
            assert (
                float(((part.mean(0) - theirs.mean(0)) / spread).abs().max()) < 6 * (2 / n) ** 0.5
            )
            assert float((part.std(0) / spread - 1).abs().max()) < 0.15
    with torch.no_grad():
        loc, log_scale = model.prior.loc_and_log_scale()
    assert float(loc.abs().max()) > 0.2 and float(log_scale.abs().max()) > 0.2
    draws = model.prior.sample((n, *model.data_shape), generator=torch.Generator().manual_seed(6))
    centred = (draws - loc).double().reshape(-1).numpy()
    assert model.prior.std() == pytest.approx(centred.std(), rel=0.01)
    assert model.prior.excess_kurtosis() == pytest.approx(scipy.stats.kurtosis(centred), abs=0.05)
    p = torch.tensor([0.05, 0.25, 0.5, 0.9], dtype=torch.float64)
    below = (centred[:, None] < model.prior.quantile(p).numpy()).mean(0)
    np.testing.assert_allclose(below, p.numpy(), atol=0.003)
    assert float(model.prior.scale) == pytest.approx(model.prior.std())


# -- likelihood and Jacobians ----------------------------------------------------------------------
def test_bits_per_dim_is_normflows_convention(pair):
    """normflows' Glow example: nll / ln 2 / D + 8 on (k + u)/256, the same dequantisation."""
    _, flow, model = pair
    images = torch.randint(0, 256, (5, *model.data_shape), generator=torch.Generator()) / 255
    with torch.no_grad():
        ours = bits_per_dim(model, images, torch.Generator().manual_seed(3))
        noise = torch.rand(images.shape, generator=torch.Generator().manual_seed(3))
        x = (images * 255 + noise) / 256
        theirs = -flow.log_prob(x, None) / math.log(2) / model.n_latents + 8
    close(ours, theirs)


def test_the_likelihood_analysis_reads_normflows_bits_per_dim(pair):
    """Undequantised data: the analysis' total is normflows' −log q / (D ln 2) + log2 256."""
    _, flow, model = pair
    images = torch.randint(0, 256, (8, *model.data_shape), generator=torch.Generator()) / 255
    data = DataBatch(images_or_fields=images.numpy(), source="noise", levels=256)
    parameters = {name: p.default for name, p in Likelihood.parameters.items()}
    dataset = Likelihood().run(RunContext(model, parameters | {"dequantize": False}, 0, data=data))
    with torch.no_grad():
        theirs = -flow.log_prob(images, None) / math.log(2) / model.n_latents + 8
    close(torch.as_tensor(dataset.total.values), theirs.double())
    assert dataset.sizes["level"] == model.n_levels


def test_mutual_info_refuses_levels_that_differ_between_channels(pair):
    _, _, model = pair
    reason = MutualInfo().applies_to(model)
    if model.data_shape[0] == 1:  # one channel: a site's level is its latent's
        assert reason is None
    else:
        assert "channels at a site belong to different levels" in reason and "\n" not in reason


@pytest.mark.parametrize("name", ["glow", "realnvp_checkerboard_diag"])
def test_probe_jacobian_is_the_dense_one_and_blocks_refuse(name):
    model = wrap_multiscale(trained_like(MODELS[name]), **MODELS[name])
    with torch.no_grad():
        z, _ = model.encode(inputs(model, n=1))
    n = model.n_latents
    assert model.cone_matrix().nnz == n * n  # no block tables: every latent may move every pixel
    values = jacobian_by_probes(model, z)
    dense = torch.func.jacrev(lambda v: model.decode(v[None])[0][0])(z[0]).reshape(n, n)
    close(values.reshape(n, n), dense.T)
    with pytest.raises(ValueError, match="needs a MERA flow with block tables") as error:
        decoder_jacobian(model, z, "blocks")
    assert "\n" not in str(error.value)


def test_the_receptive_analysis_on_a_glow_uses_probes_and_is_the_dense_jacobian():
    """The analysis' fields (mean over samples of Σ_c |∂x_c/∂z|) from autograd's dense Jacobian."""
    model = wrap_multiscale(trained_like(GLOW), **GLOW)
    defaults = {key: p.default for key, p in Receptive.parameters.items()}
    context = RunContext(model, defaults | {"samples": 2, "source": "prior", "budget": 0.0}, 0)
    dataset = Receptive().run(context)
    assert dataset.attrs["method"] == "probes" and dataset.attrs["samples"] == 2
    C, H, W = model.data_shape
    z = model.prior.sample((2, *model.data_shape), generator=context.generator())
    dense = torch.stack(
        [torch.func.jacrev(lambda v: model.decode(v[None])[0][0])(one) for one in z]
    )  # (sample, C, H, W, C, H, W): data entry by latent
    fields = dense.abs().reshape(2, C, H * W, -1).sum(1).mean(0).T  # (latent, site)
    close(torch.as_tensor(dataset.rf_mass.values), fields.sum(1).double())
    shown = torch.as_tensor(dataset.shown.values)
    close(torch.as_tensor(dataset.rf_map.values).reshape(len(shown), -1), fields[shown])


# -- the file ------------------------------------------------------------------------------------
def test_save_load_round_trip_and_model_card(pair, tmp_path):
    options, flow, model = pair
    path = save_normflows(flow, tmp_path / "again.pt", **options)
    assert detect_format(path).name == "normflows"
    loaded = rginspect.load(path)
    for key, value in flow.state_dict().items():
        assert torch.equal(loaded.flow.multiscale.state_dict()[key], value)
    info = loaded.info()
    assert info["format"] == "normflows" and info["architecture"] == "NormflowsMultiscaleFlow"
    assert info["parameters"] == sum(p.numel() for p in flow.parameters())
    assert info["provenance"]["normflows"]["levels"] == options["levels"]
    assert info["provenance"]["saved_with_normflows"] == nf.__version__
    assert info["prior"]["kind"] == options.get("prior", "glow_base")
    assert info["latents_per_level"] == model.latents_per_level()
    assert torch.load(path, weights_only=True)["settings"] == info["provenance"]["normflows"]


def test_a_bare_state_dict_loads_with_its_settings_as_options(tmp_path):
    flow = trained_like(GLOW)
    path = tmp_path / "glow_state.pt"
    flow.save(path)  # normflows' own MultiscaleFlow.save: torch.save(state_dict)
    assert detect_format(path).name == "normflows"
    with pytest.raises(ArchitectureError, match="pass levels=, steps=, hidden_channels=") as error:
        rginspect.load(path)
    assert "\n" not in str(error.value)
    model = rginspect.load(path, **GLOW)
    x = inputs(model)
    with torch.no_grad():
        close(model.log_prob(x), flow.log_prob(x, None))


@pytest.mark.parametrize(
    "options, built_with",
    [(GLOW, "sigmoid"), (GLOW | dict(architecture="realnvp"), "exp")],
)
def test_settings_without_scale_map_load_as_they_were_built(tmp_path, options, built_with):
    """Files saved before scale_map was a setting: a Glow was built with normflows' sigmoid map,
    a RealNVP with exp, and they load exactly as before."""
    flow = trained_like(options)
    path = save_normflows(flow, tmp_path / "old.pt", **options)
    payload = torch.load(path, weights_only=True)
    assert payload["settings"]["scale_map"] == built_with  # written explicitly from now on
    del payload["settings"]["scale_map"]
    torch.save(payload, path)
    model = rginspect.load(path)
    assert scale_maps(model.flow.multiscale) == {built_with}
    assert model.provenance["normflows"]["scale_map"] == built_with
    x = inputs(model)
    with torch.no_grad():
        z, logdet = model.encode(x)
        latents, logdet_nf = flow.inverse_and_log_det(x)
        close(logdet, logdet_nf)
        close(model.log_prob(x), flow.log_prob(x, None))
        close(model.decode(z)[0], flow.forward_and_log_det(latents)[0])
    # and a bare state dict without it, given the other settings as options
    bare = tmp_path / "bare.pt"
    flow.save(bare)
    with torch.no_grad():
        close(rginspect.load(bare, **options).log_prob(x), flow.log_prob(x, None))


def test_the_scale_map_changes_the_model():
    """sigmoid and sigmoid_inv share every weight's shape, so only the setting tells them apart:
    the same weights give another density under the other map."""
    flow = trained_like(GLOW)
    inverse = build_multiscale(**GLOW | dict(scale_map="sigmoid_inv"))
    inverse.load_state_dict(flow.state_dict())
    x = inputs(wrap_multiscale(flow, **GLOW))
    with torch.no_grad():
        difference = (flow.log_prob(x, None) - inverse.log_prob(x, None)).abs().max()
    assert float(difference) > 1.0


def test_actnorm_never_refits_to_a_batch():
    """A fresh flow's ActNorm would fit itself to the first batch encoded; wrapped, it keeps its
    stored weights, so encode is a pure function of its input."""
    torch.manual_seed(0)
    flow = build_multiscale(**GLOW)
    with pytest.warns(UserWarning, match="never saw data"):
        model = wrap_multiscale(flow, **GLOW)
    x = inputs(model)
    with torch.no_grad():
        first, _ = model.encode(x[:2])
        model.encode(x[2:] * 0.5)
        again, _ = model.encode(x[:2])
    assert torch.equal(first, again)


def test_settings_that_do_not_describe_the_flow_are_refused_at_saving(tmp_path):
    flow = trained_like(GLOW)
    with pytest.raises(ArchitectureMismatchError, match="save_normflows: the flow") as error:
        save_normflows(flow, tmp_path / "wrong.pt", **GLOW | {"hidden_channels": 16})
    assert "\n" not in str(error.value) and not (tmp_path / "wrong.pt").exists()


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("saved") / "glow.pt"
    return save_normflows(trained_like(GLOW), path, **GLOW)


def test_without_normflows_the_error_says_how_to_install(saved, monkeypatch):
    monkeypatch.setitem(sys.modules, "normflows", None)  # `import normflows` now fails
    with pytest.raises(MissingDependencyError, match=r"pip install 'rginspect\[normflows\]'") as e:
        rginspect.load(saved)
    assert "\n" not in str(e.value)


# -- damaged and hostile files ---------------------------------------------------------------------


class CreatesAFile:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (str(self.target), "w"))


def test_pickled_code_never_runs(tmp_path, saved):
    target = tmp_path / "pwned"
    payload = torch.load(saved, weights_only=True)
    payload["settings"] = CreatesAFile(target)
    torch.save(payload, tmp_path / "evil.pt")
    for format_name in (None, "normflows"):
        with pytest.raises(UntrustedCheckpointError, match="--trust-checkpoint"):
            rginspect.load(tmp_path / "evil.pt", format=format_name)
    assert not target.exists()


def _with(saved, tmp_path, change):
    payload = torch.load(saved, weights_only=True)
    change(payload)
    torch.save(payload, tmp_path / "changed.pt")
    return tmp_path / "changed.pt"


def _set(where, key, value):
    def change(payload):
        (payload if where is None else payload[where])[key] = value

    return change


@pytest.mark.parametrize(
    "change, error, message",
    [
        (_set("settings", "levels", "2"), CheckpointValueError, "levels = '2' is not an integer"),
        (_set("settings", "input_shape", [3, 8, 6]), CheckpointValueError, "does not fit 2 levels"),
        (_set("settings", "input_shape", [3, 8]), CheckpointValueError, "is not (C, H, W)"),
        (_set("settings", "scale", 1), CheckpointValueError, "scale = 1 is not true or false"),
        (_set("settings", "prior", "laplace"), CheckpointValueError, "prior = 'laplace' is not one"),
        (_set("settings", "scale_map", "tanh"), CheckpointValueError,
         "scale_map = 'tanh' is not one of exp, sigmoid, sigmoid_inv"),
        (_set("settings", "colour", 1), ArchitectureError, "not colour"),
        (_set(None, "settings", [1, 2]), CheckpointValueError, "settings is a list, not a dict"),
        (_set(None, "rginspect_normflows", 9), NotACheckpointError, "upgrade rginspect"),
        (_set("settings", "hidden_channels", 4096), ArchitectureMismatchError,
         "hidden_channels=4096, the coupling networks hold 8"),
        (_set("settings", "steps", 1000), ArchitectureMismatchError,
         "1000 steps on level q0.0, the weights hold 2"),
        (_set("settings", "levels", 3), ArchitectureMismatchError,
         "the settings make 3 levels, the weights hold base distributions q0.0, q0.1"),
        (_set("settings", "prior", "diag_gaussian"), ArchitectureMismatchError,
         "q0.0.loc (1, 24, 1, 1) != (1, 24, 2, 2)"),
        (_set("state_dict", "q0.1.loc_cc", torch.zeros(10, 6)), ArchitectureError,
         "class-conditional base distributions are not supported"),
        (_set("state_dict", "flows.1.0.flows.2.s", torch.full((1, 12, 1, 1), math.nan)),
         NonFiniteWeightsError, "flows.1.0.flows.2.s"),
        (_set("state_dict", "flows.0.1.flows.1.log_S", torch.zeros(5)), ArchitectureMismatchError,
         "flows.0.1.flows.1.log_S (5,) != (24,)"),
    ],
)  # fmt: skip
def test_damaged_files_are_one_line_errors(saved, tmp_path, change, error, message):
    with pytest.raises(error) as raised:
        rginspect.load(_with(saved, tmp_path, change))
    assert message in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 0.9, 0.999])
def test_truncated_files_are_refused(saved, tmp_path, fraction):
    data = saved.read_bytes()
    path = tmp_path / "cut.pt"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(RGInspectError) as raised:
        rginspect.load(path, format="normflows")
    assert type(raised.value) is not RGInspectError and "\n" not in str(raised.value)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(mutation=st.sampled_from(STATE_DICT_MUTATIONS), which=st.integers(0, 10**6))
def test_mutated_state_dicts_are_specific_errors(saved, tmp_path, mutation, which):
    def change(payload):
        mutate_state_dict(payload["state_dict"], mutation, which)

    with pytest.raises((ArchitectureMismatchError, NonFiniteWeightsError)) as raised:
        rginspect.load(_with(saved, tmp_path, change))
    assert "\n" not in str(raised.value)
