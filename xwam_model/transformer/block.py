"""The Wan attention block, modulated per token by six vectors from its timestep."""

from __future__ import annotations

import torch
from torch import nn

from .attention import CrossAttention, KeysValues, LayerNorm32, SelfAttention
from .rope import RotaryTable


class WanAttentionBlock(nn.Module):
    """Self-attention, text cross-attention and a tanh-GELU FFN, each with a residual.

    The time modulation `[B, N, 6, D]` gives per token: shift, scale, gate of the
    self-attention input/output, then shift, scale, gate of the FFN.
    """

    def __init__(
        self,
        dim: int,
        ffn_dim: int,
        num_heads: int,
        qk_norm: bool,
        cross_attn_norm: bool,
        eps: float,
    ) -> None:
        super().__init__()
        self.norm1 = LayerNorm32(dim, eps, elementwise_affine=False)
        self.self_attn = SelfAttention(dim, num_heads, qk_norm, eps)
        self.norm3 = LayerNorm32(dim, eps) if cross_attn_norm else nn.Identity()
        self.cross_attn = CrossAttention(dim, num_heads, qk_norm, eps)
        self.norm2 = LayerNorm32(dim, eps, elementwise_affine=False)
        self.ffn = nn.Sequential(
            nn.Linear(dim, ffn_dim), nn.GELU(approximate="tanh"), nn.Linear(ffn_dim, dim)
        )
        self.modulation = nn.Parameter(torch.randn(1, 6, dim) / dim**0.5)

    def reset_parameters(self) -> None:
        """Re-draw the learned modulation offsets (the sub-layers reset themselves)."""
        with torch.no_grad():
            self.modulation.normal_(std=self.modulation.shape[-1] ** -0.5)

    def forward(
        self,
        x: torch.Tensor,
        time_modulation: torch.Tensor,
        rope: RotaryTable,
        context: torch.Tensor,
        shared: KeysValues | None = None,
    ) -> tuple[torch.Tensor, KeysValues]:
        """Update `x` `[B, N, D]`; also returns the self-attention's keys/values.

        `shared`: extra keys/values the self-attention attends to (the depth branch's view of
        the main block).
        """
        # Modulation and residual stream in float32, as Wan computes them.
        modulation = self.modulation.float() + time_modulation.float()
        shift_sa, scale_sa, gate_sa, shift_ff, scale_ff, gate_ff = modulation.unbind(2)
        attended, keys_values = self.self_attn(
            self.norm1(x).float() * (1 + scale_sa) + shift_sa, rope, shared
        )
        x = x + attended * gate_sa
        x = x + self.cross_attn(self.norm3(x), context)
        x = x + self.ffn(self.norm2(x).float() * (1 + scale_ff) + shift_ff) * gate_ff
        return x, keys_values
