"""Lattice field theories that flows are trained on: actions, exact results, reference samplers."""

from rginspect.physics.actions import (
    ACTIONS,
    Action,
    IsingAction,
    Phi4Action,
    XYAction,
    build_action,
)
from rginspect.physics.exact import ising_log_z, ising_relaxation_log_z_offset
from rginspect.physics.samplers import (
    PARETO_K_UNRELIABLE,
    HMCResult,
    MetropolisResult,
    effective_sample_fraction,
    hmc,
    independence_metropolis,
    pareto_k,
)

__all__ = [
    "ACTIONS",
    "Action",
    "HMCResult",
    "IsingAction",
    "MetropolisResult",
    "PARETO_K_UNRELIABLE",
    "Phi4Action",
    "XYAction",
    "build_action",
    "effective_sample_fraction",
    "hmc",
    "independence_metropolis",
    "ising_log_z",
    "ising_relaxation_log_z_offset",
    "pareto_k",
]
