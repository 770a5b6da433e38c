"""torchrun / DistributedDataParallel plumbing: who am I, and how to wrap a module."""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    """This process's place in a (possibly single-process) run."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    local_world_size: int = 1  # processes on this node

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device_type: str) -> DistInfo:
    """Join the process group torchrun set up (nccl on CUDA, gloo on CPU); single process otherwise."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0")), dist.get_world_size(),
                    int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


def wrap(module: nn.Module, info: DistInfo, device: torch.device) -> nn.Module:
    """`module` in DDP when the run has several processes, else as is."""
    if not info.enabled:
        return module
    ids = [device.index] if device.type == "cuda" else None
    # Buffers are synced by `sync_buffers` after each step instead: DDP's broadcast at the start of a forward
    # leaves each rank with the buffers its own batch updated (EMA codebooks) once training ends. torch 2.13
    # renamed the flag (the old name warns on every rank, found from outside); its init sync is ours anyway.
    ddp = nn.parallel.DistributedDataParallel
    no_forward_sync = ({"forward_sync_buffers": False}
                       if "forward_sync_buffers" in inspect.signature(ddp.__init__).parameters
                       else {"broadcast_buffers": False})
    wrapped = ddp(module, device_ids=ids, **no_forward_sync)
    sync_buffers(module, info)
    return wrapped


def sync_buffers(module: nn.Module, info: DistInfo) -> None:
    """Give every rank rank 0's buffers (e.g. EMA codebooks each rank updated from its own batch)."""
    if info.enabled:
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
