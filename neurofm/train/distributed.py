"""Process-group setup and model wrapping for ``torchrun`` launches.

``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous variables; a plain
``python`` launch has none and runs as a world of one without a process group. The backend is
NCCL on CUDA and gloo on CPU. Several ranks share the model as replicas (DDP) or fully sharded
(FSDP, ``torch.distributed.fsdp.fully_shard``, for models too large to replicate).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistEnv:
    """Where this process stands: ``rank`` of ``world_size``, and its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto") -> DistEnv:
    """Join the process group torchrun prepared (if any) and pick the device.

    Parameters
    ----------
    device : {"auto", "cpu", "cuda"}
        ``auto`` takes CUDA when available.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("run.device is cuda but no CUDA device is visible; set run.device=cpu.")
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if use_cuda:
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", store=_attempt_store(),
                                rank=rank, world_size=world_size,
                                device_id=dev if use_cuda else None)
    return DistEnv(rank, world_size, local_rank, dev)


def _attempt_store() -> dist.Store:
    """The store torchrun prepared (``env://``), with keys of its own for each restart attempt.

    After an elastic restart, torchrun hands the new ranks the store of the first attempt, which
    still holds the old ranks' gloo/NCCL addresses under the same keys; a restarted rank could
    read a dead rank's address and fail to connect (connection refused, or a hang). Prefixing the
    keys with ``TORCHELASTIC_RESTART_COUNT`` keeps each attempt's addresses apart.
    """
    store, _, _ = next(dist.rendezvous("env://"))
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    return dist.PrefixStore(f"neurofm/attempt-{attempt}", store)


def shutdown(env: DistEnv) -> None:
    """Leave the process group (a no-op for a world of one)."""
    if env.distributed and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor, env: DistEnv) -> torch.Tensor:
    """Sum ``tensor`` over ranks (in place) and return it.

    The reduction runs on this rank's device (NCCL reduces CUDA tensors only).
    """
    if env.distributed:
        on_device = tensor.to(env.device)
        dist.all_reduce(on_device, op=dist.ReduceOp.SUM)
        tensor.copy_(on_device)
    return tensor


def all_gather_objects(obj, env: DistEnv) -> list:
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank."""
    if not env.distributed:
        return [obj]
    gathered = [None] * env.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def raise_together(error: str | None, env: DistEnv) -> None:
    """Raise ``ValueError(error)`` on every rank when any rank has an error (the first rank's
    with one); a collective, so a check made on rank 0 alone stops every rank."""
    errors = [e for e in all_gather_objects(error, env) if e]
    if errors:
        raise ValueError(errors[0])


def barrier(env: DistEnv) -> None:
    if env.distributed:
        dist.barrier()


def wrap_model(module: nn.Module, env: DistEnv, parallel: str = "ddp",
               find_unused_parameters: bool = False) -> nn.Module:
    """Share ``module`` over the ranks: DDP replicas or FSDP shards (unchanged for one rank)."""
    if not env.distributed:
        return module
    if parallel == "fsdp":
        from torch.distributed.fsdp import fully_shard

        return fully_shard(module)
    device_ids = [env.device.index] if env.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=device_ids,
                                               find_unused_parameters=find_unused_parameters)


def gradient_sync(wrapped: nn.Module, enabled: bool):
    """Context in which backward passes do (or, while accumulating, do not) all-reduce gradients."""
    if enabled:
        return contextlib.nullcontext()
    if isinstance(wrapped, nn.parallel.DistributedDataParallel):
        return wrapped.no_sync()
    if hasattr(wrapped, "set_requires_gradient_sync"):  # FSDP2
        return _fsdp_no_sync(wrapped)
    return contextlib.nullcontext()


@contextlib.contextmanager
def _fsdp_no_sync(wrapped):
    wrapped.set_requires_gradient_sync(False)
    try:
        yield
    finally:
        wrapped.set_requires_gradient_sync(True)
