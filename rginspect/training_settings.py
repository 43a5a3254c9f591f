"""What a training run is given: conditioner sizes and optimisation, with each command's defaults.

Kept free of torch so that the command line can show the defaults without importing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TrainingSettings:
    """What `rginspect train image` and `train field` share: the conditioner sizes (one value,
    one per level or one per sublayer) and the optimisation."""

    nlayers: int | list[int] = 2
    nresblocks: int | list[int] = 1
    nmlp: int | list[int] = 1
    nhidden: int | list[int] = 64
    steps: int = 2000
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0
    device: str = "cpu"
    progress: bool = True

    def sizes(self) -> dict[str, int | list[int]]:
        return {key: getattr(self, key) for key in ("nlayers", "nresblocks", "nmlp", "nhidden")}

    def optimisation(self) -> dict[str, Any]:
        """The settings a checkpoint's provenance records and the trainers take."""
        return {key: getattr(self, key) for key in ("steps", "batch_size", "lr", "seed")}


IMAGE_TRAINING = TrainingSettings()
"""`rginspect train image`'s defaults."""

FIELD_TRAINING = TrainingSettings(batch_size=256, lr=3e-3, steps=1500)
"""`rginspect train field`'s defaults: larger batches than image training (the reverse-KL
gradient is noisy) and a higher rate; see tests/benchmarks/bench_field_training.py."""

GROW_FROM_L = 8
"""Field flows on larger lattices are first trained on this L, then grown (see `grown_model`)."""

# the field flow `train field` builds by default (rginspect.nn.architectures.rgflow_config)
FIELD_COUPLING_MASKS = "checkerboard+components"
FIELD_RADIAL_BINS = 16
FIELD_SPLINE_BINS = 4
FIELD_ANNEAL = 0.5  # share of the steps over which the action's weight rises from 0.2 to 1
# share of the steps spent on L = GROW_FROM_L before growing (a fifth beat half: see README)
FIELD_GROW_FRACTION = 0.2
