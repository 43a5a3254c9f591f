from pathlib import Path

import numpy as np
import pytest

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
