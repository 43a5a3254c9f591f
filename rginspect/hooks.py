"""The whole rginspect plugin API, as pluggy hook specifications.

A plugin is any module or object with functions named like the specs below, decorated with
`@rginspect.hookimpl`. Third-party plugins are found through the `rginspect` entry-point group:

    [project.entry-points.rginspect]
    my_analyses = "my_package.rginspect_plugin"

The built-in checkpoint formats and analyses are registered through these same hooks. A function
decorated with `@hookimpl` whose name matches no hook below (a misspelling) is refused when the
plugins are loaded, with the plugin and the name in the message. Analyses defined in a script or a
notebook need no packaging: pass them to `rginspect.analyze` or `rginspect.register` them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .analysis import Analysis
    from .formats.base import CheckpointFormat

hookspec = pluggy.HookspecMarker("rginspect")
hookimpl = pluggy.HookimplMarker("rginspect")


@hookspec
def rginspect_checkpoint_formats() -> list[CheckpointFormat]:
    """Return the checkpoint formats this plugin can read, as `rginspect.formats.CheckpointFormat`s.

    Called once per process, when rginspect first looks for formats; every plugin's list is kept,
    in registration order (built-ins first).

    A format has a unique `name`, a one-line `description`, a cheap `sniff(path) -> bool` that must
    not unpickle anything, and `load(path, *, trust_checkpoint, **options) -> RGFlowModel`, where
    `options` are the loader options a user passes to `rginspect.load(path, **options)` or as
    `--load KEY=VALUE`. `rginspect.load(path)` asks every format's `sniff` and loads with the first
    that claims the file; `rginspect.load(path, format=name)` skips sniffing. A loader raises an
    `rginspect.errors.RGInspectError` subclass with a one-line message for every way a file can be
    wrong, and reads pickles only through `rginspect.formats.base.read_torch_file`, which refuses
    pickled code unless `trust_checkpoint`.

    Example::

        @hookimpl
        def rginspect_checkpoint_formats():
            return [CheckpointFormat("myflow", "MyFlow runs", sniff=is_myflow, load=load_myflow)]
    """


@hookspec
def rginspect_analyses() -> list[Analysis]:
    """Return the analyses this plugin provides, as instances of `rginspect.analysis.Analysis`.

    Called whenever rginspect lists the installed analyses; a name provided twice keeps the first.

    An analysis declares `name` (unique, used in `--plugins` and `-p name.param=value`),
    `description` (one line), `version`, `parameters` (name -> `Parameter(type, default, help)`),
    `domains` ("image", "field"), `needs_data`, `requires` (names of analyses whose datasets it
    reads from `context.results`), `needs_grad` and `plots`. The engine runs
    `run(context) -> xarray.Dataset` in dependency order (without autograd unless `needs_grad`) and
    stores the dataset; the report calls `render(dataset) -> Section` on stored results only, and
    `tree.rginspect.plot(name, figure, ax=...)` draws each of `plots` onto the user's axes.

    Example::

        @hookimpl
        def rginspect_analyses():
            return [TopLevelSpread()]
    """
