"""The X-WAM transformer network."""

from .model import TransformerOutput, XWAMTransformer

__all__ = ["TransformerOutput", "XWAMTransformer"]
