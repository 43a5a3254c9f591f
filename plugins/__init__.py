"""First-party rginspect analyses, installed as `rginspect_plugins` and registered like any plugin
through the `rginspect` entry-point group."""

from rginspect import hookimpl

from .correlation import Correlation
from .disentangle import Disentangle
from .free_energy import FreeEnergy
from .goldstone import Goldstone
from .holography import Holography
from .inpaint import Inpaint
from .likelihood import Likelihood
from .mix import Mix
from .mutual_info import MutualInfo
from .receptive import Receptive
from .summary import Summary
from .traverse import Traverse


@hookimpl
def rginspect_analyses() -> list:
    return [
        Summary(),
        Likelihood(),
        Receptive(),
        Traverse(),
        Mix(),
        Inpaint(),
        Disentangle(),
        Goldstone(),
        Correlation(),
        FreeEnergy(),
        MutualInfo(),
        Holography(),
    ]
