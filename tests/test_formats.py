"""Checkpoint formats against values computed by the upstream code itself (tests/fixtures)."""

import math
import shutil
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import NEURALRG_RUN, RGFLOW_RUN, RGFLOW_STATE

import rginspect
from rginspect.errors import (
    ArchitectureMismatchError,
    CheckpointNotFoundError,
    CheckpointValueError,
    InvertibilityWarning,
    NonFiniteWeightsError,
    NotACheckpointError,
    UnknownFormatError,
    UntrustedCheckpointError,
)
from rginspect.formats import detect_format
from rginspect.model import RGFlowModel
from rginspect.nn.architectures import neuralrg_config, rgflow_config


def close(actual: torch.Tensor, expected: np.ndarray, rtol: float = 1e-5) -> None:
    """Float32 round-off relative to the largest value, as the fixture README asks."""
    actual = actual.detach().cpu().numpy()
    assert actual.shape == expected.shape
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=rtol * scale)


# -- RG-Flow ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rgflow_model() -> RGFlowModel:
    return rginspect.load(RGFLOW_STATE)


def test_rgflow_reproduces_upstream_values(rgflow_model, rgflow_reference):
    ref = rgflow_reference
    with torch.no_grad():
        z, ldj = rgflow_model.encode(torch.from_numpy(ref["x_logit"]))
        close(z, ref["z"])
        close(ldj, ref["ldj"])
        close(rgflow_model.log_prob(torch.from_numpy(ref["x_logit"])), ref["log_prob"])
        x, ldj_inverse = rgflow_model.decode(torch.from_numpy(ref["z_query"]))
        close(x, ref["x_from_z_query"])
        close(ldj_inverse, ref["ldj_inverse"])


def test_rgflow_preprocessing_matches_upstream_logit(rgflow_model, rgflow_reference):
    # The fixture's images01 were overwritten in place by upstream's logit_transform (y = 0.05 + 0.9x)
    # before being saved, so the true inputs are recovered by inverting that affine map.
    images01 = (rgflow_reference["images01"] - 0.05) / 0.9
    x, ldj = rgflow_model.preprocess(torch.from_numpy(images01))
    close(x, rgflow_reference["x_logit"])
    close(ldj, rgflow_reference["ldj_logit"])
    close(rgflow_model.postprocess(x), images01)


def test_rgflow_architecture_and_levels(rgflow_model):
    info = rgflow_model.info()
    assert info["format"] == "rgflow"
    assert info["config"]["nlayers"] == [2] * 8 and info["config"]["nhidden"] == [64] * 8
    assert rgflow_model.data_shape == (3, 32, 32) and rgflow_model.domain == "image"
    assert rgflow_model.latents_per_level() == [3 * 768, 3 * 192, 3 * 48, 3 * 16]
    top = np.zeros((32, 32), bool)
    top[::8, ::8] = True
    assert ((rgflow_model.latent_level[0] == 3) == top).all()
    assert rgflow_model.prior.kind == "laplace"


@pytest.mark.parametrize("where", ["file", "out_save", "run_folder"])
def test_rgflow_found_from_file_or_folders(where):
    path = {"file": RGFLOW_STATE, "out_save": RGFLOW_STATE.parent, "run_folder": RGFLOW_RUN}[where]
    assert detect_format(path).name == "rgflow"
    assert rginspect.load(path).info()["format"] == "rgflow"


def write_upstream_rgflow(model: RGFlowModel, path, prefix: str = "") -> None:
    """Export one of our rgflow models in the upstream key layout (independent of the loader)."""
    import re

    channels, kernel = model.config["channels"], model.config["kernel"]
    state = {}
    for key, value in model.state_dict().items():
        match = re.match(r"flow\.blocks\.(\d+)\.masks", key)
        if match:
            state[f"layers.{match[1]}.mask_left"] = value[0].reshape(channels, kernel, kernel)
            state[f"layers.{match[1]}.mask_right"] = value[1].reshape(channels, kernel, kernel)
            continue
        key = re.sub(r"flow\.blocks\.(\d+)\.s_nets", r"layers.\1.s_layers", key)
        state[re.sub(r"flow\.blocks\.(\d+)\.t_nets", r"layers.\1.t_layers", key)] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"flow": {prefix + k: v for k, v in state.items()}, "optimizer": {}}, path)


def randomized(model: RGFlowModel, seed: int = 0) -> RGFlowModel:
    """Fresh models have zero output scales (identity maps); give every weight a random value."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(0.3 * torch.randn(parameter.shape, generator=generator) + 0.1)
    return model


@pytest.mark.parametrize(
    "run_name, config, prefix",
    [
        ("gaussian_like_nl3,2,1_nr2_nm2_nh16", None, ""),  # not a run name: prior from the scale
        ("ks2_nl3,2,1_nr2_nm2_nh16", dict(channels=1, L=8, kernel=2, nlayers=[3, 2, 1],
                                          nresblocks=2, nmlp=2, nhidden=16, prior="gaussian"), ""),
        ("laplace_nl1_nr1_nm3_nh8", dict(channels=2, L=16, kernel=4, nlayers=1, nresblocks=1,
                                         nmlp=3, nhidden=8), "module.net."),
    ],
)  # fmt: skip
def test_rgflow_other_architectures_load_exactly(tmp_path, run_name, config, prefix):
    config = config or dict(channels=1, L=8, kernel=2, nlayers=[3, 2, 1], nresblocks=2, nmlp=2,
                            nhidden=16, prior="gaussian")  # fmt: skip
    original = randomized(RGFlowModel.from_config(rgflow_config(**config)))
    path = tmp_path / run_name / "out_save" / "7.state"
    write_upstream_rgflow(original, path, prefix)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = rginspect.load(tmp_path / run_name)
    assert loaded.config == original.config
    assert any(
        "assuming a gaussian prior" in str(w.message) for w in caught
    ) == run_name.startswith("gaussian_like")
    x = original.sample(3, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(loaded.log_prob(x), original.log_prob(x))


def test_rgflow_key_errors_name_every_key(tmp_path):
    state = torch.load(RGFLOW_STATE, weights_only=True)["flow"]
    state.pop("layers.3.t_layers.1.scale.scale")
    state.pop("layers.0.mask_right")
    state["layers.2.extra"] = torch.zeros(1)
    state["prior.scale"] = torch.zeros(2)
    path = tmp_path / "laplace_nl2_nr1_nm1_nh64" / "1.state"
    path.parent.mkdir()
    torch.save({"flow": state}, path)
    with pytest.raises(ArchitectureMismatchError) as error:
        rginspect.load(path)
    message = str(error.value)
    for key in ["layers.3.t_layers.1.scale.scale", "layers.0.mask_right", "layers.2.extra",
                "prior.scale (2,) != ()"]:  # fmt: skip
        assert key in message
    assert "\n" not in message


def test_rgflow_size_override_is_checked():
    with pytest.raises(ArchitectureMismatchError, match="L=32, not L=64"):
        rginspect.load(RGFLOW_STATE, L=64)


# -- NeuralRG --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def neuralrg_model() -> RGFlowModel:
    return rginspect.load(NEURALRG_RUN)


def test_neuralrg_reproduces_upstream_values(neuralrg_model, neuralrg_reference):
    ref = neuralrg_reference
    x = torch.from_numpy(ref["x"])
    with torch.no_grad():
        z, logdet = neuralrg_model.encode(x)
        close(z, ref["z"])
        close(logdet, ref["logdet"])
        close(neuralrg_model.log_prob(x), ref["logp"])
        close(neuralrg_model.prior.log_prob(z), ref["prior_logp_z"])
        x_inv, logdet_inv = neuralrg_model.decode(torch.from_numpy(ref["eps"]))
        close(x_inv, ref["x_inv"])
        close(logdet_inv, ref["logdet_inv"])
        symmetrized = torch.logsumexp(
            torch.stack([neuralrg_model.log_prob(x), neuralrg_model.log_prob(-x)]), 0
        ) - math.log(2)
        close(symmetrized, ref["logp_sym"])
    assert (neuralrg_model.latent_level[0] == ref["level_map"]).all()


def test_neuralrg_float64_copy(neuralrg_model, neuralrg_reference):
    ref = neuralrg_reference
    model = rginspect.load(NEURALRG_RUN, dtype=torch.float64)
    x = torch.from_numpy(ref["x"]).double()
    with torch.no_grad():
        z, logdet = model.encode(x)
        x_inv, logdet_inv = model.decode(torch.from_numpy(ref["eps"]).double())
        close(z, ref["z_f64"], rtol=1e-12)
        close(logdet, ref["logdet_f64"], rtol=1e-12)
        close(model.log_prob(x), ref["logp_f64"], rtol=1e-12)
        close(x_inv, ref["x_inv_f64"], rtol=1e-12)
        close(logdet_inv, ref["logdet_inv_f64"], rtol=1e-12)
        close(model.action(x), ref["energy_f64"], rtol=3e-6)  # upstream: float32 K⁻¹ inside


def test_neuralrg_records_its_ising_action(neuralrg_model, neuralrg_reference):
    info = neuralrg_model.info()
    assert info["action"]["name"] == "ising" and info["action"]["T"] == pytest.approx(2.269)
    assert info["provenance"]["symmetrized"] is True
    energy = neuralrg_model.action(torch.from_numpy(neuralrg_reference["x"]).double())
    close(energy, neuralrg_reference["energy"])  # upstream keeps K⁻¹ in float32


def test_neuralrg_plain_layout_without_parameters(tmp_path, neuralrg_model, neuralrg_reference):
    saving = next((NEURALRG_RUN / "savings").glob("*.saving"))
    state = torch.load(saving, weights_only=True)
    plain = {k.removeprefix("flow."): v for k, v in state.items() if k != "flow.prior.sigma"}
    path = tmp_path / "savings" / "plain_epoch3.saving"
    path.parent.mkdir()
    torch.save(plain, path)
    with pytest.warns(UserWarning, match="assuming nrepeat=1, L=8"):
        model = rginspect.load(path)
    assert model.action is None and model.info()["provenance"]["symmetrized"] is False
    x = torch.from_numpy(neuralrg_reference["x"])
    with torch.no_grad():
        torch.testing.assert_close(model.log_prob(x), neuralrg_model.log_prob(x))


def test_neuralrg_picks_the_last_epoch(tmp_path):
    shutil.copytree(NEURALRG_RUN, tmp_path / "run")
    savings = tmp_path / "run" / "savings"
    source = next(savings.glob("*.saving"))
    state = torch.load(source, weights_only=True)
    state["prior.sigma"] = state["flow.prior.sigma"] = torch.tensor([2.0])
    torch.save(state, savings / "SymmMERA_IsingSaving_epoch1000.saving")
    shutil.copy(source, savings / "SymmMERA_IsingSaving_epoch90.saving")
    assert float(rginspect.load(tmp_path / "run").prior.scale) == 2.0


# -- native ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_native_round_trip(tmp_path, neuralrg_model, suffix):
    neuralrg_model.provenance["training"] = {"command": "test", "steps": 3}
    path = rginspect.save(neuralrg_model.double(), tmp_path / f"model{suffix}")
    neuralrg_model.float()
    assert detect_format(path).name == "native"
    loaded = rginspect.load(path)
    assert loaded.config == neuralrg_model.config
    assert loaded.info()["action"] == neuralrg_model.info()["action"]
    assert loaded.provenance["training"] == {"command": "test", "steps": 3}
    assert next(loaded.parameters()).dtype == torch.float64
    for key, value in neuralrg_model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value.double())
    if suffix == ".pt":  # readable by plain torch without unpickling code
        assert torch.load(path, weights_only=True)["rginspect_format"] == 1


def test_native_rejects_architecture_options(tmp_path, neuralrg_model):
    path = rginspect.save(neuralrg_model, tmp_path / "model.pt")
    with pytest.raises(rginspect.errors.ArchitectureError, match="drop the options L"):
        rginspect.load(path, L=16)


# -- module ----------------------------------------------------------------------------------------
FACTORY_SOURCE = '''
import numpy as np
import torch
from torch import nn


class Shear(nn.Module):
    """x -> z with z1 = x1, z2 = x2 * exp(a) + b * x1: invertible with log-det a per entry."""

    def __init__(self, L, broken=False):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(0.3))
        self.b = nn.Parameter(torch.tensor(0.7))
        self.broken = broken

    def forward(self, x):
        z = torch.stack([x[:, 0], x[:, 1] * self.a.exp() + self.b * x[:, 0]], 1)
        return z, self.a.expand(x.shape[0]) * x[:, 1].numel() / x.shape[0]

    def inverse(self, z):
        x1 = (z[:, 1] - self.b * z[:, 0]) * (-self.a).exp() * (1.1 if self.broken else 1.0)
        return torch.stack([z[:, 0], x1], 1), -self.a.expand(z.shape[0]) * z[:, 1].numel() / z.shape[0]


def make(L=4, broken=False):
    level = np.zeros((2, L, L), int)
    level[:, ::2, ::2] = 1
    return Shear(L, broken), level
'''


@pytest.fixture
def factory_module(tmp_path, monkeypatch):
    (tmp_path / "my_flows.py").write_text(textwrap.dedent(FACTORY_SOURCE))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "my_flows:make"
    sys.modules.pop("my_flows", None)


def test_module_factory(factory_module, tmp_path):
    model = rginspect.load(factory_module, L=4)
    assert model.info()["format"] == "module" and model.data_shape == (2, 4, 4)
    assert model.latents_per_level() == [24, 8]
    x = torch.randn(5, 2, 4, 4, dtype=torch.float64)
    jacobian = torch.func.jacrev(lambda v: model.encode(v[None].float())[0][0].double())(x[0])
    expected = torch.linalg.slogdet(jacobian.reshape(32, 32)).logabsdet
    torch.testing.assert_close(
        model.encode(x[:1].float())[1].double(), expected[None], rtol=1e-5, atol=1e-5
    )
    # weights from a file, architecture from the factory
    weights = {"a": torch.tensor(-0.2), "b": torch.tensor(2.0)}
    torch.save(weights, tmp_path / "weights.pt")
    loaded = rginspect.load(tmp_path / "weights.pt", format="module", factory=factory_module, L=4)
    assert loaded.flow.module.a.item() == pytest.approx(-0.2)


def test_broken_inverse_warns_with_numbers(factory_module):
    with pytest.warns(InvertibilityWarning, match=r"max \|decode\(encode\(x\)\) - x\| = \d"):
        model = rginspect.load(factory_module, L=4, broken=True)
    assert model.load_check["max_reconstruction_error"] > 1e-2


# -- errors ----------------------------------------------------------------------------------------
class CreatesAFile:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (str(self.target), "w"))


@pytest.mark.parametrize("name", ["evil.pt", "laplace_nl2_nr1_nm1_nh64/out_save/9.state"])
def test_crafted_pickle_is_not_executed(tmp_path, name):
    target = tmp_path / "pwned"
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"flow": {"layers.0.mask_left": CreatesAFile(target)}, "rginspect_format": 1}, path)
    for format_name in [None, "native", "rgflow", "neuralrg"]:
        with pytest.raises(UntrustedCheckpointError, match="--trust-checkpoint"):
            rginspect.load(path, format=format_name)
    assert not target.exists()


def test_trusting_a_checkpoint_warns(tmp_path):
    path = tmp_path / "legacy.pt"
    torch.save({"flow": {}}, path, _use_new_zipfile_serialization=False)
    with (
        pytest.warns(UserWarning, match="pickled code in it will run"),
        pytest.raises(ArchitectureMismatchError),
    ):
        rginspect.load(path, format="rgflow", trust_checkpoint=True)


def test_error_cases(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    (tmp_path / "notes.state").write_text("not a checkpoint")
    good = RGFLOW_STATE.read_bytes()
    (tmp_path / "truncated.state").write_bytes(good[: len(good) // 2])
    torch.save({"weights": torch.ones(3)}, tmp_path / "other.pt")
    cases = [
        (tmp_path / "missing.pt", {}, CheckpointNotFoundError, "no such file"),
        (tmp_path / "empty", {}, UnknownFormatError, "known: native, rgflow, neuralrg, module"),
        (tmp_path / "empty", {"format": "rgflow"}, CheckpointNotFoundError, "no RG-Flow"),
        (tmp_path / "notes.state", {}, NotACheckpointError, "not a PyTorch checkpoint"),
        (tmp_path / "truncated.state", {}, NotACheckpointError, "truncated or corrupted"),
        (tmp_path / "other.pt", {}, UnknownFormatError, "pass format="),
        (tmp_path / "other.pt", {"format": "nope"}, UnknownFormatError, "known: native"),
    ]
    for path, options, error, message in cases:
        with pytest.raises(error, match=message) as raised:
            rginspect.load(path, **options)
        assert "\n" not in str(raised.value)


def test_non_finite_weights_are_refused(tmp_path):
    payload = torch.load(RGFLOW_STATE, weights_only=True)
    payload["flow"]["layers.5.s_layers.0.res_blocks.0.1.bias"][3] = float("nan")
    path = tmp_path / "laplace_nl2_nr1_nm1_nh64" / "61.state"
    path.parent.mkdir()
    torch.save(payload, path)
    with pytest.raises(NonFiniteWeightsError, match="layers.5.s_layers.0.res_blocks.0.1.bias"):
        rginspect.load(path)


# -- model contract --------------------------------------------------------------------------------
def test_structural_cone_contains_the_jacobian_support(neuralrg_model):
    x = neuralrg_model.sample(1, generator=torch.Generator().manual_seed(0))[0]
    jacobian = torch.func.jacrev(lambda v: neuralrg_model.decode(v[None])[0][0])(
        neuralrg_model.encode(x[None])[0][0]
    ).reshape(64, 64)  # (data entry, latent)
    support = (jacobian.abs() > 1e-7).numpy().T  # (latent, data entry)
    cone = neuralrg_model.cone_matrix().toarray()
    assert not (support & ~cone).any()
    assert support.sum() > 0.5 * cone.sum()  # the cone is tight, not everything
    top_latent = (0, 0, 0)
    assert neuralrg_model.latent_cone(top_latent).all()
    assert neuralrg_model.data_cone((0, 3, 5))[top_latent]


def test_logdet_matches_dense_jacobian(rgflow_model):
    small = RGFlowModel.from_config(rgflow_config(channels=1, L=8, kernel=2, nlayers=2, nhidden=8))
    randomized(small).double()
    x = torch.randn(1, 1, 8, 8, dtype=torch.float64)
    jacobian = torch.func.jacrev(lambda v: small.encode(v)[0])(x).reshape(64, 64)
    torch.testing.assert_close(small.encode(x)[1], torch.linalg.slogdet(jacobian).logabsdet[None])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(rgflow_model, rgflow_reference):
    model = rginspect.load(RGFLOW_STATE, device="cuda")
    with torch.no_grad():
        z, _ = model.encode(torch.from_numpy(rgflow_reference["x_logit"]).cuda())
    close(z.cpu(), rgflow_reference["z"])
    generator = torch.Generator().manual_seed(3)
    torch.testing.assert_close(
        model.sample(2, generator=generator).cpu(),
        rgflow_model.sample(2, generator=torch.Generator().manual_seed(3)),
        rtol=1e-4,
        atol=1e-4,
    )


def test_neuralrg_config_round_trips_through_builder():
    model = RGFlowModel.from_config(neuralrg_config(channels=2, L=8, nlayers=2, nmlp=1, nhidden=4))
    assert model.latents_per_level() == [96, 24, 8]


# -- values read besides the weights ---------------------------------------------------------------
PHI4 = Path(rginspect.__file__).parent / "assets" / "phi4_L16.pt"


def _native_with(tmp_path, where: tuple, value):
    checkpoint = torch.load(PHI4, weights_only=True)
    container = checkpoint
    for key in where[:-1]:
        container = container[key]
    container[where[-1]] = value
    torch.save(checkpoint, tmp_path / "model.pt")
    return tmp_path / "model.pt"


def _neuralrg_with(tmp_path, key: str, value):
    import h5py

    run = tmp_path / "run"
    shutil.copytree(NEURALRG_RUN / "savings", run / "savings")
    with (
        h5py.File(NEURALRG_RUN / "parameters.hdf5") as source,
        h5py.File(run / "parameters.hdf5", "w") as copy,
    ):
        for name in source:
            copy[name] = value if name == key else source[name][()]
    return run


def _rgflow_with(tmp_path, folder: str, key: str, value):
    payload = torch.load(RGFLOW_STATE, weights_only=True)
    payload["flow"][key] = value
    path = tmp_path / folder / "out_save" / "60.state"
    path.parent.mkdir(parents=True)
    torch.save(payload, path)
    return path


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda p: _native_with(p, ("config", "L"), "16"), CheckpointValueError,
         "config.L = '16' is not an integer"),
        (lambda p: _native_with(p, ("config", "nhidden"), [64] * 3), CheckpointValueError,
         "config.nhidden must list one number per sublayer (8)"),
        (lambda p: _native_with(p, ("config", "channels"), 3), ArchitectureMismatchError,
         "config makes flow.blocks.0.masks (4, 12)"),
        (lambda p: _native_with(p, ("action", "kappa"), math.nan), CheckpointValueError,
         "action: action parameter kappa must be a finite number"),
        (lambda p: _native_with(p, ("action", "L"), 8), CheckpointValueError,
         "the action is for 2 channel(s) on L=8"),
        (lambda p: _native_with(p, ("provenance",), {"loss": torch.ones(2)}), CheckpointValueError,
         "provenance is not a dict of plain values"),
        (lambda p: _native_with(p, ("rginspect_format",), "1"), CheckpointValueError,
         "rginspect_format = '1' is not an integer"),
        (lambda p: _neuralrg_with(p, "T", -1.0), CheckpointValueError, "T = -1.0 must be positive"),
        (lambda p: _neuralrg_with(p, "L", 6), CheckpointValueError, "L = 6 is not a power of two"),
        (lambda p: _neuralrg_with(p, "L", [8, 8]), CheckpointValueError,
         "L = array([8, 8]) is not an integer"),
        (lambda p: _rgflow_with(p, "renamed", "prior.scale", torch.tensor(-0.5)),
         CheckpointValueError, "prior.scale must be positive"),
        (lambda p: _rgflow_with(p, "laplace_nl2_nr1_nm1_nh64", "layers.2.mask_left",
                                torch.full((3, 4, 4), 0.5)),
         CheckpointValueError, "layers.2.mask_left is a mask but holds values other than 0 and 1"),
        (lambda p: _rgflow_with(p, "laplace_nl2_nr1_nm1_nh512", "prior.scale",
                                torch.tensor(2**-0.5)),
         ArchitectureMismatchError, "says nh512, the weights hold nhidden 64,64,64,64 per level"),
    ],
)  # fmt: skip
def test_values_read_besides_the_weights_name_their_key(tmp_path, make, error, message):
    with pytest.raises(error) as raised:
        rginspect.load(make(tmp_path))
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_weight_norm_cache_follows_every_change_of_the_weights(rgflow_model, rgflow_reference):
    """The normalised weights kept between no-grad calls are recomputed after an optimiser step,
    a dtype change and a state-dict load: decode then equals a fresh model with those weights."""
    import copy

    model = copy.deepcopy(rgflow_model)
    z = torch.randn(4, *model.data_shape, generator=torch.Generator().manual_seed(0)) * 0.5
    with torch.no_grad():
        before, _ = model.decode(z)  # fills the cache
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    model.decode(z)[0].pow(2).mean().backward()
    optimizer.step()
    fresh = copy.deepcopy(rgflow_model)
    fresh.load_state_dict(model.state_dict())
    with torch.no_grad():
        stepped, _ = model.decode(z)
        torch.testing.assert_close(stepped, fresh.decode(z)[0])
        assert (stepped - before).abs().max() > 1e-4  # the step moved the output
        model.double()
        torch.testing.assert_close(
            model.decode(z.double())[0], fresh.double().decode(z.double())[0]
        )
        model.load_state_dict(rgflow_model.state_dict())
        torch.testing.assert_close(model.decode(z.double())[0].float(), before, atol=1e-4, rtol=0)
