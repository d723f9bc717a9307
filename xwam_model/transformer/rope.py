"""3-D rotary position embedding (time, height, width) with fractional time positions.

Each attention head's dimensions are rotated in adjacent pairs: the first
`d - 4*(d//6)` dimensions by the time position, the next `2*(d//6)` by the height position,
the last `2*(d//6)` by the width position (the Wan layout). Positions are real numbers, so
action and proprio tokens can sit between two latent frames.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class RotaryTable(NamedTuple):
    """Cosines and sines of the rotation angles, `[tokens, head_dim / 2]` each, float32."""

    cos: torch.Tensor
    sin: torch.Tensor

    def narrow(self, start: int, length: int) -> RotaryTable:
        """The table of tokens `start .. start + length`."""
        return RotaryTable(self.cos.narrow(0, start, length), self.sin.narrow(0, start, length))


def rope_axis_dims(head_dim: int) -> tuple[int, int, int]:
    """Head dimensions rotated by time, height and width."""
    sixth = head_dim // 6
    return head_dim - 4 * sixth, 2 * sixth, 2 * sixth


def rotary_table(positions: torch.Tensor, head_dim: int, theta: float = 10000.0) -> RotaryTable:
    """Rotation table for `positions` `[tokens, 3]` (time, height, width)."""
    # Angles in float64: positions times frequencies near 1 must not lose the fractional part.
    positions = positions.to(torch.float64)
    angles = []
    for axis, axis_dim in enumerate(rope_axis_dims(head_dim)):
        exponents = torch.arange(0, axis_dim, 2, dtype=torch.float64, device=positions.device)
        inverse_frequencies = 1.0 / theta ** (exponents / axis_dim)
        angles.append(positions[:, axis, None] * inverse_frequencies)
    angle = torch.cat(angles, dim=-1)
    return RotaryTable(angle.cos().float(), angle.sin().float())


def apply_rotary(x: torch.Tensor, table: RotaryTable) -> torch.Tensor:
    """Rotate `x` `[batch, tokens, heads, head_dim]` by the table's angles, pair by pair."""
    real, imag = x.float().unflatten(-1, (-1, 2)).unbind(-1)
    cos, sin = table.cos[:, None, :], table.sin[:, None, :]
    rotated = torch.stack((real * cos - imag * sin, real * sin + imag * cos), dim=-1)
    return rotated.flatten(-2).type_as(x)
