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
