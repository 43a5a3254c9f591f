"""One pluggy PluginManager per process: built-in formats plus everything in the entry-point group."""

from __future__ import annotations

import functools

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
