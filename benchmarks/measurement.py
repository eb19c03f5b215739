"""What every benchmark here shares: timing, memory, the machine's description, the cost of a
bilinear product, the command-line options, and the tables (one per CPU kernel variant) that set
matnet beside plain PyTorch."""
import platform
import statistics
import time

import torch

import matnet_torch


def multiply_adds(p, q, m, n, input_gradient=True):
    """Per-sample multiply-adds of U X Vᵀ forward (cheaper association) and backward, the same
    mathematics for both implementations: R = UᵀΔ (p·m·n), Q = V Xᵀ (p·q·n), dU = Δ Qᵀ (m·n·p),
    dV = Rᵀ X (n·p·q) and, with input_gradient, dX = R V (p·n·q)."""
    forward = min(p * q * n + m * p * n, m * p * q + m * q * n)
    backward = 2 * p * m * n + (3 if input_gradient else 2) * p * n * q
    return forward, backward


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def calls_per_round(fn, device, min_seconds):
    """How many calls of fn (after a warm-up call) fill about min_seconds."""
    fn()
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return max(1, int(min_seconds / max(time.perf_counter() - start, 1e-6)))


def time_round(fn, calls, device):
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    synchronize(device)
    return (time.perf_counter() - start) / calls


def time_call(fn, device, min_seconds, rounds=5):
    """Median over rounds of the mean time of fn over enough calls to fill min_seconds."""
    calls = calls_per_round(fn, device, min_seconds)
    return statistics.median(time_round(fn, calls, device) for _ in range(rounds))


def time_rounds_interleaved(fns, device, min_seconds, rounds=7):
    """Per function, its mean time per call in each of `rounds` rounds, the functions' rounds taken
    in turn (a, b, a, b, ...), so that a slow spell of a shared machine falls on all of them alike."""
    calls = {name: calls_per_round(fn, device, min_seconds) for name, fn in fns.items()}
    samples = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            samples[name].append(time_round(fn, calls[name], device))
    return samples


def paired_ratio(numerator_rounds, denominator_rounds):
    """The median over rounds of the ratio of two functions' times in the same round: each pair was
    timed back to back, so a slow spell that spans a pair cancels in its ratio (the ratio of the
    two medians would pair rounds taken seconds apart)."""
    return statistics.median(a / b for a, b in zip(numerator_rounds, denominator_rounds))


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


LOSSES = {
    # ∂L/∂y one value for every entry (a stride-0 tensor): the loss of the issues' tables.
    "sum": "forward().sum().backward()",
    # ∂L/∂y a dense tensor, as a layer inside a network receives from the layers after it.
    "dense": "forward().backward(g), g a seeded random tensor of y's shape",
}


def measure(implementations, device, min_seconds, loss="sum"):
    """For each name -> forward function: forward time, forward+backward time (of the LOSSES entry
    `loss`), bytes saved for backward and, on CUDA, the allocator's peak during forward+backward.
    The implementations' timing rounds are interleaved (time_rounds_interleaved); times are the
    medians over rounds, and the per-round times are kept for paired_ratio."""
    def forward_only(forward):
        return lambda: forward().detach()

    def forward_backward(forward):
        if loss == "sum":
            return lambda: forward().sum().backward()
        y = forward_only(forward)()
        grad = torch.randn(y.shape, generator=torch.Generator().manual_seed(0)).to(y.device, y.dtype)
        return lambda: forward().backward(grad)

    forward_rounds = time_rounds_interleaved(
        {name: forward_only(forward) for name, forward in implementations.items()}, device, min_seconds
    )
    forward_backward_rounds = time_rounds_interleaved(
        {name: forward_backward(forward) for name, forward in implementations.items()}, device, min_seconds
    )
    return {
        name: {
            "forward": statistics.median(forward_rounds[name]),
            "forward_backward": statistics.median(forward_backward_rounds[name]),
            "forward_rounds": forward_rounds[name],
            "forward_backward_rounds": forward_backward_rounds[name],
            "saved": saved_bytes(forward)[0],
            "peak": peak_cuda_bytes(forward_backward(forward), device) if device.type == "cuda" else None,
        }
        for name, forward in implementations.items()
    }


def print_tables(args, device, comparisons, label):
    """Per thread count, the float32 GEMM peak and a table: a row per (label, N, multiply-adds per
    sample of forward+backward, {"matnet": forward, "torch": forward}) from comparisons(device),
    with times, ratios (plain PyTorch / matnet, > 1: matnet faster), matnet's GFLOP/s and memory."""
    header = (f"{label:>15} {'N':>5} {'thr':>3} | {'fwd ms':>8} {'torch':>8} {'ratio':>5} | {'f+b ms':>8} {'torch':>8} "
              f"{'ratio':>5} | {'GFLOP/s f+b':>11} {'% peak':>6} | {'saved MiB':>9} {'torch':>7}")
    for threads in args.threads:
        torch.set_num_threads(threads)
        peak = gemm_peak_gflops(device, args.min_seconds)
        print(f"\n{threads} thread(s): float32 GEMM peak (1024x1024 matmul) {peak:.0f} GFLOP/s")
        print(header)
        for name, batch, macs, implementations in comparisons(device):
            r = measure(implementations, device, args.min_seconds, args.loss)
            ours, plain = r["matnet"], r["torch"]
            gflops = 2 * batch * macs / ours["forward_backward"] / 1e9
            memory = f"{ours['saved'] / 2**20:>9.2f} {plain['saved'] / 2**20:>7.2f}"
            if ours["peak"] is not None:
                memory += f" | peak MiB {ours['peak'] / 2**20:.1f} vs {plain['peak'] / 2**20:.1f}"
            print(
                f"{name:>15} {batch:>5} {threads:>3} | "
                f"{ours['forward'] * 1e3:>8.3f} {plain['forward'] * 1e3:>8.3f} "
                f"{paired_ratio(plain['forward_rounds'], ours['forward_rounds']):>5.2f} | "
                f"{ours['forward_backward'] * 1e3:>8.3f} {plain['forward_backward'] * 1e3:>8.3f} "
                f"{paired_ratio(plain['forward_backward_rounds'], ours['forward_backward_rounds']):>5.2f} | "
                f"{gflops:>11.1f} {100 * gflops / peak:>5.0f}% | {memory}"
            )


def add_common_arguments(parser, min_seconds=0.2):
    """--threads, --device, --min-seconds, --loss and --cpu-capabilities."""
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="CPU thread counts (default: 1 2)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument(
        "--min-seconds", type=float, default=min_seconds, help=f"time per measurement round (default: {min_seconds})"
    )
    parser.add_argument(
        "--loss",
        choices=LOSSES,
        default="sum",
        help="what forward+backward differentiates (bench_bilinear.py --device cuda: always a dense one): "
        + "; ".join(f"{k}: {v}" for k, v in LOSSES.items()),
    )
    parser.add_argument(
        "--cpu-capabilities",
        nargs="+",
        default=matnet_torch.supported_cpu_capabilities(),
        help=f"CPU kernel variants to time (default: all this CPU supports: {matnet_torch.supported_cpu_capabilities()})",
    )


def print_tables_per_cpu_capability(args, comparisons, label, description):
    """The run's header, then print_tables once per CPU kernel variant (on the CPU)."""
    device = torch.device(args.device)
    print(
        f"torch {torch.__version__}, matnet_torch {matnet_torch.__version__}, device {device}, {description}, "
        f"forward+backward of {LOSSES[args.loss]}"
    )
    if device.type == "cpu":
        print(f"CPU: {cpu_model()}")
        for capability in args.cpu_capabilities:
            matnet_torch.set_cpu_capability(capability)
            print(f"\n=== CPU kernels: {capability}")
            print_tables(args, device, comparisons, label)
    else:
        print_tables(args, device, comparisons, label)
