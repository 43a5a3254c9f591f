"""rginspect: open up trained renormalization-group flow models and show what they learned."""

from importlib.metadata import PackageNotFoundError, version

from .api import analyze, register, write
from .formats import available_formats, load, save
from .hooks import hookimpl
from .model import RGFlowModel
from .report import inline as _inline  # noqa: F401  (registers `tree.rginspect` on DataTrees)

try:
    __version__ = version("rginspect")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"

__all__ = [
    "RGFlowModel",
    "__version__",
    "analyze",
    "available_formats",
    "hookimpl",
    "load",
    "register",
    "save",
    "write",
]
