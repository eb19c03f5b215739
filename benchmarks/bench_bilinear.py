"""Times matnet_torch.bilinear against plain PyTorch autograd, torch.sigmoid(U @ X @ V.mT + B),
measured in the same process on the same inputs; on CUDA also against that plain layer compiled
with torch.compile (a user's best alternative).

Forward+backward is one layer inside a net: x requires its gradient (dX is computed), and the
output gradient G is a given tensor. Ratios are other time / matnet time, so > 1 means matnet is
faster.

CPU: for each thread count, useful GFLOP/s against a float32 GEMM peak measured in the same run,
and the bytes autograd keeps between forward and backward.
CUDA: the memory floor, the least time the bytes that must move take at --bandwidth (reading X and
writing Y forward; reading G, Y and X and writing dX backward; the weights are negligible), and
the percentage of it reached (floor / time), plus the allocator's peak during forward+backward.

    python benchmarks/bench_bilinear.py                # the CPU table, 1 and 2 threads
    python benchmarks/bench_bilinear.py --device cuda  # float32 and bfloat16, N up to 131072
"""
import argparse
import statistics
import time

import torch

import matnet_torch
from matnet_torch import reference

# (p, q) -> (m, n), batch sizes
CONFIGS = {
    "cpu": [
        ((28, 28), (20, 20), (128, 1024, 8192)),
        ((20, 20), (16, 16), (128, 1024, 8192)),
        ((64, 64), (64, 64), (1024,)),
    ],
    "cuda": [
        ((28, 28), (20, 20), (128, 8192, 131072)),
        ((20, 20), (16, 16), (131072,)),
        ((64, 64), (64, 64), (131072,)),
    ],
}
DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16, "bfloat16": torch.bfloat16}


def multiply_adds(p, q, m, n):
    """Per-sample multiply-adds of the forward (cheaper association) and of the backward
    (dX, dU, dV through R = UᵀΔ and Q = V Xᵀ), the same mathematics for both implementations."""
    forward = min(p * q * n + m * p * n, m * p * q + m * q * n)
    backward = 2 * p * m * n + 3 * p * n * q
    return forward, backward


def floor_bytes(p, q, m, n, batch, element_size):
    """Bytes that must move: forward reads X and writes Y; backward reads G, Y and X and writes dX."""
    forward = batch * (p * q + m * n) * element_size
    backward = batch * (2 * m * n + 2 * p * q) * element_size
    return forward, forward + backward


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


def measure(p, q, m, n, batch, device, dtype, min_seconds, compiled):
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(batch, p, q, generator=generator).to(device, dtype).requires_grad_()
    # Weights initialised like MatNetLayer, so σ works in its healthy range.
    u = (torch.randn(m, p, generator=generator) / p**0.5).to(device, dtype).requires_grad_()
    v = (torch.randn(n, q, generator=generator) / q**0.5).to(device, dtype).requires_grad_()
    bias = torch.zeros(m, n, device=device, dtype=dtype, requires_grad=True)
    grad_y = torch.randn(batch, m, n, generator=generator).to(device, dtype)
    implementations = {
        "matnet": lambda: matnet_torch.bilinear(x, u, v, bias, "sigmoid"),
        "torch": lambda: reference.bilinear(x, u, v, bias, "sigmoid"),
    }
    if compiled:
        torch._dynamo.reset()  # a fresh compile per shape and dtype, not a shared recompile budget
        plain_compiled = torch.compile(reference.bilinear, fullgraph=True, dynamic=False)
        implementations["compiled"] = lambda: plain_compiled(x, u, v, bias, "sigmoid")
    result = {}
    for name, forward in implementations.items():
        def forward_backward():
            return torch.autograd.grad(forward(), (x, u, v, bias), grad_y)

        result[name] = {
            "forward": time_call(lambda: forward().detach(), device, min_seconds),
            "forward_backward": time_call(forward_backward, device, min_seconds),
            "saved": saved_bytes(forward)[0],
            "peak": peak_cuda_bytes(forward_backward, device) if device.type == "cuda" else None,
        }
    return result


def cpu_table(args, device):
    header = (f"{'shape':>15} {'N':>5} {'thr':>3} | {'fwd ms':>8} {'torch':>8} {'ratio':>5} | {'f+b ms':>8} {'torch':>8} "
              f"{'ratio':>5} | {'GFLOP/s f+b':>11} {'% peak':>6} | {'saved MiB':>9} {'torch':>7}")
    for threads in args.threads:
        torch.set_num_threads(threads)
        peak = gemm_peak_gflops(device, args.min_seconds)
        print(f"\n{threads} thread(s): float32 GEMM peak (1024x1024 matmul) {peak:.0f} GFLOP/s")
        print(header)
        for dtype_name in args.dtypes or ["float32"]:
            for (p, q), (m, n), batches in CONFIGS["cpu"]:
                for batch in batches:
                    r = measure(p, q, m, n, batch, device, DTYPES[dtype_name], args.min_seconds, compiled=False)
                    ours, plain = r["matnet"], r["torch"]
                    forward_macs, backward_macs = multiply_adds(p, q, m, n)
                    gflops = 2 * batch * (forward_macs + backward_macs) / ours["forward_backward"] / 1e9
                    print(
                        f"{f'{p}x{q}->{m}x{n}':>15} {batch:>5} {threads:>3} | "
                        f"{ours['forward'] * 1e3:>8.3f} {plain['forward'] * 1e3:>8.3f} {plain['forward'] / ours['forward']:>5.2f} | "
                        f"{ours['forward_backward'] * 1e3:>8.3f} {plain['forward_backward'] * 1e3:>8.3f} "
                        f"{plain['forward_backward'] / ours['forward_backward']:>5.2f} | "
                        f"{gflops:>11.1f} {100 * gflops / peak:>5.0f}% | "
                        f"{ours['saved'] / 2**20:>9.2f} {plain['saved'] / 2**20:>7.2f}"
                    )


def cuda_table(args, device):
    bandwidth = args.bandwidth * 1e12
    print(f"{torch.cuda.get_device_name(device)}; memory floor at {args.bandwidth} TB/s; "
          "'vs torch', 'vs compiled': their time / matnet time")
    print(f"{'shape':>15} {'N':>6} {'dtype':>8} | {'fwd ms':>7} {'torch':>7} {'compiled':>8} {'vs torch':>8} "
          f"{'vs comp':>7} {'floor':>6} {'%floor':>6} | {'f+b ms':>7} {'torch':>7} {'compiled':>8} {'vs torch':>8} "
          f"{'vs comp':>7} {'floor':>6} {'%floor':>6} | peak MiB matnet / torch")
    for dtype_name in args.dtypes or ["float32", "bfloat16"]:
        dtype = DTYPES[dtype_name]
        for (p, q), (m, n), batches in CONFIGS["cuda"]:
            for batch in batches:
                r = measure(p, q, m, n, batch, device, dtype, args.min_seconds, compiled=not args.no_compile)
                floors = [b / bandwidth for b in floor_bytes(p, q, m, n, batch, dtype.itemsize)]
                columns = []
                for key, floor in zip(("forward", "forward_backward"), floors):
                    ours, plain = r["matnet"][key], r["torch"][key]
                    best = r["compiled"][key] if "compiled" in r else float("nan")
                    columns.append(f"{ours * 1e3:>7.3f} {plain * 1e3:>7.3f} {best * 1e3:>8.3f} {plain / ours:>8.2f} "
                                   f"{best / ours:>7.2f} {floor * 1e3:>6.3f} {100 * floor / ours:>5.0f}%")
                print(f"{f'{p}x{q}->{m}x{n}':>15} {batch:>6} {dtype_name:>8} | {columns[0]} | {columns[1]} | "
                      f"{r['matnet']['peak'] / 2**20:.1f} / {r['torch']['peak'] / 2**20:.1f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="CPU thread counts (default: 1 2)")
    parser.add_argument("--dtypes", nargs="+", choices=list(DTYPES), default=None,
                        help="default: float32 on cpu; float32 and bfloat16 on cuda")
    parser.add_argument("--bandwidth", type=float, default=3.0,
                        help="memory bandwidth in TB/s for the floor (default: 3.0, an H100 80GB HBM3's measured "
                             "device-to-device copy)")
    parser.add_argument("--no-compile", action="store_true", help="CUDA: skip the torch.compile column")
    parser.add_argument("--min-seconds", type=float, default=0.2, help="time per measurement round (default: 0.2)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)

    print(f"torch {torch.__version__}, matnet_torch {matnet_torch.__version__}, device {device}, activation sigmoid")
    if device.type == "cuda":
        cuda_table(args, device)
    else:
        cpu_table(args, device)


if __name__ == "__main__":
    main()
