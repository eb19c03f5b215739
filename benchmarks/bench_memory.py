"""Peak memory of matnet_torch.bilinear against plain PyTorch autograd (torch.sigmoid(U @ X @ V.mT + B)),
forward and forward+backward, each measured in a fresh process as the growth of its peak resident
memory (ru_maxrss) over what the inputs already took; x, U, V and B require grad.

Target (issue 11): forward+backward peak at most 2× plain PyTorch's plus 8 MiB per thread, for small
and huge matrices alike. The CPU kernels hold per-thread scratch for one block of samples, capped at
4 MiB (csrc/cpu/bilinear_paths.cpp); larger problems take the GEMM path, whose temporaries scale with
the batch present.

    python benchmarks/bench_memory.py
    python benchmarks/bench_memory.py --threads 2 --cpu-capabilities default
"""
import argparse
import json
import subprocess
import sys

import matnet_torch

# (batch, p, q, m, n)
CASES = [(1, 2048, 2048, 2048, 2048), (8192, 28, 28, 20, 20), (64, 256, 256, 128, 128)]

MEASURE = r"""
import json, resource, sys, torch, matnet_torch
from matnet_torch import reference
implementation, phase, threads, capability, (batch, p, q, m, n) = json.loads(sys.argv[1])
torch.set_num_threads(threads)
matnet_torch.set_cpu_capability(capability)
function = matnet_torch.bilinear if implementation == "matnet" else reference.bilinear
function(torch.rand(2, 3, 3), torch.rand(3, 3), torch.rand(3, 3), torch.rand(3, 3), "sigmoid")  # load everything
generator = torch.Generator().manual_seed(0)
x = torch.rand(batch, p, q, generator=generator).requires_grad_()
u = (torch.randn(m, p, generator=generator) / p**0.5).requires_grad_()
v = (torch.randn(n, q, generator=generator) / q**0.5).requires_grad_()
bias = torch.zeros(m, n, requires_grad=True)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
y = function(x, u, v, bias, "sigmoid")
if phase == "forward+backward":
    y.sum().backward()
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
"""


def peak_growth_mib(implementation, phase, threads, capability, case):
    completed = subprocess.run(
        [sys.executable, "-c", MEASURE, json.dumps([implementation, phase, threads, capability, case])],
        capture_output=True, text=True, check=True,
    )
    return float(completed.stdout.strip())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default: 1)")
    parser.add_argument("--cpu-capabilities", nargs="+", default=matnet_torch.supported_cpu_capabilities(),
                        help="CPU kernel variants (default: all this CPU supports)")
    args = parser.parse_args(argv)
    budget = 8 * args.threads
    print(f"peak resident memory growth in MiB, float32, sigmoid, {args.threads} thread(s); "
          f"target: matnet <= 2 x plain + {budget} MiB")
    print(f"{'variant':>8} {'batch x p x q -> m x n':>26} {'phase':>17} | {'matnet':>8} {'plain':>8} {'target':>8} ok")
    for capability in args.cpu_capabilities:
        for case in CASES:
            batch, p, q, m, n = case
            for phase in ("forward", "forward+backward"):
                ours = peak_growth_mib("matnet", phase, args.threads, capability, case)
                plain = peak_growth_mib("plain", phase, args.threads, capability, case)
                target = 2 * plain + budget
                print(f"{capability:>8} {f'{batch} x {p}x{q} -> {m}x{n}':>26} {phase:>17} | {ours:>8.1f} {plain:>8.1f} "
                      f"{target:>8.1f} {'yes' if ours <= target else 'NO'}")


if __name__ == "__main__":
    main()
