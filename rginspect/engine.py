"""Resolve analyses, order them by their dependencies, run each in isolation, store as they finish.

A failing analysis never stops the run: its error is recorded, the analyses that need it are
skipped, the others finish and are saved.
"""

from __future__ import annotations

import ast
import difflib
import json
import signal
import threading
import time
import tomllib
import traceback
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import xarray as xr

from . import plugin_manager
from .allocator import keep_freed_memory
from .analysis import Analysis, RunContext
from .device import available_memory, describe, full_precision, is_cuda, out_of_memory_advice
from .errors import RGInspectError
from .model import RGFlowModel

if TYPE_CHECKING:
    from .data import DataBatch
    from .report.build import BackgroundSections
    from .results import ResultsStore

DEFAULT_INPUTS = 256  # data inputs a run prepares when no selected analysis has `inputs`


class AnalysisSelectionError(RGInspectError):
    """Unknown analysis names or parameters, or analyses that cannot run on this model."""


@dataclass
class Outcome:
    """What happened to one analysis: ok, reused (from --resume), failed or skipped."""

    name: str
    status: str
    dataset: xr.Dataset | None = None
    message: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)


def select_analyses(
    requested: str | Iterable[str | Analysis],
    model: RGFlowModel,
    *,
    have_data: bool,
    strict: bool = True,
) -> list[Analysis]:
    """The requested analyses plus what they require, in dependency order.

    `requested` names installed analyses ("a,b" or a list) or gives Analysis objects (an analysis
    defined in a notebook runs without being registered). "all" means every installed analysis
    that applies to the model and has the data it needs. A named analysis that does not apply is
    an error, unless `strict` is False (sweeps over mixed models): then the run records it as
    skipped.
    """
    analyses = plugin_manager.available_analyses()
    items = [requested] if isinstance(requested, str | Analysis) else list(requested)
    given = {item.name: item for item in items if isinstance(item, Analysis)}
    analyses = {**analyses, **given}
    names = [
        part.strip()
        for item in items
        for part in ([item.name] if isinstance(item, Analysis) else str(item).split(","))
        if part.strip()
    ]
    if names == ["all"]:
        names = [
            name
            for name, analysis in analyses.items()
            if analysis.applies_to(model) is None and (have_data or not analysis.needs_data)
        ]
    for name in names:
        if name not in analyses:
            close = difflib.get_close_matches(name, analyses, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise AnalysisSelectionError(
                f"unknown analysis {name!r}{hint} (`rginspect plugins` lists them)"
            )
    ordered: list[Analysis] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if any(a.name == name for a in ordered):
            return
        if name in visiting:
            raise AnalysisSelectionError(
                f"analysis {name!r} depends on itself through its requires"
            )
        if name not in analyses:
            raise AnalysisSelectionError(f"an analysis requires {name!r}, which is not installed")
        visiting.add(name)
        for requirement in analyses[name].requires:
            visit(requirement)
        visiting.discard(name)
        ordered.append(analyses[name])

    for name in names:
        visit(name)
    for analysis in ordered:
        reason = analysis.applies_to(model)
        if reason is not None and strict:
            raise AnalysisSelectionError(f"analysis {analysis.name!r} cannot run here: {reason}")
    return ordered


@dataclass(frozen=True)
class RunConfig:
    """A TOML run configuration: `plugins` and `data` keys, a `[load]` table of loader options,
    and one `[analysis]` table of parameters each."""

    plugins: str | None = None
    data: str | None = None
    load: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)


CONFIG_KEYS = ("plugins", "data")  # the top-level keys a configuration file may set


def read_config(path: Path | None) -> RunConfig:
    """The run configuration in a TOML file (an empty one without a file)."""
    if path is None:
        return RunConfig()
    try:
        table = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise AnalysisSelectionError(f"cannot read {path}: {error}") from None
    top = {key: value for key, value in table.items() if not isinstance(value, dict)}
    for key, value in top.items():
        if key not in CONFIG_KEYS:
            raise AnalysisSelectionError(
                f"{path}: unknown key {key!r}; a configuration sets {' and '.join(CONFIG_KEYS)}, "
                "a [load] table and one [analysis] table of parameters each"
            )
        if not isinstance(value, str):
            raise AnalysisSelectionError(f"{path}: {key} must be a string, not {value!r}")
    tables = {key: value for key, value in table.items() if isinstance(value, dict)}
    return RunConfig(
        plugins=top.get("plugins"),
        data=top.get("data"),
        load=tables.pop("load", {}),
        parameters=tables,
    )


def parameter_settings(
    overrides: Iterable[str] = (),
    config_file: Path | None = None,
    params: dict[str, dict[str, Any]] | None = None,
) -> list[tuple[str, str, Any]]:
    """(analysis, parameter, value) in the order they apply: the TOML file's [analysis] tables,
    then `params` (Python), then -p "analysis.param=value" options (values read as literals)."""
    given = [
        (name, key, value)
        for source in (read_config(config_file).parameters, params or {})
        for name, values in source.items()
        for key, value in _parameter_table(name, values).items()
    ]
    for override in overrides:
        target, equals, text = override.partition("=")
        name, dot, key = target.partition(".")
        if not (equals and dot and name and key):
            raise AnalysisSelectionError(f"-p {override!r}: write it as analysis.parameter=value")
        given.append((name, key, literal_value(text)))
    return given


def _parameter_table(name: str, values: Any) -> dict[str, Any]:
    if not isinstance(values, dict):
        raise AnalysisSelectionError(
            f"parameters of {name!r} must be a table (a dict of parameter: value), not {values!r}"
        )
    return values


def resolve_parameters(
    analyses: list[Analysis], given: Iterable[tuple[str, str, Any]] = (), strict: bool = True
) -> dict[str, dict[str, Any]]:
    """Each analysis' parameters: its defaults, then the `given` settings (parameter_settings).
    Not strict (sweeps): settings for installed analyses that this run does not select are
    ignored. (--samples sizes the run's data, see inputs_needed; it sets no parameter.)"""
    by_name = {analysis.name: analysis for analysis in analyses}
    settings: dict[str, dict[str, Any]] = {
        name: {key: p.default for key, p in analysis.parameters.items()}
        for name, analysis in by_name.items()
    }
    for name, key, value in given:
        if name not in by_name and not strict and name in plugin_manager.available_analyses():
            continue  # a sweep's job that runs other analyses
        if name not in by_name:
            raise AnalysisSelectionError(
                f"parameter {name}.{key} is for {name!r}, which is not selected in this run"
            )
        declared = by_name[name].parameters
        if key not in declared:
            known = ", ".join(declared) or "none"
            raise AnalysisSelectionError(f"{name} has no parameter {key!r} (it has: {known})")
        settings[name][key] = _coerce(f"{name}.{key}", value, declared[key].type)
    return settings


def literal_value(text: str) -> Any:
    """A command-line value as the Python literal it spells, else the text itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _coerce(label: str, value: Any, kind: type) -> Any:
    if kind is bool and isinstance(value, str):
        if value.lower() in ("true", "yes", "1", "false", "no", "0"):
            return value.lower() in ("true", "yes", "1")
    try:
        if kind is bool and not isinstance(value, bool):
            raise TypeError
        if kind is float and isinstance(value, bool):
            raise TypeError
        return kind(value)
    except (TypeError, ValueError):
        raise AnalysisSelectionError(
            f"parameter {label} must be {kind.__name__}, not {value!r}"
        ) from None


class AnalysisTimeout(Exception):
    """An analysis ran past --timeout."""


def run_analysis(
    analysis: Analysis, context: RunContext, timeout: float | None = None
) -> xr.Dataset:
    """Run one analysis (stopped after `timeout` seconds; without autograd unless it declares
    `needs_grad`) and check that it kept its contract: a Dataset with at least one finite number
    when it holds numbers at all."""
    import torch

    with time_limit(timeout), torch.set_grad_enabled(analysis.needs_grad):
        dataset = analysis.run(context)
    if not isinstance(dataset, xr.Dataset):
        raise TypeError(f"returned {type(dataset).__name__}, not an xarray.Dataset")
    numbers = [v.values for v in dataset.data_vars.values() if v.dtype.kind in "fc"]
    if numbers and not any(np.isfinite(values).any() for values in numbers):
        raise ValueError("returned no finite number (all NaN/Inf): nothing to store")
    return dataset


@contextmanager
def time_limit(seconds: float | None):
    """Raise AnalysisTimeout in the main thread after `seconds` (SIGALRM; Unix, main thread only:
    elsewhere the limit is not enforced). Long single C calls finish before the alarm lands."""
    usable = (
        seconds is not None
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return

    def expire(signum, frame):
        raise AnalysisTimeout(f"ran past --timeout {seconds:g} s and was stopped")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def memory_refusal(
    analysis: Analysis,
    model: RGFlowModel,
    parameters: dict[str, Any],
    limit: int,
    device: str = "cpu",
) -> str | None:
    """Why an analysis should not start: its own estimate of its peak memory (the tensors it
    holds, which live on the run's device) exceeds the limit."""
    needed = analysis.memory_estimate(model, parameters)
    if needed <= limit:
        return None
    where = "GPU memory" if is_cuda(device) else "memory"
    advice = f"lower -p {analysis.name}.samples or analyse a smaller model"
    if is_cuda(device):
        advice += ", or run it with --device cpu (host memory)"
    return (
        f"needs about {needed / 2**30:.1f} GiB, more than the {limit / 2**30:.1f} GiB of "
        f"{where} allowed (--max-memory); {advice}"
    )


@dataclass
class RunSettings:
    """What a run is asked to do, for one model: `rginspect.analyze`'s arguments, and the
    command line's (`run`, `sweep`, `compare` build one per checkpoint)."""

    plugins: str | Sequence[str | Analysis] = "all"
    data: Any = None  # a data spec ("msds1:256"), an array of inputs, or None
    overrides: tuple[str, ...] = ()  # "analysis.param=value" (-p)
    params: dict[str, dict[str, Any]] | None = None  # {analysis: {param: value}} (Python)
    config_file: Path | None = None
    seed: int = 0
    device: str | None = "cpu"  # None: a model in memory stays where it is (files: the CPU)
    samples: int | None = None
    trust_checkpoint: bool = False
    resume: bool = False
    progress: bool = True
    strict: bool = True  # False: named analyses that do not apply to a model are skipped
    timeout: float | None = None  # seconds per analysis
    max_memory: int | None = None  # bytes per analysis; None: what the device has available
    bar_position: int | None = None  # progress bar line, when several runs share a terminal
    format: str | None = None  # checkpoint format (None: detect)
    load_options: dict[str, Any] = field(default_factory=dict)  # the loader's keyword options
    raise_errors: bool = False  # stop at the first failing analysis and raise its error
    history: str = ""  # the command or call that asked for the run (CF `history`)


@dataclass
class RunResult:
    out: Path
    results_path: Path
    report_path: Path
    outcomes: list[Outcome]

    @property
    def failed(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.status == "failed"]


@dataclass
class PreparedRun:
    """A model ready to analyse, with what the run will do to it and the keys that say what was
    analysed: the checkpoint file's hash, the model's content hash and the data's."""

    model: RGFlowModel
    source: str  # the checkpoint path, or what the in-memory model is
    analyses: list[Analysis]
    parameters: dict[str, dict[str, Any]]
    data: DataBatch | None
    data_label: str
    checkpoint_sha256: str
    model_sha256: str
    data_sha256: str


def prepare_run(model: Any, settings: RunSettings) -> PreparedRun:
    """Load (or adopt) the model, choose the analyses and their parameters, and make the data."""
    from .formats import as_model
    from .results import file_sha256

    is_path = isinstance(model, str | Path)
    loaded = as_model(
        model,
        format=settings.format,
        trust_checkpoint=settings.trust_checkpoint,
        device=settings.device,
        **settings.load_options,
    )
    if isinstance(settings.data, str | None):  # a spec: loaded once the analyses size it
        spec, data_label = run_data_spec(settings.data, loaded)
        batch = None
    else:
        spec, batch = None, array_data(settings.data, loaded, settings.samples)
        data_label = batch.source
    have_data = spec is not None or batch is not None or loaded.domain == "field"
    analyses = select_analyses(
        settings.plugins, loaded, have_data=have_data, strict=settings.strict
    )
    given = parameter_settings(settings.overrides, settings.config_file, settings.params)
    parameters = resolve_parameters(analyses, given, strict=settings.strict)
    if spec is not None:
        batch = load_run_data(
            spec,
            loaded,
            settings.samples or inputs_needed(parameters),
            settings.seed,
            settings.samples,
        )
    path = Path(str(model)) if is_path else None
    return PreparedRun(
        model=loaded,
        source=str(model) if is_path else f"in-memory {type(model).__name__}",
        analyses=analyses,
        parameters=parameters,
        data=batch,
        data_label=data_label,
        checkpoint_sha256=file_sha256(path) if path is not None and path.exists() else "",
        model_sha256=model_fingerprint(loaded, settings.format, settings.load_options),
        data_sha256=data_fingerprint(batch),
    )


def array_data(data: Any, model: RGFlowModel, samples: int | None) -> DataBatch:
    """An array or tensor of inputs given in Python as the run's data batch, checked against the
    model's shape and cut to `samples` when given."""
    from .data import batch_from_array

    batch = batch_from_array(data, domain=model.domain, source="inputs given to analyze")
    found = tuple(batch.images_or_fields.shape[1:])
    if found != tuple(model.data_shape):
        raise AnalysisSelectionError(
            f"the data have shape (n, {', '.join(map(str, found))}) per batch, the model takes "
            f"(n, {', '.join(map(str, model.data_shape))}): give inputs of the model's shape"
        )
    if samples is not None:
        batch = replace(batch, images_or_fields=batch.images_or_fields[:samples])
    return batch


def model_fingerprint(model: RGFlowModel, format: str | None, load_options: dict) -> str:
    """SHA-256 of what the analyses see of a model: every parameter and buffer, the latent-level
    map, the data shape and domain, the action, and how it was loaded (format, options, factory
    and its arguments). A model changed in memory, or a factory whose layout changed, gets a new
    fingerprint, so --resume recomputes instead of reusing a stale result."""
    import hashlib

    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    digest.update(np.ascontiguousarray(model.latent_level, dtype=np.int64).tobytes())
    described = {
        "data_shape": list(model.data_shape),
        "domain": model.domain,
        "action": model.action.config() if model.action is not None else None,
        "factory": model.provenance.get("factory"),
        "factory_arguments": model.provenance.get("factory_arguments"),
        "format": format,
        "load_options": load_options,
    }
    digest.update(json.dumps(described, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def data_fingerprint(batch: DataBatch | None) -> str:
    """SHA-256 of the inputs a run analyses ("" for model samples, which the seed fixes)."""
    import hashlib

    if batch is None:
        return ""
    digest = hashlib.sha256(np.ascontiguousarray(batch.images_or_fields).tobytes())
    if batch.labels is not None:
        digest.update(np.ascontiguousarray(batch.labels).tobytes())
    digest.update(batch.source.encode())
    return digest.hexdigest()


@full_precision()  # no TF32 on CUDA: the analyses' numbers are claimed to 1e-5
def execute(
    prepared: PreparedRun,
    settings: RunSettings,
    store: ResultsStore,
    sections: BackgroundSections | None = None,
    out: Path | None = None,
) -> list[Outcome]:
    """Run the prepared analyses in dependency order, each stored in `store` as it finishes (and
    its report section drawn in the background when `sections` is given). A failing analysis is
    recorded with its traceback and never stops the others, unless `settings.raise_errors`."""
    from tqdm.auto import tqdm

    from .results import provenance_attrs, root_attrs

    keep_freed_memory()  # in every process that runs analyses: CLI, Python API, Dask workers
    model = prepared.model
    # the device asked for, else the one the model sits on (an in-memory model stays where it is)
    device = str(settings.device) if settings.device is not None else str(model.prior.scale.device)
    store.set_root_attrs(
        **root_attrs(
            title=f"rginspect results: {Path(prepared.source).name}",
            history=settings.history or f"rginspect analysis of {prepared.source}",
            checkpoint_path=prepared.source,
            checkpoint_sha256=prepared.checkpoint_sha256,
            model_sha256=prepared.model_sha256,
            seed=settings.seed,
            data=prepared.data_label,
            data_sha256=prepared.data_sha256,
            device=describe(device),
        ),
        model_card=model.info(),
    )
    outcomes: list[Outcome] = []
    results: dict[str, xr.Dataset] = {}
    shared: dict[Any, Any] = {}  # draws that analyses share (RunContext.shared)
    planned = settings.samples or inputs_needed(prepared.parameters)
    bar = tqdm(
        prepared.analyses,
        desc=Path(prepared.source).name,
        disable=not settings.progress,
        unit="analysis",
        position=settings.bar_position,
    )
    for analysis in bar:
        bar.set_postfix_str(analysis.name)
        values = prepared.parameters[analysis.name]
        attrs = provenance_attrs(
            analysis=analysis.name,
            analysis_version=analysis.version,
            parameters=values,
            seed=settings.seed,
            checkpoint_path=prepared.source,
            checkpoint_sha256=prepared.checkpoint_sha256,
            model_sha256=prepared.model_sha256,
            data_sha256=prepared.data_sha256,
            device=device,
        )
        missing = [name for name in analysis.requires if name not in results]
        reason = analysis.applies_to(model)
        if missing or reason:
            message = (
                f"skipped: {reason}"
                if reason
                else f"skipped: needs {', '.join(missing)}, which did not finish"
            )
            store.record_failure(analysis.name, message, attrs | {"status": "skipped"})
            outcomes.append(Outcome(analysis.name, "skipped", message=message, parameters=values))
            continue
        if settings.resume:
            reused = store.reusable(analysis.name, attrs)
            if reused is not None:
                results[analysis.name] = reused
                outcomes.append(Outcome(analysis.name, "reused", reused, parameters=values))
                if sections is not None:
                    sections.submit(analysis.name, reused)
                continue
        context = RunContext(
            model,
            values,
            settings.seed,
            device,
            prepared.data,
            dict(results),
            out_dir=out,
            # bars inside analyses would cross those of the other runs sharing the terminal
            show_progress=settings.progress and settings.bar_position is None,
            inputs_limit=settings.samples,
            inputs_planned=planned,
            shared=shared,
        )
        limit = settings.max_memory or available_memory(device)
        started = time.perf_counter()
        try:
            refusal = memory_refusal(analysis, model, values, limit, device)
            if refusal:
                raise MemoryError(refusal)
            dataset = run_analysis(analysis, context, settings.timeout)
            if context.inputs_requested:
                dataset.attrs["inputs_requested"] = context.inputs_requested
                dataset.attrs["inputs_used"] = context.inputs_used
        except Exception as error:  # a plugin's failure is reported, never fatal to the run
            if settings.raise_errors:
                raise
            message = f"{type(error).__name__}: {error}".splitlines()[0]
            if isinstance(error, torch.cuda.OutOfMemoryError):
                torch.cuda.empty_cache()  # give the next analyses back what this one held
                message = out_of_memory_advice(device, analysis.name)
            attrs["elapsed_s"] = round(time.perf_counter() - started, 3)
            attrs["traceback"] = traceback.format_exc()
            store.record_failure(analysis.name, message, attrs)
            outcomes.append(Outcome(analysis.name, "failed", message=message, parameters=values))
            continue
        attrs["elapsed_s"] = round(time.perf_counter() - started, 3)  # wall time of run()
        store.write(analysis.name, dataset, attrs)
        if sections is not None:
            sections.submit(analysis.name, store.dataset(analysis.name))
        results[analysis.name] = dataset
        outcomes.append(Outcome(analysis.name, "ok", dataset, parameters=values))
    return outcomes


def run_checkpoint(checkpoint: Any, out: Path, settings: RunSettings) -> RunResult:
    """`rginspect run` for one checkpoint (or model): prepare, run the analyses storing each in
    out/results.nc as it finishes (its report section drawn in the background), then write
    out/report.html. The same preparation and execution as `rginspect.analyze`."""
    from .report.build import BackgroundSections, report_from_results
    from .results import ResultsStore

    plugin_manager.available_analyses()  # imported once, here, for the drawing process too
    with BackgroundSections() as sections:  # forked first, before torch starts its threads
        prepared = prepare_run(checkpoint, settings)
        store = ResultsStore(Path(out) / "results.nc")
        store.discard_stale_copies()
        outcomes = execute(prepared, settings, store, sections, out=Path(out))
        drawn = sections.finished(store.datasets())
        report_path = report_from_results(store.path, Path(out) / "report.html", drawn)
    return RunResult(Path(out), store.path, report_path, outcomes)


def folder_name(checkpoint: str | Path) -> str:
    """A run's folder name: the file's stem, a folder's name, or a factory's function name."""
    path = Path(checkpoint)
    name = path.name if path.is_dir() else path.stem
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "checkpoint"


def inputs_needed(parameters: dict[str, dict[str, Any]]) -> int:
    """How many data inputs a run prepares when neither --samples nor the spec (msds1:N) says:
    the most that any selected analysis asks for with its `inputs` parameter."""
    counts = [values["inputs"] for values in parameters.values() if "inputs" in values]
    return max(counts, default=DEFAULT_INPUTS)


def run_data_spec(spec: str | None, model: RGFlowModel) -> tuple[str | None, str]:
    """The data spec a run uses and how the report names it: --data when given, else the data the
    checkpoint says it was trained on when rginspect can make or find them, else none (image
    models then analyse their own samples, field models their samples and the action's)."""
    if spec == "model":
        return None, "model samples"
    if spec is not None:
        return spec, spec
    trained_on = training_data_spec(model)
    if trained_on is not None:
        return trained_on, f"{trained_on} (the checkpoint's training data)"
    return None, "model samples" if model.domain == "field" else "none (model samples)"


def training_data_spec(model: RGFlowModel) -> str | None:
    """A data spec for the data the checkpoint records it was trained on: rginspect's own
    checkpoints store their `--data`, RG-Flow runs live under saved_model/<dataset>/. The size
    (msds1:10000) is the training set's, not the analyses', so it is dropped."""
    from .data import parse_data_spec

    provenance = model.provenance
    recorded = (provenance.get("training") or {}).get("data") or provenance.get("dataset")
    if not isinstance(recorded, str):
        return None
    try:
        parsed = parse_data_spec(recorded)
    except RGInspectError:
        return None  # a dataset rginspect cannot make (celeba, cifar10...)
    if parsed.kind in ("msds1", "msds2"):
        return parsed.kind
    if parsed.kind in ("folder", "npz") and not Path(parsed.path).exists():
        return None
    return None if parsed.kind == "model" else recorded


def load_run_data(
    spec: str | None, model: RGFlowModel, n: int, seed: int, limit: int | None = None
):
    """The data batch fitted to the model, or None when analyses should use model samples.

    Generated data (msds1 without :N) get n inputs; stored data are kept whole, or cut to
    `limit` (--samples) when given."""
    from .data import load_data

    if spec is None or spec == "model":
        return None
    channels, size = model.data_shape[0], model.data_shape[1]
    batch = load_data(
        spec, channels=channels, size=size, n_default=n, seed=seed, domain=model.domain
    )
    if limit is None or len(batch.images_or_fields) <= limit:
        return batch
    labels = None if batch.labels is None else batch.labels[:limit]
    return replace(batch, images_or_fields=batch.images_or_fields[:limit], labels=labels)
