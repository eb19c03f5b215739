"""Second derivatives and torch.func transforms of matnet_torch.bilinear against plain PyTorch
autograd on the same expression, torch.sigmoid(U @ X @ V.mT + B) (matnet_torch.reference), in the
same process on the same inputs: 28×28 → 20×20, N = 1024 and 8192, 1 thread by default.

Each row times one whole computation (forward included) and prints the ratio plain PyTorch time /
matnet time (> 1: matnet faster; the issue's target is matnet ≤ 1.5× plain PyTorch, ratio ≥ 0.67):

    hvp            Hessian-vector product in the weights: grad(create_graph=True), then grad of g·d
    penalty        WGAN-GP's gradient penalty (‖∂D/∂x‖ − 1)², differentiated in the weights
    func.grad      torch.func.grad of the loss in the weights
    func.vjp       torch.func.vjp of the output, pulled back once
    func.jvp       forward mode: torch.func.jvp of the output along a direction in the weights
    vmap(grad)     per-sample gradients in the weights (N of them)
    ensemble       4 models with stacked weights, vmap over them, torch.func.grad of the summed loss

    python benchmarks/bench_drop_in.py [--threads 1] [--batches 1024 8192] [--cpu-capabilities avx512]
"""
import argparse

import torch
from torch import func

import matnet_torch
from matnet_torch import reference
from measurement import cpu_model, paired_ratio, time_rounds_interleaved

P, Q, M, N_OUT = 28, 28, 20, 20
ACTIVATION = "sigmoid"


def inputs(batch):
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(batch, P, Q, generator=generator)
    u = torch.randn(M, P, generator=generator) / P**0.5
    v = torch.randn(N_OUT, Q, generator=generator) / Q**0.5
    bias = torch.zeros(M, N_OUT)
    return x, (u, v, bias)


def cases(implementation, batch):
    """name -> a function computing the row's quantity with `implementation` (matnet_torch or reference)."""
    x, weights = inputs(batch)
    directions = tuple(torch.randn_like(w) for w in weights)
    layer = lambda x, u, v, b: implementation.bilinear(x, u, v, b, ACTIVATION)  # noqa: E731
    loss = lambda u, v, b, x=x: layer(x, u, v, b).square().sum()  # noqa: E731
    leaves = tuple(w.clone().requires_grad_() for w in weights)
    x_leaf = x.clone().requires_grad_()

    def hvp():
        grads = torch.autograd.grad(loss(*leaves), leaves, create_graph=True)
        return torch.autograd.grad(sum((g * d).sum() for g, d in zip(grads, directions)), leaves)

    def penalty():
        (grad_x,) = torch.autograd.grad(layer(x_leaf, *leaves).sum(), x_leaf, create_graph=True)
        return torch.autograd.grad((grad_x.flatten(1).norm(dim=1) - 1).square().mean(), leaves)

    def vjp():
        y, pullback = func.vjp(lambda u, v, b: layer(x, u, v, b), *weights)
        return pullback(torch.ones_like(y))

    def per_sample():
        sample_loss = lambda u, v, b, xi: loss(u, v, b, xi.unsqueeze(0))  # noqa: E731
        return func.vmap(func.grad(sample_loss, argnums=(0, 1, 2)), in_dims=(None, None, None, 0))(*weights, x)

    stacked = tuple(torch.stack([w * (1 + 0.1 * k) for k in range(4)]) for w in weights)

    def ensemble():
        members = lambda u, v, b: func.vmap(lambda *w: layer(x, *w))(u, v, b).square().sum()  # noqa: E731
        return func.grad(members, argnums=(0, 1, 2))(*stacked)

    return {
        "hvp": hvp,
        "penalty": penalty,
        "func.grad": lambda: func.grad(loss, argnums=(0, 1, 2))(*weights),
        "func.vjp": vjp,
        "func.jvp": lambda: func.jvp(lambda u, v, b: layer(x, u, v, b), weights, directions),
        "vmap(grad)": per_sample,
        "ensemble": ensemble,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batches", type=int, nargs="+", default=[1024, 8192])
    parser.add_argument("--min-seconds", type=float, default=0.3)
    parser.add_argument("--cpu-capabilities", nargs="+", default=matnet_torch.supported_cpu_capabilities()[:1])
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, matnet_torch {matnet_torch.__version__}, CPU: {cpu_model()}, "
          f"{args.threads} thread(s), {P}x{Q}->{M}x{N_OUT} {ACTIVATION}")
    cpu = torch.device("cpu")
    for capability in args.cpu_capabilities:
        matnet_torch.set_cpu_capability(capability)
        print(f"\n=== CPU kernels: {capability}")
        print(f"{'case':>12} {'N':>5} | {'matnet ms':>9} {'torch ms':>9} {'ratio':>5}")
        for batch in args.batches:
            ours, plain = cases(matnet_torch, batch), cases(reference, batch)
            for name in ours:
                rounds = time_rounds_interleaved({"matnet": ours[name], "torch": plain[name]}, cpu, args.min_seconds)
                mine, theirs = (sorted(rounds[k])[len(rounds[k]) // 2] for k in ("matnet", "torch"))
                print(f"{name:>12} {batch:>5} | {mine * 1e3:>9.2f} {theirs * 1e3:>9.2f} "
                      f"{paired_ratio(rounds['torch'], rounds['matnet']):>5.2f}")


if __name__ == "__main__":
    main()
