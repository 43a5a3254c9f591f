"""One pluggy PluginManager per process: built-in formats plus everything in the entry-point group."""

from __future__ import annotations

import functools
from typing import Any

import pluggy

from . import hooks

ENTRY_POINT_GROUP = "rginspect"


@functools.cache
def plugin_manager() -> pluggy.PluginManager:
    from .formats import native, neuralrg, python_module, rgflow

    manager = pluggy.PluginManager("rginspect")
    manager.add_hookspecs(hooks)
    for module in (native, rgflow, neuralrg, python_module):
        manager.register(module)
    manager.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    return manager


def provided(hook_name: str) -> list[tuple[Any, str]]:
    """What every plugin returns from a list-valued hook, in registration order, each with the
    distribution it comes from ("name version", or "rginspect (core)" for the built-in formats)."""
    manager = plugin_manager()
    distributions = {
        plugin: f"{dist.project_name} {dist.version}"
        for plugin, dist in manager.list_plugin_distinfo()
    }
    items = []
    for implementation in getattr(manager.hook, hook_name).get_hookimpls():
        source = distributions.get(implementation.plugin, "rginspect (core)")
        items += [(item, source) for item in implementation.function()]
    return items
