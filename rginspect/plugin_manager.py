"""One pluggy PluginManager per process: built-in formats plus everything in the entry-point group."""

from __future__ import annotations

import functools
import re
import warnings
from typing import TYPE_CHECKING, Any

import pluggy

from . import hooks
from .errors import RGInspectError

if TYPE_CHECKING:
    from .analysis import Analysis

ENTRY_POINT_GROUP = "rginspect"


class PluginError(RGInspectError):
    """An installed plugin does not keep the plugin API (a misspelled hook, say)."""


VALID_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@functools.cache
def plugin_manager() -> pluggy.PluginManager:
    from .formats import native, neuralrg, normflows, python_module, rgflow

    manager = pluggy.PluginManager("rginspect")
    manager.add_hookspecs(hooks)
    for module in (native, rgflow, neuralrg, python_module, normflows):
        manager.register(module)
    manager.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    try:
        manager.check_pending()  # a @hookimpl whose name is no hook: a misspelling
    except pluggy.PluginValidationError as error:
        names = ", ".join(name for name in vars(hooks) if name.startswith("rginspect_"))
        raise PluginError(
            f"plugin {manager.get_name(error.plugin)!r}: {error}; the hooks are {names} "
            "(see rginspect/hooks.py)"
        ) from None
    return manager


def provided(hook_name: str) -> list[tuple[Any, str]]:
    """What every plugin returns from a list-valued hook, in registration order, each with the
    distribution it comes from ("name version", "rginspect (core)" for the built-in formats, or
    "registered in this session" for `rginspect.register`)."""
    manager = plugin_manager()
    distributions = {
        plugin: f"{dist.project_name} {dist.version}"
        for plugin, dist in manager.list_plugin_distinfo()
    }
    items = []
    for implementation in getattr(manager.hook, hook_name).get_hookimpls():
        registered = implementation.plugin_name.startswith("registered:")
        default = "registered in this session" if registered else "rginspect (core)"
        source = distributions.get(implementation.plugin, default)
        items += [(item, source) for item in implementation.function()]
    return items


def available_analyses() -> dict[str, Analysis]:
    """Every registered analysis by name (built-ins come through the same entry-point group)."""
    analyses: dict[str, Analysis] = {}
    for analysis, source in provided("rginspect_analyses"):
        if not VALID_NAME.fullmatch(str(analysis.name)):
            warnings.warn(
                f"analysis {analysis.name!r} from {source} is ignored: a name is letters, digits "
                "and underscores (it names a results group and -p options)",
                stacklevel=2,
            )
            continue
        analyses.setdefault(analysis.name, analysis)
    return analyses
