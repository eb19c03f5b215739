"""Bit-for-bit reproducible CPU training, whatever the number of threads.

API:

    thread_independent_blas()   call before the process's first matrix product (training commands
                                call it when their module is imported)

Plain torch layers (``nn.Linear`` heads, the matmuls of ``BilinearSoftmaxHead``) go to MKL, whose
GEMMs split their sums over threads differently for different thread counts, so their last bits
change with ``--threads``. MKL's conditional numerical reproducibility fixes its code path; measured
with torch 2.13 (MKL 2024.2) on an AMD EPYC, 1 against 2 threads, the gradients of both MNIST heads
(batch 128) differ in the default mode and in ``AUTO,STRICT`` / ``AVX2,STRICT`` for the bilinear head
(a 10×2048 by 2048×16 product), and are equal in ``COMPATIBLE`` mode, which is therefore used. It
costs nothing measurable on these small products (one training step of the paper's net, 1 thread:
2.7–3.4 ms either way, within the run-to-run noise of a shared machine). MKL reads the variable at its
first call, hence "before the first matrix product"; a value the user set is kept.
"""
import os

MKL_REPRODUCIBLE_MODE = "COMPATIBLE"


def thread_independent_blas() -> None:
    """Asks MKL for results independent of the thread count, unless MKL_CBWR is already set."""
    os.environ.setdefault("MKL_CBWR", MKL_REPRODUCIBLE_MODE)
