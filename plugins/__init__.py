"""First-party rginspect analyses, installed as `rginspect_plugins` and registered like any plugin
through the `rginspect` entry-point group."""

from rginspect import hookimpl

from .likelihood import Likelihood
from .summary import Summary


@hookimpl
def rginspect_analyses() -> list:
    return [Summary(), Likelihood()]
