"""Flow-matching noise schedules with a shift, and the UniPC scheduler that walks them.

The reference's inference schedule for N steps: unshifted sigmas `linspace(0.999, 0, N+1)[:-1]`,
each shifted by `shift * s / (1 + (shift - 1) * s)`, then a final sigma 0; the model is given
`int(sigma * 1000)`. diffusers' own flow schedule (`flow_shift=5`, `set_timesteps(N)`) starts
from `linspace(1, 0.001, N)` instead and differs by up to 4e-3, so the sigmas are computed
here and handed to a scheduler built with `flow_shift=1` (which then leaves them untouched).
"""

from __future__ import annotations

import numpy as np
import torch
from diffusers import UniPCMultistepScheduler

NUM_TRAIN_TIMESTEPS = 1000
"""The model's timestep scale: sigma 1 is timestep 1000."""
DEFAULT_SHIFT = 5.0
"""X-WAM's shift, in training and inference."""
_FIRST_SIGMA = 0.999  # the reference starts one training step below pure noise


def shift_sigmas(sigmas: np.ndarray | torch.Tensor, shift: float = DEFAULT_SHIFT):
    """`shift * s / (1 + (shift - 1) * s)`: spends more of the steps at high noise for shift > 1."""
    if shift <= 0:
        raise ValueError(f"shift: expected a positive number, got {shift}")
    return shift * sigmas / (1 + (shift - 1) * sigmas)


def inference_sigmas(num_steps: int, shift: float = DEFAULT_SHIFT) -> np.ndarray:
    """The `num_steps` shifted sigmas of the reference's schedule, float64, without the final 0."""
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"num_steps: expected an integer >= 1, got {num_steps!r}")
    unshifted = np.linspace(_FIRST_SIGMA, 0.0, num_steps + 1, dtype=np.float64)[:-1]
    return shift_sigmas(unshifted, shift)


def make_scheduler(num_steps: int, shift: float = DEFAULT_SHIFT) -> UniPCMultistepScheduler:
    """A fresh flow-matching UniPC scheduler (order 2, bh2, lower order at the end), set to
    the shifted `num_steps`-step schedule; its `timesteps` are the model's timesteps and its
    `sigmas` (one more, ending at 0) the noise levels the sample sits at."""
    scheduler = UniPCMultistepScheduler(
        num_train_timesteps=NUM_TRAIN_TIMESTEPS,
        prediction_type="flow_prediction",
        use_flow_sigmas=True,
        flow_shift=1.0,  # the sigmas given below are already shifted
        solver_order=2,
        solver_type="bh2",
        lower_order_final=True,
    )
    # diffusers needs a numpy array here (a list raises a TypeError) and alters it in place.
    scheduler.set_timesteps(sigmas=inference_sigmas(num_steps, shift).copy())
    # Start at index 0 explicitly: diffusers otherwise finds the first step by looking up its
    # timestep, which picks the wrong index when a long schedule repeats an integer timestep.
    scheduler.set_begin_index(0)
    return scheduler


__all__ = [
    "DEFAULT_SHIFT",
    "NUM_TRAIN_TIMESTEPS",
    "inference_sigmas",
    "make_scheduler",
    "shift_sigmas",
]
