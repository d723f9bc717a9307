"""Fine-tuning X-WAM (ROS-free): configuration, objective, loop, validation, checkpoints.

`TrainingConfig` holds every setting; `Trainer` runs the loop on one device or, launched by
torchrun, with DDP or FSDP2; `train()` is the one call. See `trainer.py` for the step.
The names are imported on first use, so the command line's parser loads without the model.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "TrainingConfig": ".config",
    "TrainingConfigError": ".config",
    "Trainer": ".trainer",
    "TrainingResult": ".trainer",
    "train": ".trainer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
