"""The Python API: analyse a model (in memory or in a file), write its results, register analyses.

`analyze` is the core that `rginspect run`, `sweep` and `compare` are built on: the same
preparation (`engine.prepare_run`) and execution (`engine.execute`), with the results kept in
memory instead of written after each analysis. So a notebook and the command line give the same
numbers for the same model, data, parameters and seed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import RGInspectError
from .hooks import hookimpl

if TYPE_CHECKING:
    import xarray as xr

    from .analysis import Analysis


def analyze(
    model: Any,
    analyses: str | Sequence[str | Analysis] = "all",
    *,
    data: Any = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    seed: int = 0,
    samples: int | None = None,
    device: str | None = None,
    timeout: float | None = None,
    max_memory: int | None = None,
    progress: bool = True,
    raise_errors: bool = False,
    format: str | None = None,
    trust_checkpoint: bool = False,
    **load_options: Any,
) -> xr.DataTree:
    """Run analyses on a model and return their results; nothing is written.

    Parameters
    ----------
    model
        An `RGFlowModel`, a normflows `MultiscaleFlow` (with its constructor settings as
        `load_options`), `(flow, latent_level)` or a module with encode/decode and
        `latent_level=...`, or the path of a checkpoint in any format (see `rginspect.load`).
    analyses
        Names of installed analyses ("summary,receptive", a list, or "all"), or `Analysis`
        objects (analyses defined in a notebook need no registration).
    data
        A data spec ("msds1:256", "npz:fields.npz", ...), an array or tensor of inputs
        ((n, C, L, L); images in [0, 1] or 0..255), or None: the data the checkpoint records it
        was trained on when rginspect can make them, else the model's own samples (and, for
        field models, its action's HMC ensemble).
    params
        Parameters per analysis: ``{"receptive": {"samples": 4}}``.
    seed
        Every random draw of the run follows from it.
    samples
        How many data inputs the run prepares (default: what its analyses ask for).
    device
        Where the analyses run ("cpu", "cuda"); a model in memory stays where it is by default.
    timeout, max_memory
        Per analysis: seconds before it is stopped, bytes its own estimate may not exceed.
    progress
        Show progress bars.
    raise_errors
        Raise the first analysis error (with its traceback) instead of recording it in the
        analysis' group (status "failed", attributes `error` and `traceback`).
    format, trust_checkpoint, **load_options
        For a path: the checkpoint format (default: detected), whether pickled code may run, and
        the loader's options (`L=`, `input_shape=`, `factory=`, ...).

    Returns
    -------
    xarray.DataTree
        One group per analysis (its Dataset, with provenance attributes), the model card in the
        group `model`, and the run's provenance on the root: the tree `rginspect run` writes to
        results.nc. `tree.rginspect.report()` shows the report in a notebook;
        `rginspect.write(tree, folder)` writes results.nc and report.html.

    Raises
    ------
    RGInspectError
        For a model, data, analysis name or parameter that cannot be used (one-line message).

    Examples
    --------
    >>> import rginspect
    >>> model = rginspect.load("rginspect/assets/phi4_L16.pt")
    >>> tree = rginspect.analyze(model, "summary", samples=64, progress=False)
    >>> tree["summary"].attrs["status"]
    'ok'
    """
    from .engine import RunSettings, execute, prepare_run
    from .results import ResultsStore

    settings = RunSettings(
        plugins=analyses,
        data=data,
        params={name: dict(values) for name, values in (params or {}).items()},
        seed=seed,
        device=device,
        samples=samples,
        trust_checkpoint=trust_checkpoint,
        progress=progress,
        timeout=timeout,
        max_memory=max_memory,
        format=format,
        load_options=load_options,
        raise_errors=raise_errors,
        history=_call_text(model, analyses, seed, params, data),
    )
    prepared = prepare_run(model, settings)
    store = ResultsStore(None)
    execute(prepared, settings, store)
    return store.tree()


def write(tree: xr.DataTree, out: str | Path) -> tuple[Path, Path]:
    """Write results (`analyze`'s tree, or one read back) as `out/results.nc` and
    `out/report.html`, each atomically; returns both paths."""
    from .report.build import report_from_results
    from .results import write_results

    out = Path(out)
    results = write_results(tree, out / "results.nc")
    return results, report_from_results(results, out / "report.html")


_REGISTERED: dict[str, object] = {}  # analysis name -> the plugin object `register` made for it


def register(*analyses: Analysis) -> None:
    """Make analyses defined in a script or notebook available by name (to `analyze`, and to
    analyses that `require` them) without packaging them. Registering a name again replaces the
    earlier registration (a notebook cell run twice); a name an installed plugin provides is
    refused."""
    from .analysis import Analysis
    from .plugin_manager import available_analyses, plugin_manager

    manager = plugin_manager()
    for analysis in analyses:
        if not isinstance(analysis, Analysis):
            raise RGInspectError(
                f"register takes Analysis objects, not {type(analysis).__name__}; for a module of "
                "hook implementations use an entry point (see the plugin guide)"
            )
        name = analysis.name
        if name in _REGISTERED:
            manager.unregister(_REGISTERED.pop(name))
        elif name in available_analyses():
            raise RGInspectError(
                f"an installed plugin already provides the analysis {name!r}: give yours "
                "another name"
            )
        plugin = _Registered(analysis)
        _REGISTERED[name] = plugin
        manager.register(plugin, name=f"{REGISTERED_PREFIX}{name}")


REGISTERED_PREFIX = "registered:"  # plugin names `register` gives, so listings can say so


class _Registered:
    """The plugin `register` makes for one analysis."""

    def __init__(self, analysis: Analysis) -> None:
        self.analysis = analysis

    @hookimpl
    def rginspect_analyses(self) -> list[Analysis]:
        return [self.analysis]


def _call_text(model: Any, analyses: Any, seed: int, params: Any, data: Any) -> str:
    """The call, as CF's `history` records it."""
    described = str(model) if isinstance(model, str | Path) else f"<{type(model).__name__}>"
    names = analyses if isinstance(analyses, str) else [getattr(a, "name", a) for a in analyses]
    given = (
        "" if data is None else f", data={data!r}" if isinstance(data, str) else ", data=<array>"
    )
    return f"rginspect.analyze({described}, {names!r}, seed={seed}, params={params!r}{given})"
