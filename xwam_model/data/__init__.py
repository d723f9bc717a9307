"""Training data for X-WAM, readable without ROS: the dataset format, writer and clips.

`format` describes the folder layout (and why), `writer` writes it, `ClipDataset` streams
clips from it; `views` prepares camera images exactly as the policy does at run time.
"""

from .dataset import ClipDataset
from .format import DatasetFormatError, DatasetIndex, DatasetSpec, EpisodeEntry, read_index
from .writer import DatasetWriter, EpisodeArrays

__all__ = [
    "ClipDataset",
    "DatasetFormatError",
    "DatasetIndex",
    "DatasetSpec",
    "DatasetWriter",
    "EpisodeArrays",
    "EpisodeEntry",
    "read_index",
]
