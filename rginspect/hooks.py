"""The whole rginspect plugin API, as pluggy hook specifications.

A plugin is any module or object with functions named like the specs below, decorated with
`@rginspect.hookimpl`. Third-party plugins are found through the `rginspect` entry-point group:

    [project.entry-points.rginspect]
    my_formats = "my_package.rginspect_plugin"

The built-in checkpoint formats are registered through these same hooks.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("rginspect")
hookimpl = pluggy.HookimplMarker("rginspect")


@hookspec
def rginspect_checkpoint_formats() -> list:
    """Return the checkpoint formats this plugin can read, as `rginspect.formats.CheckpointFormat`s.

    A format has a unique `name`, a one-line `description`, a cheap `sniff(path) -> bool` that must not
    unpickle anything, and `load(path, *, trust_checkpoint, **architecture) -> RGFlowModel`.
    `rginspect.load(path)` asks every format's `sniff` and loads with the first that claims the file;
    `rginspect.load(path, format=name)` skips sniffing.
    """


@hookspec
def rginspect_analyses() -> list:
    """Return the analyses this plugin provides, as instances of `rginspect.analysis.Analysis`.

    An analysis declares `name` (unique, used in `--plugins` and `-p name.param=value`),
    `description` (one line), `version`, `parameters` (name -> `Parameter(type, default, help)`),
    `domains` ("image", "field"), `needs_data` and `requires` (names of analyses whose datasets it
    reads from `context.results`). The engine runs `run(context) -> xarray.Dataset` in dependency
    order and stores the dataset; the report calls `render(dataset) -> Section` on stored results only.
    """
