"""Noise levels for training and the asynchronous (ANS) sampler for inference.

- `schedule`: the shifted flow-matching sigmas and the UniPC scheduler that walks them;
- `training`: ANS noise levels, flow-matching noising and loss masks for the trainer;
- `inference`: `AsyncSampler` (the chunk first, then the imagined video) and `denoise`.
"""

from .inference import ActionDecode, AsyncSampler, SamplerResult, denoise
from .schedule import DEFAULT_SHIFT, inference_sigmas, make_scheduler, shift_sigmas
from .training import (
    COUPLINGS,
    NoisedBatch,
    NoisedModality,
    NoiseLevels,
    add_noise,
    masked_mse,
    noise_batch,
    sample_noise_levels,
)

__all__ = [
    "COUPLINGS",
    "DEFAULT_SHIFT",
    "ActionDecode",
    "AsyncSampler",
    "NoiseLevels",
    "NoisedBatch",
    "NoisedModality",
    "SamplerResult",
    "add_noise",
    "denoise",
    "inference_sigmas",
    "make_scheduler",
    "masked_mse",
    "noise_batch",
    "sample_noise_levels",
    "shift_sigmas",
]
