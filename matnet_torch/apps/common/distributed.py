"""Training on several processes (one or more machines) under torchrun: exact data parallelism.

API:

    processes = join_processes(device)   the processes of this run: torchrun's process group when the
                                         command runs under torchrun (gloo on the CPU, nccl on CUDA,
                                         each process on the GPU of its LOCAL_RANK), else one process
    processes.rank, .world_size, .is_main
    processes.check_batches(batch_size, num_samples)
                                         UsageError unless every batch gives each process a sample
    processes.start_alike(module)        every process takes rank 0's parameters and buffers
    batch = processes.global_batch(B)    a global batch of B samples as this process sees it:
        batch.share                      the slice of the batch this process trains on
        batch.part_of_mean(values)       Σ_{i in share} values_i / B: this process's part of the mean
        batch.part_of(term)              term / W: this process's part of a term every process
                                         computes in full (a penalty on the parameters, or on
                                         statistics of the whole batch)
        batch.mean(values)               the mean over the whole batch (all-reduced, differentiable)
    processes.sum_gradients(optimizer)   after backward: every gradient summed over the processes
    processes.sum(tensor)                the tensor summed over the processes, in place (statistics)
    processes.leave()                    leaves the process group (at the end of the command, also
                                         after an error): its worker threads end before it returns

How the work is shared: every process holds the data, draws the same permutation and the same
augmentation from the same seeded generator (so the generators stay equal, and rank 0's checkpoint
resumes every process), and trains on its own contiguous share of every global batch of B samples
(shares differ by at most one sample when W does not divide B). The objective of a global batch,

    L = (1/B) Σ_i ℓ_i + R(θ, ρ̄),   ρ̄ = (1/B) Σ_i a_i  (statistics of the whole batch, e.g. the mean
                                                       activations of the KL sparsity penalty),

is written as a sum over the processes, L = Σ_r L_r with L_r = (1/B) Σ_{i in share r} ℓ_i + R / W:
each process computes R in full from ρ̄, which ``batch.mean`` all-reduces. Then ∇L = Σ_r ∇L_r, so
after each process's backward its gradients are summed over the processes (``sum_gradients``): W
processes take the step of one process on the same global batch, for any W and B, up to the order
of float sums. The gradient through ρ̄ comes out right as well: ρ̄'s all-reduce has the all-reduce
of the gradients as its backward (the sum's Jacobian with respect to each summand is the identity),
so process r' receives Σ_r ∂(R / W)/∂ρ̄ = ∂R/∂ρ̄ for its own activations. (DistributedSampler instead
shards a per-epoch permutation of the data set: a different order than a single process, and
augmentation drawn per process, whose random states a checkpoint would need.)

Why not DistributedDataParallel: it averages the gradients (which the losses could be scaled for),
and its reducer holds the process group for as long as the wrapper lives, which ``leave`` would then
have to end first. The gradients of these models are a few small tensors: one flat all-reduce per
step, after backward, costs about what DistributedDataParallel's bucket would, without its overlap
with the backward.
"""
import os
from dataclasses import dataclass
from typing import Dict, List

import torch
import torch.distributed as dist
# Imported before any process group exists, on purpose: this module binds ``group.WORLD`` into ten
# functions' default arguments when it is first imported (torch._dynamo imports it, and the first
# torch.optim optimizer imports torch._dynamo), and a group bound there would outlive
# ``destroy_process_group`` (see ``leave``); imported now, the defaults hold None.
import torch.distributed.nn.functional  # noqa: F401
from torch import nn

from .cli import UsageError


class _SumOverProcesses(torch.autograd.Function):
    """Σ_r x_r over the processes, differentiable: the backward sums the processes' gradients with
    respect to the sum, since ∂(Σ_r x_r)/∂x_r' is the identity. Unlike torch.distributed.nn's
    all_reduce it keeps no process group in the graph (always the default group), so a graph left
    in a traceback cannot keep the group alive (``Processes.leave``)."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        total = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx, gradient: torch.Tensor) -> torch.Tensor:
        total = gradient.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(total)
        return total


@dataclass(frozen=True)
class GlobalBatch:
    """A global batch of ``size`` samples as one of ``world_size`` processes sees it (module docstring)."""

    size: int
    share: slice
    world_size: int

    def part_of_mean(self, values: torch.Tensor) -> torch.Tensor:
        """Σ over this process's samples (dim 0 of ``values``) / B; the processes' parts sum to the mean."""
        return values.sum(dim=0) / self.size

    def part_of(self, term: torch.Tensor) -> torch.Tensor:
        """``term`` / W, for a term that every process computes in full."""
        return term if self.world_size == 1 else term / self.world_size

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """The mean over dim 0 of the whole batch, of which ``values`` holds this process's share: the
        same on every process, with gradients reaching every process's samples."""
        if self.world_size == 1:
            return values.mean(dim=0)
        return _SumOverProcesses.apply(values.sum(dim=0)) / self.size


class Processes:
    """The processes of a run and this one's place among them (module docstring)."""

    def __init__(self, rank: int = 0, world_size: int = 1, device: torch.device = torch.device("cpu")):
        self.rank, self.world_size, self.device = rank, world_size, device

    @property
    def is_main(self) -> bool:
        """Whether this process prints, writes checkpoints and metrics (rank 0)."""
        return self.rank == 0

    def check_batches(self, batch_size: int, num_samples: int) -> None:
        """UsageError unless every global batch gives each process at least one sample."""
        last = num_samples % batch_size or batch_size
        if min(batch_size, last) < self.world_size:
            raise UsageError(
                f"--batch-size {batch_size} with {num_samples} training samples leaves a batch of "
                f"{min(batch_size, last)} samples, fewer than the {self.world_size} processes; choose another --batch-size"
            )

    def global_batch(self, size: int) -> GlobalBatch:
        """A global batch of ``size`` samples; this process's share is its contiguous part
        [⌊size·rank/W⌋, ⌊size·(rank+1)/W⌋)."""
        share = slice(size * self.rank // self.world_size, size * (self.rank + 1) // self.world_size)
        return GlobalBatch(size, share, self.world_size)

    def start_alike(self, module: nn.Module) -> None:
        """Every process takes rank 0's parameters and buffers (the same seed gives them already; a
        checkpoint read differently, or a device's initialisation, would not)."""
        if self.world_size > 1:
            with torch.no_grad():
                for tensor in [*module.parameters(), *module.buffers()]:
                    dist.broadcast(tensor, src=0)

    def sum_gradients(self, optimizer: torch.optim.Optimizer) -> None:
        """Each gradient of the optimizer's parameters summed over the processes, in place: one
        all-reduce per dtype of a flat copy. Every process must hold the same set of gradients (the
        same model on non-empty shares does); parameters without a gradient are left without one."""
        if self.world_size == 1:
            return
        by_dtype: Dict[torch.dtype, List[torch.Tensor]] = {}
        for group in optimizer.param_groups:
            for parameter in group["params"]:
                if parameter.grad is not None:
                    by_dtype.setdefault(parameter.grad.dtype, []).append(parameter.grad)
        for gradients in by_dtype.values():
            flat = torch.cat([gradient.reshape(-1) for gradient in gradients])
            dist.all_reduce(flat)
            for gradient, summed in zip(gradients, flat.split([gradient.numel() for gradient in gradients])):
                gradient.copy_(summed.view_as(gradient))

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` summed over the processes, in place (nothing to do for one process)."""
        if self.world_size > 1:
            dist.all_reduce(tensor)
        return tensor

    def leave(self) -> None:
        """Leaves the process group; gloo's worker threads have ended when this returns.

        A gloo worker thread holds the collective it runs until a moment after the collective has
        completed and its waiter has woken; a collective launched during a backward holds the
        thread-local state autograd had then, Python objects included. If the thread lets go after
        the interpreter has begun to shut down, releasing those objects needs the GIL and the process
        aborts ("terminate called without an active exception"). No wait on a collective rules that
        out; joining the threads does, and only the destructor of ``ProcessGroupGloo`` joins them,
        after its queue has drained (``ProcessGroup.shutdown`` does nothing for gloo). So the group
        must be destroyed, not merely unregistered: ``destroy_process_group`` drops torch's own
        references to it, and nothing else may hold one. Here nothing does: collectives are
        synchronous (no ``Work`` objects), ``_SumOverProcesses`` keeps no group, there is no
        DistributedDataParallel, and torch.distributed.nn.functional, whose functions' default
        arguments would otherwise hold the group forever, is imported before the group exists
        (torch 2.13: ten references, from the first optimizer's or torch._dynamo's import of it;
        that, not the timing, is why the group outlived ``destroy_process_group``). The tests check
        that no gloo thread is left after ``leave``, on success and on failure."""
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
