"""Several processes, one training loop: the helpers behind DistributedDataParallel (DDP) training.

Launch one process per GPU (or per CPU worker) with torchrun; it sets ``RANK``, ``LOCAL_RANK``,
``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` in each process::

    torchrun --nproc_per_node 2 -m gan_tutorial train --model dcgan --out runs

From Python, call :func:`init` in each process before building the
:class:`~gan_tutorial.train.Trainer`; it sees the process group and trains under DDP (each rank on
its own shard of the data, gradients averaged, rank 0 logging and writing). Without a process group
(or with one process) every function here answers as for a single process: rank 0 of 1.
"""
from __future__ import annotations

import atexit
import contextlib
import os

import torch
import torch.distributed as dist


def is_initialized() -> bool:
    """True inside a process group (after :func:`init` or ``torch.distributed.init_process_group``)."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank in the process group (0 without one)."""
    return dist.get_rank() if is_initialized() else 0


def world_size() -> int:
    """How many processes train together (1 without a process group)."""
    return dist.get_world_size() if is_initialized() else 1


def local_rank() -> int:
    """This process's rank on its machine (torchrun's ``LOCAL_RANK``, else the rank): the index of its GPU."""
    return int(os.environ.get("LOCAL_RANK", rank()))


def is_main() -> bool:
    """True on rank 0, the process that prints, takes snapshots and writes files."""
    return rank() == 0


def launched_by_torchrun() -> bool:
    """True when torchrun (or another launcher) has set the environment variables of a process group."""
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"))


def backend_for(device: torch.device | str) -> str:
    """``"nccl"`` for CUDA devices, ``"gloo"`` otherwise (CPU)."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def device_for(device: torch.device | str) -> torch.device:
    """This process's device: ``cuda:LOCAL_RANK`` for CUDA (one GPU per process), else ``device`` itself."""
    device = torch.device(device)
    processes = world_size() if is_initialized() else int(os.environ.get("WORLD_SIZE", 1))
    if device.type != "cuda" or processes == 1:
        return device
    gpus, local = torch.cuda.device_count(), local_rank()
    if local >= gpus:
        raise RuntimeError(f"process {local} on this machine asked for CUDA, but the machine has only {gpus} GPU(s): "
                           f"start at most {gpus} processes per machine (torchrun --nproc_per_node {max(gpus, 1)}), "
                           "or train on the CPU (device='cpu', backend gloo).")
    return torch.device("cuda", local)


def init(device: torch.device | str = "cpu", timeout_s: float | None = None) -> torch.device:
    """Join the process group described by torchrun's environment variables; return this process's device.

    The backend follows ``device``: NCCL on CUDA (each process takes GPU ``LOCAL_RANK``), gloo on the
    CPU. Does nothing but return the device when a group already exists. The group is shut down at exit
    (or call :func:`shutdown`).
    """
    from datetime import timedelta

    if not dist.is_available():
        raise RuntimeError("this PyTorch has no torch.distributed: install a build with it (pip install torch), "
                           "or train in one process.")
    if not is_initialized() and not launched_by_torchrun():
        raise RuntimeError("RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT are not set: start the script with "
                           "torchrun --nproc_per_node N ..., or set them in each process.")
    device = device_for(torch.device(device))
    if is_initialized():
        return device
    if device.type == "cuda":
        torch.cuda.set_device(device)   # NCCL's collectives (barrier, objects) use the current device
    kw = {"timeout": timedelta(seconds=timeout_s)} if timeout_s else {}
    dist.init_process_group(backend_for(device), init_method="env://", **kw)
    atexit.register(shutdown)
    return device


def shutdown() -> None:
    """Leave the process group (safe to call twice, or without one)."""
    if is_initialized():
        dist.destroy_process_group()


def check_backend(device: torch.device) -> None:
    """Raise if the process group's backend cannot carry tensors of ``device`` (NCCL holds CUDA tensors only)."""
    if is_initialized() and device.type != "cuda" and dist.get_backend() == "nccl":
        raise ValueError(f"the process group uses NCCL, which needs CUDA tensors, but the trainer runs on {device}: "
                         "start it with backend 'gloo' for the CPU (gan_tutorial.distributed.init(device='cpu') "
                         "chooses it), or train on GPUs.")


def mean(t: torch.Tensor) -> torch.Tensor:
    """The average of ``t`` over all ranks (one all_reduce)."""
    t = t.clone()
    dist.all_reduce(t)
    return t / world_size()


def any_rank(flag: bool, device) -> bool:
    """True on every rank if ``flag`` is true on any (one all_reduce)."""
    t = torch.tensor([float(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def from_main(values: list[float], device) -> list[float]:
    """Rank 0's ``values`` on every rank (one broadcast of a few numbers, float64)."""
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.broadcast(t, src=0)
    return t.tolist()


def gather_objects(obj) -> list:
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank (pickled; for small things such as RNG states)."""
    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    """Wait until every rank gets here (nothing to wait for without a process group)."""
    if is_initialized():
        dist.barrier()


def shard_stream(batches, rank: int, world_size: int):
    """Make an ``images.StreamBatches`` read only this rank's shard of each epoch's order (the same
    order on every rank: every ``world_size``-th image from position ``rank``); returns it."""
    from .images import EpochSampler

    class ShardSampler(EpochSampler):
        def order(self, epoch):
            full = super().order(epoch)
            return full[: len(full) // world_size * world_size][rank::world_size]

        def __len__(self):
            return self.n // world_size - self.start

    n, size, old = len(batches.files), batches.batch_size, batches.loader
    if size * world_size > n:
        raise ValueError(f"batch_size={size} per process x {world_size} processes needs at least {size * world_size} "
                         f"images, but there are {n}: lower the batch size or start fewer processes.")
    batches.sampler = ShardSampler(n, batches.sampler.seed)
    batches.loader = torch.utils.data.DataLoader(
        batches.files, batch_size=size, sampler=batches.sampler, drop_last=True, num_workers=old.num_workers,
        pin_memory=old.pin_memory, persistent_workers=old.persistent_workers)
    return batches


@contextlib.contextmanager
def main_first():
    """Run the block on rank 0 first, then on the others (e.g. a download that the others then read)."""
    if not is_main():
        barrier()
    yield
    if is_main():
        barrier()


__all__ = ["init", "shutdown", "is_initialized", "rank", "world_size", "local_rank", "is_main",
           "launched_by_torchrun", "backend_for", "device_for", "check_backend", "mean", "any_rank", "from_main",
           "gather_objects", "barrier", "shard_stream", "main_first"]
