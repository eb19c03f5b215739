"""Bit-for-bit reproducible CPU training, whatever the number of threads.

API:

    thread_independent_blas()   call before the process's first matrix product (training commands
                                call it when their module is imported)
    single_threaded(module)     runs module's forward and backward with one intra-op thread: for
                                the plain torch layers (the heads), whose products go to MKL
    one_thread()                context manager: one intra-op thread inside, the count restored after

The MatNet layers' kernels sum in fixed slots of samples, so their bits do not depend on the thread
count. Plain torch layers (``nn.Linear`` heads, the matmuls of ``BilinearSoftmaxHead``) go to MKL,
whose results change in the last bits with the thread count: seemingly it splits a product's rows
between threads and sums the rows left over from its kernel's blocks in another order, so a row's
bits depend on where the split falls. MKL's conditional numerical reproducibility (MKL_CBWR) does not
remove this: Intel documents equal results for a *fixed* thread count, and its STRICT mode, meant to
hold across thread counts, only for Intel CPUs. Measured with torch 2.13 (MKL 2024.2) on an AMD EPYC,
1 against 2 threads: (N×256)·(256×10), the vec head's forward, differs for most batch sizes N that
are not 0 or 1 mod 8 (the last, partial batch of an epoch, say 22) in COMPATIBLE mode, and its
backward products or the bilinear head's differ in the default, AVX2, SSE4_2 and every STRICT mode.

Hence two settings. The heads run single-threaded (``single_threaded``), so MKL always sees one
thread and computes each row in one order; they are a few percent of the arithmetic (the paper's
net: 2560 of 40,960 multiply-adds per image), so --threads keeps speeding up the MatNet layers.
MKL runs in COMPATIBLE mode (``thread_independent_blas``) so that its single-threaded code path does
not depend on the memory alignment or the CPU either, which CNR is made for. MKL reads the variable
at its first call, hence "before the first matrix product"; a value the user set is kept.
"""
import contextlib
import os
import types
from typing import Iterator

import torch
from torch import nn
from torch.autograd.function import once_differentiable

MKL_REPRODUCIBLE_MODE = "COMPATIBLE"


def thread_independent_blas() -> None:
    """Asks MKL for results independent of alignment and CPU, unless MKL_CBWR is already set."""
    os.environ.setdefault("MKL_CBWR", MKL_REPRODUCIBLE_MODE)


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """torch's intra-op thread count is 1 inside, and what it was before after, however it is left."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


class _OneThreadCall(torch.autograd.Function):
    """``module(x)`` as one autograd node whose forward and backward each run inside ``one_thread``.

    The forward records the module's own graph (from a detached x and the module's parameters) and
    keeps it; the backward runs that graph with ``torch.autograd.grad`` and hands the gradients of x
    and of the parameters to the outer graph, which accumulates them as for any node. So the thread
    count changes only within the node's own two calls, each wrapped in try/finally: an exception,
    a backward that never comes, or one that stops before x cannot leave the process at one thread.
    """

    @staticmethod
    def forward(ctx, module: nn.Module, x: torch.Tensor, *parameters: torch.Tensor) -> torch.Tensor:
        with one_thread(), torch.enable_grad():
            ctx.x = x.detach().requires_grad_(x.requires_grad)
            ctx.output = type(module).forward(module, ctx.x)
        ctx.parameters = parameters
        return ctx.output.detach()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output: torch.Tensor):
        inputs = [ctx.x, *ctx.parameters]
        wanted = [tensor for tensor, needed in zip(inputs, ctx.needs_input_grad[1:]) if needed]
        with one_thread():
            computed = iter(torch.autograd.grad(ctx.output, wanted, grad_output, allow_unused=True))
        return (None, *[next(computed) if needed else None for needed in ctx.needs_input_grad[1:]])


def _single_threaded_forward(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    parameters = tuple(module.parameters())
    if not torch.is_grad_enabled() or not (x.requires_grad or any(p.requires_grad for p in parameters)):
        with one_thread():
            return type(module).forward(module, x)
    return _OneThreadCall.apply(module, x, *parameters)


def single_threaded(module: nn.Module) -> nn.Module:
    """Makes ``module(x)`` compute its forward and backward with one intra-op thread; returns it.

    ``module.forward`` becomes, on this instance only, a call of its class's forward through
    ``_OneThreadCall`` (without grad, a plain call inside ``one_thread``), so the module, its hooks
    and its state_dict stay as they are, and the thread count is restored on every path. One tensor
    input, as the heads take; double backward is not supported.
    """
    module.forward = types.MethodType(_single_threaded_forward, module)
    return module
