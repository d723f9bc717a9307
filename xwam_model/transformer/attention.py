"""Attention layers of a Wan block: 3-D-RoPE self-attention and text cross-attention."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .rope import RotaryTable, apply_rotary

KeysValues = tuple[torch.Tensor, torch.Tensor]
"""Keys and values of one self-attention call, `[batch, heads, tokens, head_dim]` each."""


class RMSNorm(nn.Module):
    """Root-mean-square normalisation over the last dimension, computed in float32."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def reset_parameters(self) -> None:
        """Unit gain."""
        nn.init.ones_(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return normed.type_as(x) * self.weight


class LayerNorm32(nn.LayerNorm):
    """LayerNorm computed in float32 whatever the input and parameter dtypes."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = None if self.weight is None else self.weight.float()
        bias = None if self.bias is None else self.bias.float()
        normed = F.layer_norm(x.float(), self.normalized_shape, weight, bias, self.eps)
        return normed.type_as(x)


def _qk_norm(dim: int, enabled: bool, eps: float) -> nn.Module:
    return RMSNorm(dim, eps) if enabled else nn.Identity()


class _AttentionProjections(nn.Module):
    """The q, k, v, o projections and q/k norms both attentions share (checkpoint names)."""

    def __init__(self, dim: int, num_heads: int, qk_norm: bool, eps: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.o = nn.Linear(dim, dim)
        self.norm_q = _qk_norm(dim, qk_norm, eps)
        self.norm_k = _qk_norm(dim, qk_norm, eps)


class SelfAttention(_AttentionProjections):
    """Multi-head self-attention with q/k RMSNorm and 3-D RoPE (torch SDPA).

    It can also attend to keys/values computed elsewhere (`shared`): the depth branch's
    tokens see their own keys/values and those of the main block beside them.
    """

    def forward(
        self, x: torch.Tensor, rope: RotaryTable, shared: KeysValues | None = None
    ) -> tuple[torch.Tensor, KeysValues]:
        """Attend `x` `[B, N, D]`; returns the output and this call's own keys/values."""
        heads = (self.num_heads, -1)
        q = apply_rotary(self.norm_q(self.q(x)).unflatten(-1, heads), rope).transpose(1, 2)
        k = apply_rotary(self.norm_k(self.k(x)).unflatten(-1, heads), rope).transpose(1, 2)
        v = self.v(x).unflatten(-1, heads).transpose(1, 2)
        keys, values = k, v
        if shared is not None:
            keys, values = torch.cat((k, shared[0]), dim=2), torch.cat((v, shared[1]), dim=2)
        out = F.scaled_dot_product_attention(q, keys.to(q.dtype), values.to(q.dtype))
        return self.o(out.transpose(1, 2).flatten(2)), (k, v)


class CrossAttention(_AttentionProjections):
    """Multi-head attention from the tokens to the embedded text, q/k RMSNorm, no RoPE."""

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Attend `x` `[B, N, D]` to `context` `[B, L, D]`."""
        heads = (self.num_heads, -1)
        q = self.norm_q(self.q(x)).unflatten(-1, heads).transpose(1, 2)
        k = self.norm_k(self.k(context)).unflatten(-1, heads).transpose(1, 2)
        v = self.v(context).unflatten(-1, heads).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k.to(q.dtype), v.to(q.dtype))
        return self.o(out.transpose(1, 2).flatten(2))
