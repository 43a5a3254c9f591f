"""What an analysis plugin declares and what it returns: the types behind the `rginspect_analyses` hook.

An analysis is a small object: a name, a one-line description, typed parameters with defaults, the
requirements the engine checks before running it, `run(context) -> xarray.Dataset` and
`render(dataset) -> Section`. Rendering sees only the stored dataset, so reports re-render without
the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import matplotlib.figure
    import pandas
    import torch
    import xarray

    from .data import DataBatch
    from .model import RGFlowModel


@dataclass(frozen=True)
class Parameter:
    """A typed analysis parameter, settable as `-p analysis.name=value` or from a TOML file."""

    type: type
    default: Any
    help: str = ""


@dataclass
class Figure:
    """A matplotlib figure (rendered inline as PNG) with a caption."""

    figure: matplotlib.figure.Figure
    caption: str = ""


@dataclass
class Table:
    """A small table, shown as HTML."""

    frame: pandas.DataFrame
    caption: str = ""


@dataclass
class Section:
    """One analysis' part of the report. `how_to_read` is the two-line guide under the title."""

    title: str
    how_to_read: str
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    text: str = ""


@dataclass
class RunContext:
    """Everything `run` may use: the model, the data, resolved parameters, a seed, earlier results."""

    model: RGFlowModel
    parameters: dict[str, Any]
    seed: int
    device: str = "cpu"
    data: DataBatch | None = None
    results: dict[str, xarray.Dataset] = field(default_factory=dict)
    out_dir: Path | None = None  # where the run writes; for files beside results.nc (e.g. GIFs)

    def generator(self, offset: int = 0) -> torch.Generator:
        """A CPU generator seeded from the run seed, so the same seed gives the same numbers."""
        import torch

        return torch.Generator().manual_seed(self.seed + offset)

    def model_inputs(
        self, n: int, *, dequantize: bool = False, offset: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor, str]:
        """Up to n inputs in model space, the log-det of the preprocessing (0 for fields), and
        where they came from: the run's data when there is some, else samples of the model."""
        import torch

        model, generator = self.model, self.generator(offset)
        device = model.prior.scale.device
        if self.data is None:
            x = model.sample(n, generator=generator).to(device)
            return x, torch.zeros(len(x), dtype=x.dtype, device=device), "model samples"
        values = torch.as_tensor(self.data.images_or_fields[:n], device=device)
        values = values.to(model.prior.scale.dtype)
        if model.domain == "image":
            x, logdet = model.preprocess(values, dequantize=dequantize, generator=generator)
            return x, logdet, self.data.source
        return values, torch.zeros(len(values), dtype=values.dtype, device=device), self.data.source

    def target_inputs(self, n: int, *, offset: int = 0) -> tuple[torch.Tensor, str]:
        """Up to n inputs from the distribution the model was trained to match, for analyses that
        must not use the model's own samples (their latents are independent by construction):
        the run's data, else HMC samples of the model's action, else (with a note) model samples."""
        model = self.model
        if self.data is None and model.action is not None:
            from .physics import hmc

            result = hmc(
                model.action, n, n_chains=64, n_burnin=300, generator=self.generator(offset)
            )
            x = result.samples.to(model.prior.scale)
            return x, f"HMC samples of the action (acceptance {result.acceptance_rate:.0%})"
        x, _, source = self.model_inputs(n, offset=offset)
        if self.data is None:
            source += " (latents of a model's own samples are independent by construction)"
        return x, source


class Analysis:
    """Base class for analyses. Subclasses set the class attributes and implement run and render."""

    name: str = ""
    description: str = ""
    version: str = "1"
    parameters: dict[str, Parameter] = {}
    domains: tuple[str, ...] = ("image", "field")
    needs_data: bool = False
    requires: tuple[str, ...] = ()

    def applies_to(self, model: RGFlowModel) -> str | None:
        """Why this analysis cannot run on `model`, or None when it can.

        The default checks `domains`; override it to ask for more (say, a two-component field).
        """
        if model.domain not in self.domains:
            return (
                f"it is for {' and '.join(self.domains)} models; "
                f"this model's domain is {model.domain!r}"
            )
        return None

    def memory_estimate(self, model: RGFlowModel, parameters: dict[str, Any]) -> int:
        """Rough peak memory in bytes of `run` with these parameters, so the engine can refuse
        before the OS kills the run (--max-memory). 0: no estimate (small analyses)."""
        return 0

    def run(self, context: RunContext) -> xarray.Dataset:
        raise NotImplementedError

    def render(self, dataset: xarray.Dataset) -> Section:
        raise NotImplementedError
