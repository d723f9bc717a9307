"""Where each token sits: the sequence `[video | actions | proprio]` and its RoPE positions."""

from __future__ import annotations

from dataclasses import dataclass

import torch

# The VAE packs 4 video frames into one latent frame: positions are in latent frames, so one
# video frame is 1/4 and one action step is 1/(4 * actions_per_frame).
VIDEO_FRAMES_PER_LATENT_FRAME = 4


@dataclass(frozen=True)
class TokenLayout:
    """Token counts of one forward pass; video tokens ordered (frame, view, row, column)."""

    grid: tuple[int, int, int, int]
    """Video token grid: latent frames (after temporal patching), views, rows, columns."""
    num_actions: int
    num_proprio: int

    @property
    def num_video(self) -> int:
        """Video tokens."""
        frames, views, rows, cols = self.grid
        return frames * views * rows * cols

    @property
    def video(self) -> slice:
        """Index of the video tokens in the sequence."""
        return slice(0, self.num_video)

    @property
    def actions(self) -> slice:
        """Index of the action tokens in the sequence."""
        return slice(self.num_video, self.num_video + self.num_actions)

    @property
    def proprio(self) -> slice:
        """Index of the proprio tokens in the sequence."""
        return slice(
            self.num_video + self.num_actions, self.num_video + self.num_actions + self.num_proprio
        )

    def positions(self, actions_per_frame: int, device: torch.device | None = None) -> torch.Tensor:
        """RoPE positions `[tokens, 3]` (time, row, column), float64.

        Video tokens sit at their (latent frame, row, column); views share positions (the
        view embedding tells them apart). Action step i sits at time
        `i / (4 * actions_per_frame)`, proprio step i at `i / 4`, both at row and column 0.
        """
        frames, views, rows, cols = self.grid
        t, v, h, w = torch.meshgrid(
            *(torch.arange(n, dtype=torch.float64, device=device) for n in self.grid),
            indexing="ij",
        )
        video = torch.stack((t, h, w), dim=-1).reshape(-1, 3)
        action_step = 1.0 / (VIDEO_FRAMES_PER_LATENT_FRAME * actions_per_frame)
        actions = _on_time_axis(self.num_actions, action_step, device)
        proprio = _on_time_axis(self.num_proprio, 1.0 / VIDEO_FRAMES_PER_LATENT_FRAME, device)
        return torch.cat((video, actions, proprio))


def _on_time_axis(count: int, step: float, device: torch.device | None) -> torch.Tensor:
    positions = torch.zeros(count, 3, dtype=torch.float64, device=device)
    positions[:, 0] = torch.arange(count, dtype=torch.float64, device=device) * step
    return positions
