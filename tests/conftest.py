import math
from pathlib import Path

import numpy as np
import pytest
import torch

FIXTURES = Path(__file__).parent / "fixtures"
RGFLOW_RUN = FIXTURES / "rgflow" / "msds1" / "laplace_nl2_nr1_nm1_nh64"
RGFLOW_STATE = RGFLOW_RUN / "out_save" / "60.state"
NEURALRG_RUN = FIXTURES / "neuralrg" / "ising_L8"


@pytest.fixture(scope="session")
def rgflow_reference() -> dict[str, np.ndarray]:
    return dict(np.load(RGFLOW_RUN / "out_save" / "reference_60.npz"))


@pytest.fixture(scope="session")
def neuralrg_reference() -> dict[str, np.ndarray]:
    return dict(np.load(NEURALRG_RUN / "reference.npz"))


def untrained_phi4_checkpoints(folder: Path, kappas, L: int = 8) -> list[str]:
    """Native φ⁴ checkpoints of fresh RG-Flow field models, one per κ: sweeps need many models."""
    import rginspect
    from rginspect.model import RGFlowModel
    from rginspect.nn.architectures import rgflow_config
    from rginspect.physics import Phi4Action

    paths = []
    for kappa in kappas:
        config = rgflow_config(channels=2, L=L, kernel=2, prior="gaussian", domain="field")
        model = RGFlowModel.from_config(config, action=Phi4Action(L, kappa, 1.0))
        paths.append(str(rginspect.save(model, folder / f"phi4_k{kappa}.pt")))
    return paths


def affine_image_flow(channels=3, height=4, width=8, a=2.0, b=0.5, prior="gaussian"):
    """A module-format factory (`rginspect.load("conftest:affine_image_flow")`): a non-square
    (C, H, W) image model, z = a·x + b entry by entry, so its density is known in closed form,
    with three RG levels on a 4×4 / 2×2 / 1×1 pattern and any prior."""
    import torch

    class Affine(torch.nn.Module):
        def encode(self, x):
            return a * x + b, torch.full((len(x),), x[0].numel() * math.log(a), dtype=x.dtype)

        def decode(self, z):
            return (z - b) / a, torch.full((len(z),), -z[0].numel() * math.log(a), dtype=z.dtype)

    row, col = np.indices((height, width))
    coarse = (row % 4 == 0) & (col % 4 == 0)
    level = np.where(coarse, 2, np.where((row % 2 == 0) & (col % 2 == 0), 1, 0))
    return {
        "flow": Affine(),
        "latent_level": np.broadcast_to(level, (channels, height, width)).copy(),
        "prior": prior,
        "domain": "image",
    }


STATE_DICT_MUTATIONS = ("remove", "rename", "reshape", "int", "complex", "bool", "nan", "inf")


def mutate_state_dict(state: dict[str, torch.Tensor], mutation: str, which: int) -> str:
    """Damage one entry of `state` in place, the way a hostile or broken file would (an entry
    missing, renamed, reshaped, of the wrong dtype or non-finite); return its key."""
    key = sorted(state)[which % len(state)]
    tensor = state[key]
    if mutation == "remove":
        del state[key]
    elif mutation == "rename":
        state[key + "_renamed"] = state.pop(key)
    elif mutation == "reshape":
        state[key] = tensor.reshape(-1) if tensor.dim() != 1 else tensor.reshape(1, -1)
    elif mutation in ("int", "complex", "bool"):
        dtypes = {"int": torch.int32, "complex": torch.complex64, "bool": torch.bool}
        state[key] = tensor.to(dtypes[mutation])
    else:
        state[key] = tensor.float().fill_(float(mutation))
    return key
