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
import platform
import argparse
import statistics
import time

import torch

import matnet_torch
from matnet_torch import reference

# (p, q) -> (m, n), batch sizes
CONFIGS = [
    ((28, 28), (20, 20), (128, 1024, 8192)),
    ((20, 20), (16, 16), (128, 1024, 8192)),
    ((64, 64), (64, 64), (1024,)),
]


def multiply_adds(p, q, m, n):
    """Per-sample multiply-adds of the forward (cheaper association) and of the backward
    (dX, dU, dV through R = UᵀΔ and Q = V Xᵀ), the same mathematics for both implementations."""
    forward = min(p * q * n + m * p * n, m * p * q + m * q * n)
    backward = 2 * p * m * n + 3 * p * n * q
    return forward, backward


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_call(fn, device, min_seconds, rounds=5):
    """Median over rounds of the mean time of fn over enough calls to fill min_seconds."""
    fn()
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    calls = max(1, int(min_seconds / max(time.perf_counter() - start, 1e-6)))
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        synchronize(device)
        samples.append((time.perf_counter() - start) / calls)
    return statistics.median(samples)


def gemm_peak_gflops(device, min_seconds):
    a = torch.randn(1024, 1024, device=device)
    b = torch.randn(1024, 1024, device=device)
    return 2 * 1024**3 / time_call(lambda: a @ b, device, min_seconds) / 1e9


def saved_bytes(fn):
    """Bytes of the distinct storages autograd saves for backward while fn() builds the graph."""
    storages = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        out = fn()
    return sum(storages.values()), out


def peak_cuda_bytes(fn, device):
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    fn()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - base


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
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="CPU thread counts (default: 1 2)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--min-seconds", type=float, default=0.2, help="time per measurement round (default: 0.2)")
    parser.add_argument(
        "--cpu-capabilities",
        nargs="+",
        default=matnet_torch.supported_cpu_capabilities(),
        help=f"CPU kernel variants to time (default: all this CPU supports: {matnet_torch.supported_cpu_capabilities()})",
    )
    args = parser.parse_args(argv)
    device = torch.device(args.device)

    print(f"torch {torch.__version__}, matnet_torch {matnet_torch.__version__}, device {device}, activation sigmoid")
    if device.type == "cpu":
        print(f"CPU: {cpu_model()}")
        for capability in args.cpu_capabilities:
            matnet_torch.set_cpu_capability(capability)
            print(f"\n=== CPU kernels: {capability}")
            print_tables(args, device)
    else:
        print_tables(args, device)


def cpu_model():
    """The CPU's model name (Linux /proc/cpuinfo, else platform)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


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
