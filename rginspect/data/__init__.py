"""Data to push through a model: synthetic MSDS, sklearn digits, image folders and numpy arrays."""

from .digits import load_digits_images
from .msds import MSDSBatch, generate_msds
from .specs import DataBatch, DataSpec, batch_from_array, load_data, parse_data_spec

__all__ = [
    "DataBatch",
    "DataSpec",
    "MSDSBatch",
    "batch_from_array",
    "generate_msds",
    "load_data",
    "load_digits_images",
    "parse_data_spec",
]
