"""The training objective: flow matching with ANS noise levels, plus the depth loss.

A batch of clips becomes model inputs here: RGB frames and metric depth go through the frozen
VAE (depth as the paper does: metres -> [-1, 1] over the checkpoint's range -> the same VAE),
the instruction through the frozen text encoder, replaced by the empty prompt with
probability `text_dropout` (what classifier-free guidance needs at run time).

Losses (each a mean over the elements it counts): video, action and proprio velocity MSE with
the masks of `noise_batch` (clean conditioning and clean-action samples excluded), and the
depth branch's clean-latent MSE over the views that recorded depth.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..sampling.training import masked_mse, noise_batch, sample_noise_levels
from ..text import UNCONDITIONAL_PROMPT, TextEncoder
from ..vae import DepthRange, WanVAE


@dataclass
class LossWeights:
    """Weights of the four losses in the total."""

    video: float = 1.0
    action: float = 1.0
    proprio: float = 1.0
    depth: float = 1.0


@dataclass
class EncodedBatch:
    """A batch ready for the model: clean latents, actions, proprio, text, depth."""

    video: torch.Tensor  # [B, C, t, V, h, w]
    actions: torch.Tensor  # [B, Na, A]
    proprio: torch.Tensor  # [B, T, P]
    context: torch.Tensor  # [B, L, text_dim]
    depth: torch.Tensor | None  # [B, C, t, V, h, w] or None when no view recorded depth
    depth_valid: torch.Tensor  # [B, V] bool


def pixels_to_video(frames: torch.Tensor) -> torch.Tensor:
    """uint8 `[B, T, V, H, W, 3]` -> float `[B, 3, T, V, H, W]` in [-1, 1] (on its device)."""
    return frames.permute(0, 5, 1, 2, 3, 4).float() / 127.5 - 1.0


def encode_batch(
    batch: dict,
    vae: WanVAE,
    text_encoder: TextEncoder,
    depth_ranges: list[DepthRange],
    device: torch.device,
    *,
    text_dropout: float,
    generator: torch.Generator,
    latents: tuple[torch.Tensor, torch.Tensor | None] | None = None,
) -> EncodedBatch:
    """Encode one DataLoader batch (see the module docstring); `latents` are the batch's
    video and depth latents when they were encoded beforehand (`LatentCache`)."""
    depth_valid = batch["depth_valid"].to(device)
    depth = None
    if latents is not None:
        video, depth = latents
        if not bool(depth_valid.any()):
            depth = None
    else:
        video = vae.encode_video(pixels_to_video(batch["video"].to(vae.device, non_blocking=True)))
    if latents is None and bool(depth_valid.any()):
        ranges = depth_ranges[0] if len(depth_ranges) == 1 else depth_ranges
        far = max(r.far for r in depth_ranges)
        # No reading (NaN) is encoded as the far end of the range: beyond anything seen.
        depth = vae.encode_depth(batch["depth"].to(vae.device), ranges, nan_fill=far).to(device)
    drop = torch.rand(len(batch["instruction"]), generator=generator) < text_dropout
    prompts = [UNCONDITIONAL_PROMPT if d else p for p, d in zip(batch["instruction"], drop)]
    return EncodedBatch(
        video=video.to(device),
        actions=batch["actions"].to(device),
        proprio=batch["proprio"].to(device),
        context=text_encoder.encode(prompts).to(device),
        depth=depth,
        depth_valid=depth_valid,
    )


def flow_matching_losses(
    model: nn.Module,
    batch: EncodedBatch,
    *,
    generator: torch.Generator,
    shift: float,
    clean_action_ratio: float,
    run_depth: bool,
) -> dict[str, torch.Tensor]:
    """The four losses of one batch (scalars with gradients)."""
    size = batch.video.shape[0]
    device = batch.video.device
    levels = sample_noise_levels(
        size,
        shift=shift,
        clean_action_ratio=clean_action_ratio,
        generator=generator,
        device=device,
    )

    def noise(like: torch.Tensor) -> torch.Tensor:
        return torch.randn(like.shape, generator=generator).to(device)

    noised = noise_batch(
        levels,
        video=batch.video,
        actions=batch.actions,
        proprio=batch.proprio,
        noise_video=noise(batch.video),
        noise_actions=noise(batch.actions),
        noise_proprio=noise(batch.proprio),
    )
    output = model(**noised.model_inputs(), context=batch.context, run_depth=run_depth)
    losses = {
        "video": masked_mse(output.video, noised.video.target, noised.video.loss_mask),
        "action": masked_mse(output.actions, noised.actions.target, noised.actions.loss_mask),
        "proprio": masked_mse(output.proprio, noised.proprio.target, noised.proprio.loss_mask),
    }
    if output.depth is not None:
        if batch.depth is not None:
            mask = batch.depth_valid.to(output.depth)[:, None, None, :, None, None]
            losses["depth"] = masked_mse(output.depth, batch.depth, mask)
        else:
            # Keeps the depth branch in the graph, so DDP sees a gradient for every parameter.
            losses["depth"] = output.depth.sum() * 0.0
    return losses


def total_loss(losses: dict[str, torch.Tensor], weights: LossWeights) -> torch.Tensor:
    """The weighted sum of the losses."""
    return sum(getattr(weights, name) * value for name, value in losses.items())
