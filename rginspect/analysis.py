"""What an analysis plugin declares and what it returns: the types behind the `rginspect_analyses` hook.

An analysis is a small object: a name, a one-line description, typed parameters with defaults, the
requirements the engine checks before running it, `run(context) -> xarray.Dataset` and
`render(dataset) -> Section`. Rendering sees only the stored dataset, so reports re-render without
the model.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import matplotlib.figure
    import pandas
    import torch
    import xarray
    from tqdm import tqdm

    from .data import DataBatch
    from .model import RGFlowModel
    from .physics.samplers import HMCResult

# flow samples that decide whether the flow pins the field's global symmetry: its resultant
# length's noise is 1/√512 = 0.044 for a flow that covers the group
SYMMETRY_SAMPLES = 512
FIRST_BATCH = 8  # inputs in_batches times first, to measure the model's cost per input
# what each later batch aims to take: long enough that a paper-size model runs batches of ~10
# (batches of 2 cost 1.6× more per input), short enough that the progress bar moves
BATCH_SECONDS = 5.0
# a cap: a cheap model's activations stay within memory, and larger batches cost more per input
# (the bundled φ⁴ model encodes 4096 fields in 5.3 s of one core in batches of 256, 6.3–7.4 s
# in batches of 1024, which also held 12 GB)
MAX_BATCH = 256


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


@dataclass(frozen=True)
class Alignment:
    """Whether the flow pins the field's global symmetry (φ → −φ, or the O(2) phase), measured on
    its own samples, and the direction it pins. Where it does, the analyses of latent statistics
    turn every field to that direction before encoding (rginspect.physics.symmetry.align): the
    flow maps fields of other directions to atypical latents, spreading the global direction over
    the finest ones, which would otherwise read as residual information between latents."""

    applies: bool  # a field of 1 or 2 components, the symmetries rginspect knows
    resultant_length: float = float("nan")
    samples: int = 0
    p_value: float = float("nan")
    direction: float = float("nan")

    @property
    def pinned(self) -> bool:
        from .physics.symmetry import PINNED_P_VALUE

        return self.applies and self.p_value < PINNED_P_VALUE

    def describe(self) -> str:
        if not self.applies:
            return "no global symmetry to take out (not a field of 1 or 2 components)"
        numbers = (
            f"mean resultant length {self.resultant_length:.3f} of the global direction of "
            f"{self.samples} flow samples, against {self.samples**-0.5:.3f} for a flow that "
            "covers the group"
        )
        if self.pinned:
            return (
                f"the flow pins the global symmetry ({numbers}): each field was turned to the "
                f"flow's direction {self.direction:.3f} before encoding"
            )
        return f"the flow does not pin the global symmetry ({numbers}): fields encoded as drawn"

    def attrs(self) -> dict[str, Any]:
        """For a result's attributes (netCDF-safe)."""
        return {
            "alignment": self.describe(),
            "aligned": int(self.pinned),
            "flow_resultant_length": self.resultant_length,
            "flow_direction": self.direction,
        }


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
    show_progress: bool = True  # False under --quiet: progress() bars stay hidden
    inputs_limit: int | None = None  # --samples: how many model/HMC samples the run may draw
    inputs_requested: int = 0  # the most inputs one model_inputs/target_inputs call asked for
    inputs_used: int = 0  # how many that call got (fewer when the data or --samples run short)
    inputs_planned: int = 0  # the most inputs the run's analyses ask for (sizes shared draws)
    shared: dict[Any, Any] = field(default_factory=dict)  # one per run: draws analyses share

    def progress(
        self, iterable: Iterable[Any] | None = None, *, total: int | None = None, desc: str = ""
    ) -> tqdm:
        """A progress bar for work inside an analysis (samples, probes, steps), so a long
        analysis shows movement instead of a frozen run bar; hidden when the run is quiet.
        Iterate over it, or call `update(n)` on it with `total` given; it closes itself when
        iterated to the end, otherwise use it as a context manager."""
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, desc=desc, leave=False, disable=not self.show_progress)

    def in_batches(
        self, function: Callable[[torch.Tensor], tuple], x: torch.Tensor, *, desc: str = ""
    ) -> tuple:
        """`function(x)` for a per-input map, computed over batches of x sized to the model's cost:
        the first batch is small and timed, each next one is scaled to take about
        BATCH_SECONDS (at most twice the last, never fewer than the first). A small model runs in
        a few large batches, a paper-size one in batches that bound its memory and move the
        progress bar. Returns function's outputs, concatenated
        along the batch (outputs that are not tensors, such as a list per model, from the first
        batch)."""
        import torch

        from .device import synchronize

        if len(x) == 0:
            return tuple(function(x))
        outputs, start, size = [], 0, min(FIRST_BATCH, len(x))
        with self.progress(total=len(x), desc=desc) as bar:
            while start < len(x):
                began = time.perf_counter()
                outputs.append(function(x[start : start + size]))
                synchronize(self.device)  # a GPU returns before it has done the work
                seconds = max(time.perf_counter() - began, 1e-3)
                start += size
                bar.update(size)
                # never below the first batch: it fitted, and smaller ones cost more per input
                size = max(
                    FIRST_BATCH, min(int(size * BATCH_SECONDS / seconds), 2 * size, MAX_BATCH)
                )
        return tuple(
            torch.cat(parts) if isinstance(parts[0], torch.Tensor) else parts[0]
            for parts in zip(*outputs, strict=True)
        )

    def once(self, key: tuple, draw: Callable[[], Any]) -> Any:
        """draw(), computed once per run for `key` and given to every analysis that asks with the
        same key (flow samples of one count and seed, say); callers must not modify it."""
        if key not in self.shared:
            self.shared[key] = draw()
        return self.shared[key]

    def generator(self, offset: int = 0) -> torch.Generator:
        """A CPU generator seeded from the run seed, so the same seed gives the same numbers on
        every device: draw on it and move the numbers to the device (rginspect.device)."""
        import torch

        return torch.Generator().manual_seed(self.seed + offset)

    def model_inputs(
        self, n: int, *, dequantize: bool = False, offset: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor, str]:
        """Up to n inputs in model space, the log-det of the preprocessing (0 for fields), and
        where they came from: the run's data when there is some, else samples of the model.

        Images: the log-det is that of the map from [0, 1] image space, also for model samples
        (taken at their decoded image), so densities of data and samples are comparable.
        `dequantize` spreads each pixel uniformly over its quantisation bin (width
        1/data.levels); continuous data and model samples have no bins and get no noise."""
        import torch

        model, generator = self.model, self.generator(offset)
        device = model.prior.scale.device
        if self.data is None:
            x = model.sample(self._take(n, self.inputs_limit), generator=generator).to(device)
            if model.domain == "image":
                return x, model.preprocessing.log_det_at(x), "model samples"
            return x, torch.zeros(len(x), dtype=x.dtype, device=device), "model samples"
        values = self.data.images_or_fields[: self._take(n, len(self.data.images_or_fields))]
        values = torch.as_tensor(values, device=device).to(model.prior.scale.dtype)
        if model.domain == "image":
            levels = self.data.levels
            if dequantize and levels:
                noise = torch.rand(values.shape, generator=generator, device=generator.device)
                values = (values * (levels - 1) + noise.to(values)) / levels
            x, logdet = model.preprocess(values)
            return x, logdet, self.data.source
        return values, torch.zeros(len(values), dtype=values.dtype, device=device), self.data.source

    @property
    def targets_are_model_samples(self) -> bool:
        """True when target_inputs can only give the model's own samples (no data, no action):
        their latents are prior draws, so comparing them with the prior compares it with itself."""
        return self.data is None and self.model.action is None

    def _take(self, n: int, available: int | None) -> int:
        """How many of n asked-for inputs there are, recorded so the engine can say when short."""
        take = n if available is None else min(n, available)
        if n >= self.inputs_requested:
            self.inputs_requested, self.inputs_used = n, take
        return take

    def target_inputs(self, n: int, *, offset: int = 0) -> tuple[torch.Tensor, str]:
        """Up to n inputs from the distribution the model was trained to match, for analyses that
        must not use the model's own samples (their latents are independent by construction):
        the run's data, else HMC samples of the model's action, else (with a note) model samples."""
        model = self.model
        if self.data is None and model.action is not None:
            result = self.action_ensemble(n, offset=offset)
            x = result.samples.to(model.prior.scale)
            return x, f"HMC samples of the action (acceptance {result.acceptance_rate:.0%})"
        x, _, source = self.model_inputs(n, offset=offset)
        if self.data is None:
            source += " (latents of a model's own samples are independent by construction)"
        return x, source

    def action_ensemble(self, n: int, *, offset: int = 0) -> HMCResult:
        """The first n fields of the run's shared HMC draw of the model's action, with the chain
        structure its errors need (whole steps of every chain; see HMCResult.by_chain)."""
        n = self._take(n, self.inputs_limit)
        drawn = self._hmc_ensemble(n, offset)
        return replace(drawn, samples=drawn.samples[:n], energies=drawn.energies[:n])

    def target_chains(self, n: int, *, offset: int = 0) -> HMCResult | None:
        """The HMC chains target_inputs(n) come from, for errors and effective sample sizes that
        respect their autocorrelation; None for data and model samples (taken as independent)."""
        if self.data is None and self.model.action is not None:
            return self.action_ensemble(n, offset=offset)
        return None

    def target_latents(
        self, n: int, *, offset: int = 0, aligned: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, str]:
        """target_inputs(n) and their latents, encoded once per run and shared: the analyses of
        the latents' statistics (mutual_info, holography, goldstone) encode the same fields.
        `aligned`: each field first turned to the flow's global direction where the flow pins
        it (see alignment(); the same fields as drawn otherwise)."""
        x, source = self.target_inputs(n, offset=offset)
        aligned = aligned and self.alignment().pinned
        if aligned:
            x = self.aligned(x)
        key = ("target latents", len(x), offset, aligned)
        z = self.once(key, lambda: self.in_batches(self.model.encode, x, desc="encode")[0])
        return x, z, source

    def alignment(self) -> Alignment:
        """Whether the flow pins the global symmetry of its field, from SYMMETRY_SAMPLES of its
        own samples (independent draws, so its resultant's noise is 1/√n), once per run."""
        from .physics.symmetry import coverage_p_value, mean_direction, mean_resultant_length

        model = self.model
        if model.domain != "field" or model.data_shape[0] not in (1, 2):
            return Alignment(applies=False)

        def measure() -> Alignment:
            import torch

            with torch.no_grad():  # a draw of its own, apart from the analyses' flow samples
                samples = model.sample(SYMMETRY_SAMPLES, generator=self.generator(offset=7919))
            length = mean_resultant_length(samples)
            return Alignment(
                applies=True,
                resultant_length=length,
                samples=len(samples),
                p_value=coverage_p_value(length, len(samples), model.data_shape[0]),
                direction=mean_direction(samples),
            )

        return self.once(("alignment", SYMMETRY_SAMPLES), measure)

    def aligned(self, x: torch.Tensor) -> torch.Tensor:
        """Fields turned to the flow's global direction where it pins one; unchanged otherwise."""
        from .physics.symmetry import align

        alignment = self.alignment()
        return align(x, alignment.direction) if alignment.pinned else x

    def _hmc_ensemble(self, n: int, offset: int) -> HMCResult:
        """At least n HMC fields of the action, drawn once per run (per seed offset) and shared
        by every analysis: burn-in dominates the cost, and a draw of N fields begins with exactly
        the n fields a draw of n would give (the chains take the same steps on the same random
        numbers), so a prefix of the shared draw is what each analysis would have drawn itself.
        The first draw is as large as the run plans (`inputs_planned`), so one draw serves all."""
        from .physics import hmc

        key = ("hmc", self.seed + offset)
        drawn = self.shared.get(key)
        if drawn is None or len(drawn.samples) < n:
            drawn = hmc(
                self.model.action,
                max(n, self.inputs_planned),
                n_chains=64,
                n_burnin=300,
                generator=self.generator(offset),
                device=self.device,
                progress=self.show_progress,
            )
            self.shared[key] = drawn
        return drawn


class Analysis:
    """Base class for analyses. Subclasses set the class attributes and implement run and render."""

    name: str = ""
    description: str = ""
    version: str = "1"
    parameters: dict[str, Parameter] = {}
    domains: tuple[str, ...] = ("image", "field")
    needs_data: bool = False
    requires: tuple[str, ...] = ()
    needs_grad: bool = False  # run() gets autograd (the engine runs it under no_grad otherwise)

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

    # the figures this analysis draws from its stored dataset: name -> function(dataset, ax=None)
    # returning the axes it drew on (see rginspect.plotting); the first is the main one
    plots: dict[str, Callable[..., Any]] = {}

    def run(self, context: RunContext) -> xarray.Dataset:
        """Measure, on `context.model` with `context.parameters`, and return the results as a
        Dataset with named dims and coordinates (`units` and `long_name` where they mean
        something; an error of `x` named `x_error`). Draw random numbers from
        `context.generator()`, so the same seed gives the same numbers. An exception fails this
        analysis alone; its traceback is kept in its results group."""
        raise NotImplementedError

    def render(self, dataset: xarray.Dataset) -> Section:
        """The report section, from the stored `dataset` alone (reports are re-rendered without
        the model): figures (from `plots`), tables and short text."""
        raise NotImplementedError

    def plot(
        self, dataset: xarray.Dataset, name: str | None = None, *, ax: Any = None, **options: Any
    ) -> Any:
        """Draw one of `plots` (the first by default) from a stored dataset, onto `ax` (an Axes,
        or an array of them for a figure of several panels) or a new figure; returns the axes.
        `options` go to the figure function (traverse's `level=`, inpaint's `hole=`)."""
        if not self.plots:
            raise ValueError(f"the analysis {self.name!r} draws no figures")
        if name is None:
            name = next(iter(self.plots))
        if name not in self.plots:
            raise ValueError(
                f"the analysis {self.name!r} draws {', '.join(map(repr, self.plots))}, not {name!r}"
            )
        return self.plots[name](dataset, ax=ax, **options)
