"""What likelihood measures besides the flow's own terms: the quantisation term of the inputs."""

from __future__ import annotations

from rginspect.analysis import RunContext

MODEL_SAMPLE_LEVELS = 256  # LogitTransform dequantises onto the 8-bit grid, as RG-Flow trains


def quantisation_levels(context: RunContext) -> int | None:
    """Intensity levels per channel of the inputs: the data's (None for continuous data and
    fields), or, for an image model's own samples, the grid its preprocessing dequantises onto."""
    if context.model.domain != "image":
        return None
    if context.data is None:
        return MODEL_SAMPLE_LEVELS
    return context.data.levels
