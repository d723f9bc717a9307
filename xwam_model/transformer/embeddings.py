"""Input embeddings: timesteps, video patches (with their view), text, actions and proprio."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def sinusoidal_embedding(timesteps: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of timesteps on the 0..1000 scale, cosine half first (Wan layout).

    `timesteps` of any shape gives `[*shape, dim]` float32.
    """
    half = dim // 2
    # float64: timesteps near 1000 times frequencies near 1 need the precision.
    position = timesteps.to(torch.float64)
    exponent = torch.arange(half, dtype=torch.float64, device=timesteps.device) / half
    angle = position[..., None] * torch.pow(10000.0, -exponent)
    return torch.cat((angle.cos(), angle.sin()), dim=-1).float()


class Float32Sequential(nn.Sequential):
    """A Sequential of Linear layers and activations that always computes in float32.

    The timestep embedding and the modulation vectors derived from it steer every block;
    they stay float32 under bfloat16 autocast and with bfloat16 weights.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            x = x.float()
            for layer in self:
                if isinstance(layer, nn.Linear):
                    bias = None if layer.bias is None else layer.bias.float()
                    x = F.linear(x, layer.weight.float(), bias)
                else:
                    x = layer(x)
        return x


def timestep_mlp(freq_dim: int, dim: int) -> Float32Sequential:
    """`time_embedding`: sinusoidal features to a `dim` vector per token."""
    return Float32Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))


def modulation_projection(dim: int, count: int = 6) -> Float32Sequential:
    """`time_projection`: a token's time embedding to its `count` modulation vectors."""
    return Float32Sequential(nn.SiLU(), nn.Linear(dim, count * dim))


def token_mlp(in_features: int, hidden: int, out_features: int) -> nn.Sequential:
    """Linear-GELU(tanh)-Linear: text, action and proprio encoders, action/proprio decoders."""
    return nn.Sequential(
        nn.Linear(in_features, hidden),
        nn.GELU(approximate="tanh"),
        nn.Linear(hidden, out_features),
    )


class VideoPatchEmbedding(nn.Conv3d):
    """Cuts each view's latent video into 3-D patches, one token per patch.

    Input `[B, C, T, V, H, W]`; output `[B, T' * V * H' * W', dim]`, tokens ordered
    (frame, view, row, column).
    """

    def __init__(self, in_channels: int, dim: int, patch_size: tuple[int, int, int]) -> None:
        super().__init__(in_channels, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        batch, channels, frames, views, height, width = video.shape
        per_view = video.permute(0, 3, 1, 2, 4, 5).reshape(
            batch * views, channels, frames, height, width
        )
        patches = super().forward(per_view).unflatten(0, (batch, views))  # [B, V, D, T', H', W']
        return patches.permute(0, 3, 1, 4, 5, 2).flatten(1, 4)

    def grid(self, video_shape: torch.Size | tuple[int, ...]) -> tuple[int, int, int, int]:
        """Token grid (frames, views, rows, columns) of a `[B, C, T, V, H, W]` video."""
        _, _, frames, views, height, width = video_shape
        pt, ph, pw = self.kernel_size
        if frames % pt or height % ph or width % pw:
            raise ValueError(
                f"video: frames, height and width {frames, height, width} must be multiples of "
                f"the patch size {self.kernel_size}"
            )
        return frames // pt, views, height // ph, width // pw
