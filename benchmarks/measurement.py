"""What every benchmark here shares: timing, memory, the machine's description, the cost of a
bilinear product, the command-line options, and one table per CPU kernel variant."""
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


def add_common_arguments(parser, min_seconds=0.2):
    """--threads, --device, --min-seconds and --cpu-capabilities."""
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="CPU thread counts (default: 1 2)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument(
        "--min-seconds", type=float, default=min_seconds, help=f"time per measurement round (default: {min_seconds})"
    )
    parser.add_argument(
        "--cpu-capabilities",
        nargs="+",
        default=matnet_torch.supported_cpu_capabilities(),
        help=f"CPU kernel variants to time (default: all this CPU supports: {matnet_torch.supported_cpu_capabilities()})",
    )


def print_tables_per_cpu_capability(args, print_tables, description):
    """The run's header, then print_tables(args, device) once per CPU kernel variant (on the CPU),
    each table with plain PyTorch measured beside it."""
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, matnet_torch {matnet_torch.__version__}, device {device}, {description}")
    if device.type == "cpu":
        print(f"CPU: {cpu_model()}")
        for capability in args.cpu_capabilities:
            matnet_torch.set_cpu_capability(capability)
            print(f"\n=== CPU kernels: {capability}")
            print_tables(args, device)
    else:
        print_tables(args, device)
