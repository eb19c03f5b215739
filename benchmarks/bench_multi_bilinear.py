"""Times matnet_torch's fused multi-input operator, torch.ops.matnet.multi_bilinear, against plain
PyTorch autograd, torch.sigmoid(sum(U_j @ X_j @ V_j.mT) + B), measured in the same process on the
same inputs: the multimodal encoder of the super-resolution autoencoder (docs/design.md §2).

For each case, batch size N and thread count it prints forward and forward+backward times (the
inputs X_j are data: gradients for every U_j, V_j and B), the ratio (plain PyTorch time / matnet
time, so > 1 means matnet is faster), useful GFLOP/s against a float32 GEMM peak measured in the
same run, and the bytes autograd keeps between forward and backward (on CUDA also the
allocator's peak during forward+backward).

On the CPU it prints one table per CPU kernel variant this CPU supports (avx512, avx2, default:
see matnet_torch.cpu_capability), each against plain PyTorch measured beside it.

    python benchmarks/bench_multi_bilinear.py              # every variant, 1 and 2 threads
    python benchmarks/bench_multi_bilinear.py --threads 1 --min-seconds 0.05 --cpu-capabilities avx2
"""
import argparse

import torch

import matnet_torch  # noqa: F401  (registers torch.ops.matnet)
from matnet_torch import reference
from measurement import add_common_arguments, multiply_adds, print_tables_per_cpu_capability

# label, input sizes (p_j, q_j), output (m, n)
CASES = [
    ("5x15x15->10x10", [(15, 15)] * 5, (10, 10)),  # super-resolution: five modalities of a 15×15 patch
    ("28,14,7->10x10", [(28, 28), (14, 14), (7, 7)], (10, 10)),  # inputs of different sizes
]
BATCHES = (128, 8192, 65536)


def comparisons(device):
    """(label, N, multiply-adds per sample, matnet and plain PyTorch forward functions) per case."""
    for label, sizes, (m, n) in CASES:
        # Σ_j of each input's products, forward and backward without dX_j (the inputs are data).
        macs = sum(sum(multiply_adds(p, q, m, n, input_gradient=False)) for p, q in sizes)
        for batch in BATCHES:
            yield label, batch, macs, implementations(sizes, (m, n), batch, device)


def implementations(sizes, out_shape, batch, device):
    generator = torch.Generator().manual_seed(0)
    m, n = out_shape
    xs = [torch.rand(batch, p, q, generator=generator).to(device) for p, q in sizes]
    # Weights initialised like MatNetLayer (each input's U_j with variance 1/p_j), so σ works in
    # its healthy range.
    us = [(torch.randn(m, p, generator=generator) / p**0.5).to(device).requires_grad_() for p, _ in sizes]
    vs = [(torch.randn(n, q, generator=generator) / q**0.5).to(device).requires_grad_() for _, q in sizes]
    bias = torch.zeros(m, n, device=device, requires_grad=True)
    return {
        "matnet": lambda: torch.ops.matnet.multi_bilinear(xs, us, vs, bias, "sigmoid"),
        "torch": lambda: reference.multi_bilinear(xs, us, vs, bias, "sigmoid"),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser)
    print_tables_per_cpu_capability(parser.parse_args(argv), comparisons, "inputs->output", "activation sigmoid, float32")


if __name__ == "__main__":
    main()
