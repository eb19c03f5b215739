"""Times matnet_torch.bilinear against plain PyTorch autograd, torch.sigmoid(U @ X @ V.mT + B),
measured in the same process on the same inputs.

For each shape, batch size N and thread count it prints forward and forward+backward times, the
ratio (plain PyTorch time / matnet time, so > 1 means matnet is faster), useful GFLOP/s against a
float32 GEMM peak measured in the same run, and memory: the bytes autograd keeps between forward
and backward (all of it on CPU; on CUDA also the allocator's peak during forward+backward).

On the CPU it prints one table per CPU kernel variant this CPU supports (avx512, avx2, default:
see matnet_torch.cpu_capability), each against plain PyTorch measured beside it.

    python benchmarks/bench_bilinear.py                # every variant, 1 and 2 threads
    python benchmarks/bench_bilinear.py --threads 1 --cpu-capabilities avx2
    python benchmarks/bench_bilinear.py --threads 2 --device cuda
"""
import argparse

import torch

import matnet_torch
from matnet_torch import reference
from measurement import (
    add_common_arguments,
    gemm_peak_gflops,
    multiply_adds,
    peak_cuda_bytes,
    print_tables_per_cpu_capability,
    saved_bytes,
    time_call,
)

# (p, q) -> (m, n), batch sizes
CONFIGS = [
    ((28, 28), (20, 20), (128, 1024, 8192)),
    ((20, 20), (16, 16), (128, 1024, 8192)),
    ((64, 64), (64, 64), (1024,)),
]


def measure(p, q, m, n, batch, device, min_seconds):
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(batch, p, q, generator=generator).to(device)
    # Weights initialised like MatNetLayer, so σ works in its healthy range.
    u = (torch.randn(m, p, generator=generator) / p**0.5).to(device).requires_grad_()
    v = (torch.randn(n, q, generator=generator) / q**0.5).to(device).requires_grad_()
    bias = torch.zeros(m, n, device=device, requires_grad=True)
    implementations = {
        "matnet": lambda: matnet_torch.bilinear(x, u, v, bias, "sigmoid"),
        "torch": lambda: reference.bilinear(x, u, v, bias, "sigmoid"),
    }
    result = {}
    for name, forward in implementations.items():
        def forward_backward():
            forward().sum().backward()

        result[name] = {
            "forward": time_call(lambda: forward().detach(), device, min_seconds),
            "forward_backward": time_call(forward_backward, device, min_seconds),
            "saved": saved_bytes(forward)[0],
            "peak": peak_cuda_bytes(forward_backward, device) if device.type == "cuda" else None,
        }
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(parser)
    print_tables_per_cpu_capability(parser.parse_args(argv), print_tables, "activation sigmoid")


def print_tables(args, device):
    header = (f"{'shape':>15} {'N':>5} {'thr':>3} | {'fwd ms':>8} {'torch':>8} {'ratio':>5} | {'f+b ms':>8} {'torch':>8} "
              f"{'ratio':>5} | {'GFLOP/s f+b':>11} {'% peak':>6} | {'saved MiB':>9} {'torch':>7}")
    for threads in args.threads:
        torch.set_num_threads(threads)
        peak = gemm_peak_gflops(device, args.min_seconds)
        print(f"\n{threads} thread(s): float32 GEMM peak (1024x1024 matmul) {peak:.0f} GFLOP/s")
        print(header)
        for (p, q), (m, n), batches in CONFIGS:
            for batch in batches:
                r = measure(p, q, m, n, batch, device, args.min_seconds)
                ours, plain = r["matnet"], r["torch"]
                forward_macs, backward_macs = multiply_adds(p, q, m, n)
                gflops = 2 * batch * (forward_macs + backward_macs) / ours["forward_backward"] / 1e9
                memory = f"{ours['saved'] / 2**20:>9.2f} {plain['saved'] / 2**20:>7.2f}"
                if ours["peak"] is not None:
                    memory += f" | peak MiB {ours['peak'] / 2**20:.1f} vs {plain['peak'] / 2**20:.1f}"
                print(
                    f"{f'{p}x{q}->{m}x{n}':>15} {batch:>5} {threads:>3} | "
                    f"{ours['forward'] * 1e3:>8.3f} {plain['forward'] * 1e3:>8.3f} {plain['forward'] / ours['forward']:>5.2f} | "
                    f"{ours['forward_backward'] * 1e3:>8.3f} {plain['forward_backward'] * 1e3:>8.3f} "
                    f"{plain['forward_backward'] / ours['forward_backward']:>5.2f} | "
                    f"{gflops:>11.1f} {100 * gflops / peak:>5.0f}% | {memory}"
                )


if __name__ == "__main__":
    main()
