"""Where the CPU variant `amx` pays off: bfloat16 forward and backward on AMX tiles against the
AVX-512 lane kernels, measured in the same process on the same inputs, for layers of several sizes,
with each problem's multiply-adds per split entry (csrc/cpu/amx/bilinear_amx.h: the tiles take a
problem where that reaches a threshold, forward 44, backward 30; this benchmark is how the
thresholds were found). The process runs with MATNET_AMX_EVERYWHERE=1, so the tiles take every
problem here, paying off or not.

Printed per layer: milliseconds of the lane kernels and of the tiles, and their ratio (lane time /
tile time, so > 1 means the tiles are faster), for the forward, the backward of a first layer (no
dX) and the backward with dX.

    python benchmarks/bench_amx.py                  # 1 thread
    python benchmarks/bench_amx.py --threads 2
"""
import argparse
import os
import subprocess
import sys

import torch

import matnet_torch
from measurement import cpu_model, paired_ratio, time_rounds_interleaved

# (N, p, q, m, n): about the same work per layer.
LAYERS = [(4096, 28, 28, 20, 20), (4096, 20, 20, 16, 16), (4096, 28, 28, 10, 10), (4096, 32, 32, 32, 32),
          (2048, 48, 48, 48, 48), (1024, 64, 64, 64, 64), (2048, 64, 64, 16, 16), (2048, 16, 16, 64, 64),
          (512, 96, 96, 96, 96)]


def forward_reuse(p, q, m, n):
    """Multiply-adds per split entry of the forward (pays_off of a forward problem in bilinear_amx.cpp)."""
    return (p * q * n + m * p * n) / (p * n)


def backward_reuse(p, q, m, n, input_gradient):
    """Multiply-adds per split entry of the backward (pays_off of a backward problem in bilinear_amx.cpp)."""
    macs = m * n * q + m * q * p + p * m * n + q * p * n + (p * n * q if input_gradient else 0)
    split = 2 * m * n + m * q + p * n + (p * n if input_gradient else 0)
    return macs / split


def calls(layer):
    n_samples, p, q, m, n = layer
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n_samples, p, q, generator=generator).bfloat16()
    u = (torch.randn(m, p, generator=generator) / p**0.5).bfloat16()
    v = (torch.randn(n, q, generator=generator) / q**0.5).bfloat16()
    bias = torch.randn(m, n, generator=generator).bfloat16()
    grad_y = torch.randn(n_samples, m, n, generator=generator).bfloat16()
    y = torch.ops.matnet.bilinear(x, u, v, bias, "sigmoid")
    return {
        "forward": lambda: torch.ops.matnet.bilinear(x, u, v, bias, "sigmoid"),
        "backward, no dX": lambda: torch.ops.matnet.bilinear_backward(grad_y, x, u, v, y, "sigmoid", [False, True, True, True]),
        "backward": lambda: torch.ops.matnet.bilinear_backward(grad_y, x, u, v, y, "sigmoid", [True] * 4),
    }


def under(capability, fn):
    def call():
        matnet_torch.set_cpu_capability(capability)
        fn()
    return call


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--min-seconds", type=float, default=0.1, help="time per measurement round (default: 0.1)")
    args = parser.parse_args(argv)
    if os.environ.get("MATNET_AMX_EVERYWHERE") != "1":  # read once by the library: set it for a fresh process
        sys.exit(subprocess.call([sys.executable, *sys.argv], env={**os.environ, "MATNET_AMX_EVERYWHERE": "1"}))
    if "amx" not in matnet_torch.supported_cpu_capabilities():
        sys.exit(f"this CPU has no AMX-BF16 (or the OS does not grant it): {matnet_torch.supported_cpu_capabilities()}")
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, matnet_torch {matnet_torch.__version__}, bfloat16, sigmoid, {args.threads} thread(s)")
    print(f"CPU: {cpu_model()}")
    print("lane kernels (avx512) ms / AMX tiles ms = ratio; reuse: multiply-adds per split entry\n")
    print(f"{'N':>5} {'p×q → m×n':>16} | {'reuse':>5} {'forward':>21} | {'reuse':>5} {'backward, no dX':>21} | "
          f"{'reuse':>5} {'backward':>21}")
    for layer in LAYERS:
        n_samples, p, q, m, n = layer
        reuses = [forward_reuse(p, q, m, n), backward_reuse(p, q, m, n, False), backward_reuse(p, q, m, n, True)]
        cells = []
        for reuse, fn in zip(reuses, calls(layer).values()):
            rounds = time_rounds_interleaved({"lanes": under("avx512", fn), "tiles": under("amx", fn)},
                                             torch.device("cpu"), args.min_seconds)
            lanes, tiles = (sorted(rounds[name])[len(rounds[name]) // 2] * 1e3 for name in ("lanes", "tiles"))
            cells.append(f"{reuse:5.0f} {lanes:7.2f} /{tiles:6.2f} = {paired_ratio(rounds['lanes'], rounds['tiles']):4.2f}")
        print(f"{n_samples:5d} {f'{p}×{q} → {m}×{n}':>16} | " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
