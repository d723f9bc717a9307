"""The policy runtime: `XWAMPolicy` (runtime), its settings, its inputs and outputs, and
how camera images become model views."""

from .runtime import PolicyRun, XWAMPolicy
from .settings import SETTINGS_NAME, PolicyConfigError, PolicySettings
from .types import ActionChunk, ImaginedFuture, Observation, ObservationError, PolicyOutput
from .views import ViewCrop, prepare_image

__all__ = [
    "ActionChunk",
    "ImaginedFuture",
    "Observation",
    "ObservationError",
    "PolicyConfigError",
    "PolicyOutput",
    "PolicyRun",
    "PolicySettings",
    "SETTINGS_NAME",
    "ViewCrop",
    "XWAMPolicy",
    "prepare_image",
]
