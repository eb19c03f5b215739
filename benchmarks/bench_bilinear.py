"""Times matnet_torch.bilinear against plain PyTorch autograd, torch.sigmoid(U @ X @ V.mT + B),
measured in the same process on the same inputs.

For each shape, batch size N and thread count it prints forward and forward+backward times, the
ratio (plain PyTorch time / matnet time, so > 1 means matnet is faster), useful GFLOP/s against a
float32 GEMM peak measured in the same run, and memory: the bytes autograd keeps between forward
and backward (all of it on CPU; on CUDA also the allocator's peak during forward+backward).

On the CPU it prints one table per CPU kernel variant this CPU supports (avx512, avx2, default:
see matnet_torch.cpu_capability), each against plain PyTorch measured beside it, for float32 and
then for bfloat16 (matnet's 16-bit kernels against plain PyTorch in bfloat16; --dtypes chooses).

    python benchmarks/bench_bilinear.py                # every variant, 1 and 2 threads
    python benchmarks/bench_bilinear.py --threads 1 --cpu-capabilities avx2
    python benchmarks/bench_bilinear.py --threads 1 --dtypes bfloat16 float16
    python benchmarks/bench_bilinear.py --device cuda  # float32 and bfloat16, N up to 131072, the
                                                       # memory floor, a torch.compile column
                                                       # (bench_bilinear_cuda.py)
"""
import argparse

import torch

import matnet_torch
from matnet_torch import reference
from bench_bilinear_cuda import add_cuda_arguments, cuda_table
from measurement import add_common_arguments, multiply_adds, print_tables_per_cpu_capability

# (p, q) -> (m, n), batch sizes
CONFIGS = [
    ((28, 28), (20, 20), (128, 1024, 8192)),
    ((20, 20), (16, 16), (128, 1024, 8192)),
    ((64, 64), (64, 64), (1024,)),
]


def comparisons_in(dtype):
    def comparisons(device):
        """(label, N, multiply-adds per sample, matnet and plain PyTorch forward functions) per case."""
        for (p, q), (m, n), batches in CONFIGS:
            # x does not require grad (as for a network's first layer): no dX in the backward.
            forward_macs, backward_macs = multiply_adds(p, q, m, n, input_gradient=False)
            for batch in batches:
                yield (f"{p}x{q}->{m}x{n}", batch, forward_macs + backward_macs,
                       implementations(p, q, m, n, batch, device, dtype))
    return comparisons


def implementations(p, q, m, n, batch, device, dtype=torch.float32):
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(batch, p, q, generator=generator).to(device, dtype)
    # Weights initialised like MatNetLayer, so σ works in its healthy range.
    u = (torch.randn(m, p, generator=generator) / p**0.5).to(device, dtype).requires_grad_()
    v = (torch.randn(n, q, generator=generator) / q**0.5).to(device, dtype).requires_grad_()
    bias = torch.zeros(m, n, device=device, dtype=dtype, requires_grad=True)
    return {
        "matnet": lambda: matnet_torch.bilinear(x, u, v, bias, "sigmoid"),
        "torch": lambda: reference.bilinear(x, u, v, bias, "sigmoid"),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser)
    add_cuda_arguments(parser)
    args = parser.parse_args(argv)
    if torch.device(args.device).type == "cuda":
        print(f"torch {torch.__version__}, matnet_torch {matnet_torch.__version__}, activation sigmoid")
        cuda_table(args, torch.device(args.device))
    else:
        for dtype in args.dtypes:
            print_tables_per_cpu_capability(args, comparisons_in(getattr(torch, dtype)), "shape",
                                            f"activation sigmoid, {dtype}")


if __name__ == "__main__":
    main()
