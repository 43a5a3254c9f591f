"""Every failure a user can cause has its own exception, with a one-line message that says what to do.

All derive from `RGInspectError`, so the CLI can turn any of them into a clean exit instead of a traceback.
"""


class RGInspectError(Exception):
    """Base class: a problem with the user's input or environment, reported as one line."""

    exit_code = 2


class CheckpointNotFoundError(RGInspectError, FileNotFoundError):
    """The path does not exist, or a folder holds no checkpoint we recognise."""


class NotACheckpointError(RGInspectError):
    """The file exists but is not a torch/safetensors file, or it is truncated or corrupted."""


class UntrustedCheckpointError(RGInspectError):
    """Loading would execute pickled code; the user has to opt in with --trust-checkpoint."""


class UnknownFormatError(RGInspectError):
    """No registered checkpoint format claims the file."""


class ArchitectureMismatchError(RGInspectError):
    """The weights do not fit the architecture: missing, unexpected or wrongly shaped keys."""


class NonFiniteWeightsError(RGInspectError):
    """A checkpoint tensor holds NaN or Inf."""


class CheckpointValueError(RGInspectError):
    """A value a checkpoint records beside its weights (a config entry, a hyper-parameter, a mask,
    the prior's scale, a run-folder name) has the wrong type or lies out of range."""


class ArchitectureError(RGInspectError):
    """An architecture cannot be built from the given settings (bad size, kernel, unknown option)."""


class MissingDependencyError(RGInspectError):
    """A format or feature needs an optional package that is not installed (an extra of rginspect)."""


class DataSpecError(RGInspectError):
    """A --data specification cannot be read or does not fit the model."""


class InvertibilityWarning(UserWarning):
    """decode(encode(x)) differs from x, or the two log-determinants do not cancel, after loading."""


class OutputError(RGInspectError):
    """Results or a report cannot be written: folder not writable, disk full."""

    exit_code = 3
