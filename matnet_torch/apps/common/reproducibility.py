"""Bit-for-bit reproducible CPU training, whatever the number of threads.

API:

    thread_independent_blas()   call before the process's first matrix product (training commands
                                call it when their module is imported)
    single_threaded(module)     runs module's forward and backward with one intra-op thread: for
                                the plain torch layers (the heads), whose products go to MKL

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
import os
from typing import List

import torch
from torch import nn

MKL_REPRODUCIBLE_MODE = "COMPATIBLE"


def thread_independent_blas() -> None:
    """Asks MKL for results independent of alignment and CPU, unless MKL_CBWR is already set."""
    os.environ.setdefault("MKL_CBWR", MKL_REPRODUCIBLE_MODE)


class _OneThread:
    """Sets torch's intra-op thread count to 1 on enter and back to what it was on leave."""

    def __init__(self):
        self.saved: List[int] = []

    def enter(self) -> None:
        self.saved.append(torch.get_num_threads())
        torch.set_num_threads(1)

    def leave(self) -> None:
        torch.set_num_threads(self.saved.pop())


def single_threaded(module: nn.Module) -> nn.Module:
    """Makes ``module(x)`` compute its forward and backward with one intra-op thread; returns it.

    Hooks, so the module and its state_dict stay as they are. The backward runs single-threaded from
    the moment the gradient with respect to the output arrives (a pre-hook on the output's grad_fn)
    until the gradient with respect to x has been computed (a hook on x): every product of the
    module's backward lies in between. That needs an x computed with grad (the heads read a MatNet
    layer's output); otherwise nothing would end the stretch, so a forward with grad enabled and such
    an x is refused. (Not ``register_full_backward_hook``: its extra autograd nodes cost more.)
    """
    forward, backward = _OneThread(), _OneThread()

    def before_forward(module, inputs):
        (x,) = inputs
        if torch.is_grad_enabled() and x.grad_fn is None:
            raise ValueError(f"single_threaded({type(module).__name__}): its input must be computed with grad in training")
        forward.enter()

    def after_forward(module, inputs, output):
        forward.leave()
        if output.grad_fn is not None:  # a training forward: its backward passes through here
            output.grad_fn.register_prehook(lambda grad_outputs: backward.enter())
            inputs[0].register_hook(lambda grad: backward.leave())

    module.register_forward_pre_hook(before_forward)
    module.register_forward_hook(after_forward)
    return module
