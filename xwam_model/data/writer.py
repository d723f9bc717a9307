"""Writing a dataset folder (the layout of `format.py`), all or nothing.

Episodes are written into `<output>.building/`, renamed to `<output>` once dataset.json is
complete: a build that fails or is killed never leaves something that looks like a dataset.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..normalization import Normalization
from .format import (
    DATASET_FILE,
    EPISODES_FOLDER,
    NORMALIZATION_FILE,
    REPORT_FILE,
    DatasetFormatError,
    DatasetIndex,
    DatasetSpec,
    EpisodeEntry,
)


@dataclass
class EpisodeArrays:
    """One episode's arrays (see `format.py` for shapes and units)."""

    rgb: np.ndarray
    proprio: np.ndarray
    actions: np.ndarray
    first_actions: np.ndarray
    depth: np.ndarray | None = None

    def check(self, spec: DatasetSpec, name: str) -> None:
        """Refuse arrays whose shapes or dtypes do not fit the spec."""
        frames = self.rgb.shape[0]
        steps = (frames - 1) * spec.actions_per_frame
        views = len(spec.view_names)
        expected = {
            "rgb": ((frames, views, spec.height, spec.width, 3), np.uint8),
            "proprio": ((frames, spec.proprio_dim), np.float32),
            "actions": ((steps, spec.action_dim), np.float32),
            "first_actions": ((steps, spec.action_dim), np.float32),
        }
        if self.depth is not None:
            expected["depth"] = ((frames, views, spec.height, spec.width), np.uint16)
        for key, (shape, dtype) in expected.items():
            array = getattr(self, key)
            if array.shape != shape or array.dtype != dtype:
                raise DatasetFormatError(
                    f"episode {name}: {key} is {array.dtype} {list(array.shape)}, expected "
                    f"{np.dtype(dtype)} {list(shape)}"
                )


class DatasetWriter:
    """Writes episodes, then the index; `finish()` makes the dataset appear at `output`."""

    def __init__(self, output: str | Path, spec: DatasetSpec, *, overwrite: bool = False):
        self.output = Path(output)
        self.spec = spec
        if self.output.exists() and any(self.output.iterdir()) and not overwrite:
            raise DatasetFormatError(
                f"{self.output} exists and is not empty; choose another folder or overwrite"
            )
        self.staging = self.output.with_name(self.output.name + ".building")
        if self.staging.exists():
            shutil.rmtree(self.staging)  # a build that died before finishing
        (self.staging / EPISODES_FOLDER).mkdir(parents=True)
        self.episodes: list[EpisodeEntry] = []

    def add_episode(self, entry: EpisodeEntry, arrays: EpisodeArrays) -> None:
        """Write one episode's arrays and remember its entry."""
        arrays.check(self.spec, entry.name)
        folder = self.staging / EPISODES_FOLDER / entry.name
        folder.mkdir()
        for key in ("rgb", "proprio", "actions", "first_actions", "depth"):
            array = getattr(arrays, key)
            if array is not None:
                np.save(folder / f"{key}.npy", np.ascontiguousarray(array))
        self.episodes.append(entry)

    def finish(self, normalization: Normalization, report: dict[str, Any]) -> DatasetIndex:
        """Write the index, statistics and report, and move the dataset into place."""
        index = DatasetIndex(self.spec, self.episodes, normalization.to_dict())
        _write_json(self.staging / DATASET_FILE, index.to_dict())
        _write_json(self.staging / NORMALIZATION_FILE, normalization.to_dict())
        _write_json(self.staging / REPORT_FILE, report)
        if self.output.exists():
            shutil.rmtree(self.output)
        self.staging.rename(self.output)
        return index

    def abort(self) -> None:
        """Remove what was written."""
        shutil.rmtree(self.staging, ignore_errors=True)


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")
