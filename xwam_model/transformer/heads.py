"""Output heads: the modulated video/depth head and the latent un-patchifying."""

from __future__ import annotations

import math

import torch
from torch import nn

from .attention import LayerNorm32


class ModulatedHead(nn.Module):
    """LayerNorm, shift/scale from the token's time embedding, Linear to patch values."""

    def __init__(self, dim: int, out_channels: int, patch_size: tuple[int, int, int], eps: float):
        super().__init__()
        self.norm = LayerNorm32(dim, eps, elementwise_affine=False)
        self.head = nn.Linear(dim, out_channels * math.prod(patch_size))
        self.modulation = nn.Parameter(torch.randn(1, 2, dim) / dim**0.5)

    def reset_parameters(self) -> None:
        """Re-draw the learned modulation offsets (the Linear resets itself)."""
        with torch.no_grad():
            self.modulation.normal_(std=self.modulation.shape[-1] ** -0.5)

    def forward(self, x: torch.Tensor, time_embedding: torch.Tensor) -> torch.Tensor:
        """`x` `[B, N, D]`, `time_embedding` `[B, N, D]` -> `[B, N, out_channels * patch]`."""
        shift, scale = (self.modulation.float() + time_embedding.float()[:, :, None]).unbind(2)
        return self.head(self.norm(x).float() * (1 + scale) + shift)


def unpatchify(
    tokens: torch.Tensor,
    grid: tuple[int, int, int, int],
    patch_size: tuple[int, int, int],
    channels: int,
) -> torch.Tensor:
    """Token values `[B, T'*V*H'*W', patch * C]` to latents `[B, C, T, V, H, W]`.

    Each token holds its patch's values ordered (frame, row, column, channel), channels fastest.
    """
    frames, views, rows, cols = grid
    pt, ph, pw = patch_size
    x = tokens.reshape(tokens.shape[0], frames, views, rows, cols, pt, ph, pw, channels)
    x = x.permute(0, 8, 1, 5, 2, 3, 6, 4, 7)  # B, C, T', pt, V, H', ph, W', pw
    return x.reshape(tokens.shape[0], channels, frames * pt, views, rows * ph, cols * pw)
