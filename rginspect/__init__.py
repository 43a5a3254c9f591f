"""rginspect: open up trained renormalization-group flow models and show what they learned."""

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .api import analyze, register, write
from .formats import available_formats, load, save
from .hooks import hookimpl
from .model import RGFlowModel
from .report import inline as _inline  # noqa: F401  (registers `tree.rginspect` on DataTrees)


def bundled_checkpoint(name: str) -> Path:
    """The path of a checkpoint that ships with rginspect ("msds1_rgflow.pt", "msds1_glow.pt",
    "phi4_L16.pt"), wherever the package is installed."""
    path = Path(__file__).parent / "assets" / name
    if not path.is_file():
        shipped = sorted(p.name for p in path.parent.glob("*.pt"))
        raise FileNotFoundError(f"no bundled checkpoint {name!r}; rginspect ships {shipped}")
    return path


try:
    __version__ = version("rginspect")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"

__all__ = [
    "RGFlowModel",
    "__version__",
    "analyze",
    "available_formats",
    "bundled_checkpoint",
    "hookimpl",
    "load",
    "register",
    "save",
    "write",
]
