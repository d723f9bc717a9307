"""X-WAM world action model, ROS-free: the transformer, its configuration and its loading."""

from .checkpoint import (
    BaseInitSummary,
    CheckpointError,
    PretrainedModel,
    StateDictMismatchError,
    load_pretrained,
    load_wan_base,
    load_xwam_checkpoint,
    save_pretrained,
)
from .configuration import ConfigError, XWAMConfig
from .transformer import TransformerOutput, XWAMTransformer

__all__ = [
    "BaseInitSummary",
    "CheckpointError",
    "ConfigError",
    "PretrainedModel",
    "StateDictMismatchError",
    "TransformerOutput",
    "XWAMConfig",
    "XWAMTransformer",
    "load_pretrained",
    "load_wan_base",
    "load_xwam_checkpoint",
    "save_pretrained",
]
