"""The CUDA table of bench_bilinear.py (`python benchmarks/bench_bilinear.py --device cuda`): matnet
against plain PyTorch autograd and against that plain layer compiled with torch.compile (a user's
best alternative), float32 and bfloat16, up to N = 131072, with the memory floor: the least time the
bytes that must move take at --bandwidth (reading X and writing Y forward; reading G, Y and X and
writing dX backward; the weights are negligible), and the percentage of it reached (floor / time),
plus the allocator's peak during forward+backward. Forward+backward is one layer inside a net: x
requires its gradient (dX is computed), and the output gradient G is a given tensor."""
import torch

from matnet_torch import reference
import matnet_torch
from measurement import peak_cuda_bytes, time_call

# (p, q) -> (m, n), batch sizes
CONFIGS = [
    ((28, 28), (20, 20), (128, 8192, 131072)),
    ((20, 20), (16, 16), (131072,)),
    ((64, 64), (64, 64), (131072,)),
]
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "float64": torch.float64}


def add_cuda_arguments(parser):
    parser.add_argument("--dtypes", nargs="+", choices=list(DTYPES), default=["float32", "bfloat16"],
                        help="dtypes to time, on the CPU one set of tables each (default: float32 bfloat16)")
    parser.add_argument("--bandwidth", type=float, default=3.0,
                        help="CUDA: memory bandwidth in TB/s for the floor (default: 3.0, an H100 80GB HBM3's "
                             "measured device-to-device copy)")
    parser.add_argument("--no-compile", action="store_true", help="CUDA: skip the torch.compile column")


def floor_bytes(p, q, m, n, batch, element_size):
    """Bytes that must move: forward reads X and writes Y; backward reads G, Y and X and writes dX."""
    forward = batch * (p * q + m * n) * element_size
    backward = batch * (2 * m * n + 2 * p * q) * element_size
    return forward, forward + backward


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
            "peak": peak_cuda_bytes(forward_backward, device),
        }
    return result


def cuda_table(args, device):
    bandwidth = args.bandwidth * 1e12
    print(f"{torch.cuda.get_device_name(device)}; memory floor at {args.bandwidth} TB/s; "
          "'vs torch', 'vs compiled': their time / matnet time")
    print(f"{'shape':>15} {'N':>6} {'dtype':>8} | {'fwd ms':>7} {'torch':>7} {'compiled':>8} {'vs torch':>8} "
          f"{'vs comp':>7} {'floor':>6} {'%floor':>6} | {'f+b ms':>7} {'torch':>7} {'compiled':>8} {'vs torch':>8} "
          f"{'vs comp':>7} {'floor':>6} {'%floor':>6} | peak MiB matnet / torch")
    for dtype_name in args.dtypes:
        dtype = DTYPES[dtype_name]
        for (p, q), (m, n), batches in CONFIGS:
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
