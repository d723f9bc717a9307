"""Asynchronous Noise Sampling at inference: actions in a few passes, the video in many.

One pass is one model call over `[video | actions | proprio]`. The video walks its own
`video_steps`-step UniPC schedule; actions and proprio walk their own `action_steps`-step
schedule during the first `action_steps` passes and are then held, clean (timestep 0), while
the video keeps denoising. Latent frame 0 and proprio step 0 are the observation: timestep 0,
and put back after every scheduler step (the solver would otherwise move them).

Prefix-conditioned decoding: an `action_prefix` (the first d actions, known because the chunk
being executed commands them until the new chunk takes over) enters the same way: clean
tokens at timestep 0, put back after every step, so only the rest of the chunk is denoised
and it is denoised to continue them. A checkpoint learns this from training-time action
prefixes (`sampling.training.sample_noise_levels(max_action_prefix=...)`, after
arXiv 2512.05964's training-time real-time chunking).

`AsyncSampler` lets the caller drive this: `decode_actions()` returns the chunk as soon as the
action passes end; `imagine()` then runs the remaining video passes (or the caller drops the
sampler). `denoise()` runs it to the end in one call, for offline use and tests.

Depth: the depth branch is unilateral (the main branch never reads its tokens), so its
prediction at a pass depends only on that pass's inputs. Running it on the final pass alone
therefore gives the same final depth as running it on every pass (tested), for a fraction of
the cost; `depth_on_every_pass=True` is kept for checking exactly that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from ..transformer import XWAMTransformer
from .schedule import DEFAULT_SHIFT
from .unipc import FlowUniPC


@dataclass
class ActionDecode:
    """The first phase's result: denoised actions `[B, Na, action_dim]` and proprio
    `[B, Np, proprio_dim]` (step 0 is the observation), after `passes` model calls."""

    actions: torch.Tensor
    proprio: torch.Tensor
    passes: int


@dataclass
class SamplerResult:
    """State of a sampling run: video latents `[B, C, T, V, H, W]` (frame 0 the observation),
    actions, proprio, the depth branch's clean depth latents predicted at the last pass (None
    when that pass did not run the branch), and how many of the `total_passes` passes ran."""

    video: torch.Tensor
    actions: torch.Tensor
    proprio: torch.Tensor
    depth: torch.Tensor | None
    passes: int
    total_passes: int

    @property
    def complete(self) -> bool:
        """Whether every video pass ran (the imagined future is fully denoised)."""
        return self.passes == self.total_passes


class AsyncSampler:
    """Stepwise asynchronous sampler over one batch; each instance runs once.

    `cond_latents` `[B, C, T0, V, H, W]` and `cond_proprio` `[B, Np0, P]`: only latent frame 0
    and proprio step 0 are used. The noises set the shapes: `noise_video` `[B, C, T, V, H, W]`,
    `noise_actions` `[B, Na, A]`, `noise_proprio` `[B, Np, P]`. `context` `[B, L, text_dim]`,
    or `[2B, L, text_dim]` (conditional rows first) when `guidance > 0`. `action_prefix`
    `[B, d, A]` (normalised, d <= Na): the chunk's first d actions, kept clean (see the module
    docstring); None or d = 0: every action is denoised.
    """

    def __init__(
        self,
        model: XWAMTransformer,
        *,
        cond_latents: torch.Tensor,
        cond_proprio: torch.Tensor,
        context: torch.Tensor,
        noise_video: torch.Tensor,
        noise_actions: torch.Tensor,
        noise_proprio: torch.Tensor,
        video_steps: int,
        action_steps: int,
        shift: float = DEFAULT_SHIFT,
        guidance: float = 0.0,
        action_prefix: torch.Tensor | None = None,
    ) -> None:
        _check_steps(video_steps, action_steps)
        _check_shapes(cond_latents, cond_proprio, noise_video, noise_actions, noise_proprio)
        _check_prefix(action_prefix, noise_actions)
        self.model = model
        self.context = context
        self.guidance = guidance
        self.video_steps = video_steps
        self.action_steps = action_steps
        # The solvers' coefficients are computed on the host once per schedule, so a pass
        # never waits for the device (see `unipc`). Actions and proprio share a schedule but
        # not a solver state: one solver each.
        self._video_scheduler = FlowUniPC(video_steps, shift)
        self._action_scheduler = FlowUniPC(action_steps, shift)
        self._proprio_scheduler = FlowUniPC(action_steps, shift)
        self._first_frame = cond_latents[:, :, :1].to(noise_video)
        self._first_proprio = cond_proprio[:, :1].to(noise_proprio)
        self._prefix = None if action_prefix is None else action_prefix.to(noise_actions)
        self.video = self._restore_video(noise_video.clone())
        self.actions = self._restore_actions(noise_actions.clone())
        self.proprio = self._restore_proprio(noise_proprio.clone())
        self.depth: torch.Tensor | None = None
        self.passes = 0

    # ------------------------------------------------------------------ state

    @property
    def actions_ready(self) -> bool:
        """Whether the action passes are done (actions and proprio are final)."""
        return self.passes >= self.action_steps

    @property
    def finished(self) -> bool:
        """Whether every video pass ran."""
        return self.passes >= self.video_steps

    def result(self) -> SamplerResult:
        """The current state (complete or not)."""
        return SamplerResult(
            self.video, self.actions, self.proprio, self.depth, self.passes, self.video_steps
        )

    # ------------------------------------------------------------------ driving

    @torch.no_grad()
    def step(self, run_depth: bool = False) -> None:
        """Run one pass: one model call and one solver step per modality still denoising."""
        if self.finished:
            raise RuntimeError(f"all {self.video_steps} passes have run")
        index = self.passes
        denoising_actions = index < self.action_steps
        video_timestep = self._video_scheduler.timesteps[index]
        action_timestep = self._action_scheduler.timesteps[index] if denoising_actions else 0
        output = self.model(
            video=self.video,
            video_t=self._video_timesteps(video_timestep),
            context=self.context,
            actions=self.actions,
            actions_t=self._action_timesteps(action_timestep),
            proprio=self.proprio,
            proprio_t=self._token_timesteps(self.proprio, action_timestep, clean_first=True),
            run_depth=run_depth,
            guidance=self.guidance,
        )
        self.video = self._restore_video(self._video_scheduler.step(output.video, self.video))
        if denoising_actions:
            self.actions = self._restore_actions(
                self._action_scheduler.step(output.actions, self.actions)
            )
            self.proprio = self._restore_proprio(
                self._proprio_scheduler.step(output.proprio, self.proprio)
            )
        # Depth belongs to the pass that made it: a later pass without the branch clears it.
        self.depth = output.depth
        self.passes += 1

    def decode_actions(self, run_depth: bool = False) -> ActionDecode:
        """Run the action passes (the first `action_steps`); `run_depth` runs the depth branch
        on the last of them only. Returns at once if they already ran."""
        while not self.actions_ready:
            self.step(run_depth=run_depth and self.passes == self.action_steps - 1)
        return ActionDecode(self.actions, self.proprio, self.passes)

    def imagine(
        self,
        run_depth: bool = True,
        *,
        depth_on_every_pass: bool = False,
        should_stop: Callable[[], bool] | None = None,
    ) -> SamplerResult:
        """Run every remaining pass (the action passes too, if not yet run).

        `run_depth`: the depth branch runs on the final pass (or on every pass with
        `depth_on_every_pass`; same final depth, more compute). `should_stop` is asked before
        each pass; when it answers True the run stops there and the partial result comes
        back (`complete` False), so a due action decode is never delayed by more than a pass.
        """
        for _ in self.remaining_passes(run_depth, depth_on_every_pass=depth_on_every_pass):
            if should_stop is not None and should_stop():
                break
        return self.result()

    def remaining_passes(
        self, run_depth: bool = True, *, depth_on_every_pass: bool = False
    ) -> Iterator[int]:
        """Every remaining pass, one per iteration: yields the index of the pass about to run,
        then runs it when the caller asks for the next one (so a caller that stops iterating
        leaves that pass unrun). The depth rule is `imagine`'s. Lets a caller interleave other
        work, such as another run's action decode, between two passes: a sampler's state is
        its own."""
        while not self.finished:
            yield self.passes
            last = self.passes == self.video_steps - 1
            self.step(run_depth=run_depth and (last or depth_on_every_pass))

    # ------------------------------------------------------------------ helpers

    def _restore_video(self, video: torch.Tensor) -> torch.Tensor:
        video[:, :, :1] = self._first_frame
        return video

    def _restore_actions(self, actions: torch.Tensor) -> torch.Tensor:
        if self._prefix is not None:
            actions[:, : self._prefix.shape[1]] = self._prefix
        return actions

    def _action_timesteps(self, timestep: int) -> torch.Tensor:
        """Per action token `[B, Na]`: the schedule's timestep, 0 for the prefix."""
        timesteps = self._token_timesteps(self.actions, timestep, clean_first=False)
        if self._prefix is not None:
            timesteps[:, : self._prefix.shape[1]] = 0.0
        return timesteps

    def _restore_proprio(self, proprio: torch.Tensor) -> torch.Tensor:
        proprio[:, :1] = self._first_proprio
        return proprio

    def _video_timesteps(self, timestep: int) -> torch.Tensor:
        """Per latent frame `[B, T]`: the schedule's timestep, 0 for the observed frame 0."""
        batch, frames = self.video.shape[0], self.video.shape[2]
        timesteps = torch.full((batch, frames), float(timestep), device=self.video.device)
        timesteps[:, 0] = 0.0
        return timesteps

    @staticmethod
    def _token_timesteps(tokens: torch.Tensor, timestep: int, clean_first: bool) -> torch.Tensor:
        """Per token `[B, N]`; with `clean_first` token 0 (the observation) gets timestep 0."""
        timesteps = torch.full(tokens.shape[:2], float(timestep), device=tokens.device)
        if clean_first:
            timesteps[:, 0] = 0.0
        return timesteps


def denoise(
    model: XWAMTransformer,
    *,
    cond_latents: torch.Tensor,
    cond_proprio: torch.Tensor,
    context: torch.Tensor,
    noise_video: torch.Tensor,
    noise_actions: torch.Tensor,
    noise_proprio: torch.Tensor,
    video_steps: int,
    action_steps: int,
    shift: float = DEFAULT_SHIFT,
    run_depth: bool = True,
    stop_after_actions: bool = False,
    guidance: float = 0.0,
    depth_on_every_pass: bool = False,
    action_prefix: torch.Tensor | None = None,
) -> SamplerResult:
    """Run asynchronous sampling in one call (see `AsyncSampler` for the arguments).

    `stop_after_actions`: stop after the action passes, as a policy call does (`run_depth`
    then runs the branch on the last action pass). Otherwise every video pass runs and
    `depth` is the branch's prediction at the final pass.
    """
    sampler = AsyncSampler(
        model,
        cond_latents=cond_latents,
        cond_proprio=cond_proprio,
        context=context,
        noise_video=noise_video,
        noise_actions=noise_actions,
        noise_proprio=noise_proprio,
        video_steps=video_steps,
        action_steps=action_steps,
        shift=shift,
        guidance=guidance,
        action_prefix=action_prefix,
    )
    if stop_after_actions:
        sampler.decode_actions(run_depth=run_depth)
        return sampler.result()
    return sampler.imagine(run_depth, depth_on_every_pass=depth_on_every_pass)


def _check_steps(video_steps: int, action_steps: int) -> None:
    for name, value in (("video_steps", video_steps), ("action_steps", action_steps)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
    if action_steps > video_steps:
        # Actions are denoised during the first video passes; there are no passes beyond them.
        raise ValueError(
            f"action_steps: expected at most video_steps ({video_steps}), got {action_steps}"
        )


def _check_prefix(action_prefix: torch.Tensor | None, noise_actions: torch.Tensor) -> None:
    if action_prefix is None:
        return
    batch, steps, width = noise_actions.shape
    if (
        action_prefix.dim() != 3
        or action_prefix.shape[0] != batch
        or action_prefix.shape[2] != width
        or action_prefix.shape[1] > steps
    ):
        raise ValueError(
            f"action_prefix: expected [{batch}, d <= {steps}, {width}], "
            f"got {tuple(action_prefix.shape)}"
        )
    if not bool(torch.isfinite(action_prefix).all()):
        raise ValueError("action_prefix: not finite")


def _check_shapes(
    cond_latents: torch.Tensor,
    cond_proprio: torch.Tensor,
    noise_video: torch.Tensor,
    noise_actions: torch.Tensor,
    noise_proprio: torch.Tensor,
) -> None:
    if noise_video.dim() != 6:
        raise ValueError(
            f"noise_video: expected [B, C, T, V, H, W], got {tuple(noise_video.shape)}"
        )
    batch, channels, _, views, height, width = noise_video.shape
    expected_cond = (batch, channels, views, height, width)
    if cond_latents.dim() != 6 or tuple(cond_latents.shape[:2] + cond_latents.shape[3:]) != (
        expected_cond
    ):
        raise ValueError(
            f"cond_latents: expected [{batch}, {channels}, T0 >= 1, {views}, {height}, {width}] "
            f"(latent frame 0 is used), got {tuple(cond_latents.shape)}"
        )
    if noise_actions.dim() != 3 or noise_actions.shape[0] != batch:
        raise ValueError(
            f"noise_actions: expected [{batch}, Na, A], got {tuple(noise_actions.shape)}"
        )
    if noise_proprio.dim() != 3 or noise_proprio.shape[0] != batch:
        raise ValueError(
            f"noise_proprio: expected [{batch}, Np, P], got {tuple(noise_proprio.shape)}"
        )
    if (
        cond_proprio.dim() != 3
        or cond_proprio.shape[0] != batch
        or (cond_proprio.shape[2] != noise_proprio.shape[2])
    ):
        raise ValueError(
            f"cond_proprio: expected [{batch}, Np0 >= 1, {noise_proprio.shape[2]}] (step 0 is "
            f"used), got {tuple(cond_proprio.shape)}"
        )


__all__ = ["ActionDecode", "AsyncSampler", "SamplerResult", "denoise"]
