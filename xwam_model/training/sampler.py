"""The order clips are trained in: shuffled per epoch, sharded by rank, resumable mid-epoch.

Every rank draws the same permutation (seeded by the run's seed and the epoch) and takes every
`world_size`-th clip from its rank on, truncated so that all ranks take as many (collectives
need the same number of steps everywhere). A resumed run skips the clips already trained on.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class ShardedClipSampler(Sampler[int]):
    """Clip indices of one rank for one epoch (see the module docstring)."""

    def __init__(self, size: int, rank: int, world_size: int, seed: int, batch_size: int):
        per_rank = size // world_size
        if per_rank < batch_size:
            raise ValueError(
                f"the dataset has {size} clips: fewer than batch_size ({batch_size}) per rank "
                f"over {world_size} ranks"
            )
        self.size, self.rank, self.world_size = size, rank, world_size
        self.seed, self.batch_size = seed, batch_size
        self.batches_per_epoch = per_rank // batch_size
        self.epoch = 0
        self.skip_batches = 0

    def set_position(self, epoch: int, batches_done: int) -> None:
        """Start at batch `batches_done` of `epoch` (0 at the start of an epoch)."""
        self.epoch, self.skip_batches = epoch, batches_done

    def __len__(self) -> int:
        return (self.batches_per_epoch - self.skip_batches) * self.batch_size

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.size, generator=generator)
        mine = order[self.rank :: self.world_size][: self.batches_per_epoch * self.batch_size]
        return iter(mine[self.skip_batches * self.batch_size :].tolist())
