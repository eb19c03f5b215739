"""Training on several processes (one or more machines) with DistributedDataParallel, under torchrun.

API:

    processes = join_processes(device)   the processes of this run: torchrun's process group when the
                                         command runs under torchrun (gloo on the CPU, nccl on CUDA,
                                         each process on the GPU of its LOCAL_RANK), else one process
    processes.rank, .world_size, .is_main
    processes.parallel(module, "forward_with_hidden")
                                         that method of module, its gradients averaged over the
                                         processes (DistributedDataParallel) when there are several
    processes.share(batch_size)          the slice of a global batch this process trains on
    processes.sum(tensor)                the tensor summed over the processes, in place
    processes.leave()                    leaves the process group (at the end of the command, also
                                         after an error)

How the work is shared: every process holds the data, draws the same permutation and the same
augmentation from the same seeded generator (so the generators stay equal, and rank 0's checkpoint
resumes every process), cuts each global batch of --batch-size samples into world_size contiguous
shares and trains on its own. DistributedDataParallel averages the gradients over the processes;
with each process's loss written as its share's *sum* over the global batch size per process,
Σ_share ℓ / (B / W), that average is the gradient of the global batch's mean loss. So W processes
train the same model as one process on the same global batches, up to the rounding of the sums
(DistributedSampler instead shards a per-epoch permutation of the data set: a different order than a
single process, and augmentation drawn per process, whose random states a checkpoint would need).
"""
import os
import time
import weakref
from typing import Callable, List

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .cli import UsageError


class _Method(nn.Module):
    """One method of a module as ``forward``: DistributedDataParallel synchronises the gradients of what
    goes through the forward of the module it wraps."""

    def __init__(self, module: nn.Module, name: str):
        super().__init__()
        self.module, self.name = module, name

    def forward(self, *args):
        return getattr(self.module, self.name)(*args)


class Processes:
    """The processes of a run and this one's place among them (module docstring)."""

    def __init__(self, rank: int = 0, world_size: int = 1, device: torch.device = torch.device("cpu")):
        self.rank, self.world_size, self.device = rank, world_size, device
        self._sent: List[weakref.ref] = []  # the tensors ``sum`` gave gloo (see ``leave``)

    @property
    def is_main(self) -> bool:
        """Whether this process prints, writes checkpoints and metrics (rank 0)."""
        return self.rank == 0

    def parallel(self, module: nn.Module, method: str = "forward") -> Callable:
        """``module.<method>``; with several processes, wrapped in DistributedDataParallel (which first
        gives every process rank 0's parameters and buffers)."""
        if self.world_size == 1:
            return getattr(module, method)
        device_ids = [self.device] if self.device.type == "cuda" else None
        return DistributedDataParallel(_Method(module, method), device_ids=device_ids)

    def check_batches(self, batch_size: int, num_samples: int) -> None:
        """UsageError unless every global batch gives each process at least one sample."""
        last = num_samples % batch_size or batch_size
        if min(batch_size, last) < self.world_size:
            raise UsageError(
                f"--batch-size {batch_size} with {num_samples} training images leaves a batch of "
                f"{min(batch_size, last)} images, fewer than the {self.world_size} processes; choose another --batch-size"
            )

    def share(self, batch_size: int) -> slice:
        """The contiguous part of a global batch of ``batch_size`` samples that this process trains on."""
        start = batch_size * self.rank // self.world_size
        return slice(start, batch_size * (self.rank + 1) // self.world_size)

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` summed over the processes, in place (nothing to do for one process)."""
        if self.world_size > 1:
            sent = tensor.clone()
            dist.all_reduce(sent, op=dist.ReduceOp.SUM)
            tensor.copy_(sent)
            self._sent = [earlier for earlier in self._sent if earlier() is not None] + [weakref.ref(sent)]
        return tensor

    def leave(self) -> None:
        """Leaves the process group once gloo's worker threads are likely done with this process's work.

        A worker thread drops its hold on a collective's work a moment after the collective has
        completed. If that comes after the interpreter has begun to shut down (rank 1 exits right
        after its last ``sum``), and the work holds Python objects, Python ends the thread inside the
        work's destructor, which needs the GIL, and the process aborts ("terminate called without an
        active exception"; 4 of 138 two-process runs of the tests' worker on a loaded 2-core machine,
        torch 2.13). Core dumps show two such holds: the tensors ``sum`` all-reduced, and the
        contextvars context that autograd stashes in the thread-local state during a backward,
        which DistributedDataParallel's all-reduces launched there keep a copy of. Destroying the
        process group does not stop the threads (DistributedDataParallel keeps the group alive), and
        a barrier does not help (its work holds the earlier ones; 1 abort in 87 runs with one).

        So ``sum`` sends a copy that only gloo holds; torch keeps a tensor's Python object alive
        while C++ code still holds the tensor, so a weak reference to the copy dies exactly when gloo
        lets go, and this waits for that (at most 10 s: a hung process group must not keep the
        command from exiting). For DistributedDataParallel's works there is no such handle in
        torch's public API, so this then sleeps 0.2 s, the GIL free, which gives a worker thread
        that finished its work time to be scheduled and let go (1 abort in 91 runs without it)."""
        if self.world_size > 1:
            deadline = time.monotonic() + 10.0
            while any(sent() is not None for sent in self._sent) and time.monotonic() < deadline:
                time.sleep(0.001)
            time.sleep(0.2)
        if dist.is_initialized():
            dist.destroy_process_group()


def join_processes(device: torch.device) -> Processes:
    """This run's processes: torchrun's when its environment (WORLD_SIZE, RANK, LOCAL_RANK,
    MASTER_ADDR, MASTER_PORT) is set, else one process. On CUDA each process takes the GPU of its
    LOCAL_RANK, so ``device`` becomes cuda:LOCAL_RANK."""
    if "WORLD_SIZE" not in os.environ:
        return Processes(device=device)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Processes(dist.get_rank(), dist.get_world_size(), device)
