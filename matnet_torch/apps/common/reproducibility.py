"""Bit-for-bit reproducible CPU training, whatever the number of threads.

API:

    thread_independent_blas()   call before the process's first matrix product (training commands
                                call it when their module is imported)

matnet_torch's own operators give the same bits for any thread count: every thread reduces a fixed
set of blocks and the per-thread partial sums are added in a fixed order. Plain torch layers in the
same model (``nn.Linear`` heads, matmuls) go to MKL, whose GEMMs split their reductions across
threads differently for different thread counts, so their last bits change with ``--threads``. MKL's
conditional numerical reproducibility in strict mode (``MKL_CBWR=AUTO,STRICT``: the fastest code path
for this CPU, the same bits for any thread count) removes that. MKL reads the variable at its first
call, hence "before the first matrix product"; a value the user set is kept.
"""
import os

MKL_REPRODUCIBILITY = "AUTO,STRICT"


def thread_independent_blas() -> None:
    """Asks MKL for results independent of the thread count, unless MKL_CBWR is already set."""
    os.environ.setdefault("MKL_CBWR", MKL_REPRODUCIBILITY)
