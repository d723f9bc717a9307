"""Processes, devices and model wrapping for one GPU, DDP or FSDP2 (launched by torchrun).

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; without them the run is a single process.
Backends: NCCL on GPUs, gloo on the CPU (so the distributed code paths run on a laptop).
FSDP2 (`fully_shard`) shards every transformer block (main and depth branch), then the rest.
"""

from __future__ import annotations

import functools
import os
import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..transformer import XWAMTransformer


@dataclass(frozen=True)
class Process:
    """This process's place in the run."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Whether this process logs, writes checkpoints and shows progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """Whether more than one process takes part."""
        return self.world_size > 1


def start(device: str = "auto") -> Process:
    """Join the process group torchrun set up (if any) and pick this rank's device."""
    rank = int(os.environ.get("RANK", 0))
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if device == "auto":
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    chosen = torch.device(device)
    if chosen.type == "cuda":
        torch.cuda.set_device(chosen)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if chosen.type == "cuda" else "gloo")
    return Process(rank, world_size, local_rank, chosen)


def stop() -> None:
    """Leave the process group."""
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier(process: Process) -> None:
    """Wait for every rank."""
    if process.distributed:
        dist.barrier()


def mean_over_ranks(values: dict[str, float], process: Process) -> dict[str, float]:
    """Each value averaged over the ranks (for logging)."""
    if not process.distributed or not values:
        return values
    keys = sorted(values)
    tensor = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=_comm(process))
    dist.all_reduce(tensor)
    return {k: float(v) / process.world_size for k, v in zip(keys, tensor.tolist())}


def sum_over_ranks(values: list[float], process: Process) -> list[float]:
    """Element-wise sums over the ranks."""
    if not process.distributed:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=_comm(process))
    dist.all_reduce(tensor)
    return tensor.tolist()


def _comm(process: Process) -> torch.device:
    return process.device if process.device.type == "cuda" else torch.device("cpu")


def enable_gradient_checkpointing(model: XWAMTransformer) -> None:
    """Recompute every block's activations in the backward pass.

    Each block's `forward` is replaced on the instance (not wrapped in another module), so the
    parameter names, and therefore the checkpoints, stay exactly those of the model.
    """
    blocks = list(model.blocks) + list(model.depth_blocks)
    for block in blocks:
        block.forward = functools.partial(_checkpointed, block.forward)


def _checkpointed(forward, *args, **kwargs):
    if torch.is_grad_enabled():
        return checkpoint(forward, *args, use_reentrant=False, **kwargs)
    return forward(*args, **kwargs)


def wrap(model: XWAMTransformer, process: Process, parallelism: str) -> nn.Module:
    """The model as this run trains it: itself, DDP, or FSDP2-sharded (in place)."""
    if not process.distributed:
        return model
    if parallelism == "fsdp":
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        # FSDP2 warns that the blocks return views, which an in-place op could break; the
        # model only uses out-of-place ops (and matches DDP step for step, tested).
        warnings.filterwarnings("ignore", message="FSDP2-wrapped module .* returned a view")
        mesh = init_device_mesh(process.device.type, (process.world_size,))
        for block in [*model.blocks, *model.depth_blocks]:
            fully_shard(block, mesh=mesh)
        fully_shard(model, mesh=mesh)
        return model
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [process.device.index] if process.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def unwrapped(model: nn.Module) -> XWAMTransformer:
    """The XWAMTransformer inside a DDP wrapper (FSDP2 modules are the model itself)."""
    return model.module if hasattr(model, "module") else model
