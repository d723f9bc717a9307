"""How bags become clips: alignment tolerances, which bags, the validation split."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ActionSource = Literal["commanded", "measured"]


class SpecError(ValueError):
    """The model, robot and camera configurations, or the build options, do not fit."""


@dataclass(frozen=True)
class BuildOptions:
    """How bags become clips (see `alignment.py` for the alignment policy)."""

    action_source: ActionSource = "commanded"
    """Actions from the commanded motion (the controllers' command topics) or the measured."""
    image_tolerance: float = 0.05
    """Largest |image stamp - frame time| (s) for a frame to count as present."""
    joint_max_gap: float = 0.1
    """Largest spacing (s) of the two joint states a grid time is interpolated between."""
    clip_stride: int = 1
    """Frames between the starts of consecutive clips."""
    val_fraction: float = 0.1
    """Share of the episodes (the last recorded) kept for validation."""
    include_partial: bool = False
    """Also convert bags whose recording was cut short (recorder killed or interrupted)."""
    success_only: bool = False
    """Only convert episodes marked successful."""

    def __post_init__(self):
        if self.action_source not in ("commanded", "measured"):
            raise SpecError(
                f"action_source: expected commanded or measured, got {self.action_source!r}"
            )
        for key in ("image_tolerance", "joint_max_gap"):
            if getattr(self, key) <= 0:
                raise SpecError(f"{key}: expected a positive number of seconds")
        if self.clip_stride < 1:
            raise SpecError(f"clip_stride: expected at least 1, got {self.clip_stride}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise SpecError(f"val_fraction: expected a value in [0, 1), got {self.val_fraction}")
